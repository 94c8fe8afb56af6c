"""Truthful de-identification markers (PS3.15 E.1.1, PS3.3 C.7.1.1), encoded once per policy."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from dicomcloak.api import Deidentifier, Sealer
from dicomcloak.engine import markers
from dicomcloak.engine.deidentify import deidentify
from dicomcloak.engine.originals import decode_modified
from dicomcloak.engine.reidentify import restore
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.keys import ProjectKey, Pseudonymizer
from dicomcloak.policy import build_policy
from dicomcloak.policy.model import Policy, SiteOverrides
from dicomcloak.standard.table import Action, Option
from dicomcloak.testing.restored import differences

from .conftest import load

DATA = Path(__file__).resolve().parents[1] / "data" / "beyond-table"
PENN = DATA / "penn_prisma_vnavsetter.dcm"
METHOD_CODE = 0x00120064
TEMPORAL = 0x00280303


def _roundtrip(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def _site(tags: dict[int, Action], options: frozenset[Option] = frozenset()) -> Policy:
    return dataclasses.replace(Policy(options=options), overrides=SiteOverrides(tags=tags))


KEEP_IDENTITY = {0x00100010: Action.K, 0x00100020: Action.K, 0x00100030: Action.K}


def test_keeping_patient_identity_is_not_marked_removed(pseudonymizer: Pseudonymizer) -> None:
    """The issue's policy: K on Patient's Name, Patient ID and Birth Date."""
    source = read_dataset(PENN.read_bytes())
    out = _roundtrip(deidentify(source, _site(KEEP_IDENTITY), pseudonymizer).dataset)
    assert out.PatientIdentityRemoved == "NO"
    assert METHOD_CODE not in out  # no 113100, no option code: the profile was not applied
    method = list(out.DeidentificationMethod)
    assert method[0] == "dicomcloak 0.1.0 PS3.15 E.1.1 Basic Profile with site deviations"
    assert method[1:] == [
        "deviation: PatientName Z->K",
        "deviation: PatientID Z/D->K",
        "deviation: PatientBirthDate Z->K",
    ]
    assert TEMPORAL not in out  # a kept birth date: the dates are neither all removed nor all modified
    assert (out.PatientName, out.PatientID, out.PatientBirthDate) == (
        source.PatientName, source.PatientID, source.PatientBirthDate,
    )


def test_profile_applied_says_yes_and_113100(pseudonymizer: Pseudonymizer) -> None:
    source = read_dataset(PENN.read_bytes())
    assert source.DeidentificationMethod == "Penn_BSC_profile_v3.0"  # an earlier tool's text
    out = _roundtrip(deidentify(source, Policy(), pseudonymizer).dataset)
    assert out.PatientIdentityRemoved == "YES"
    assert [item.CodeValue for item in out.DeidentificationMethodCodeSequence] == ["113100"]
    assert out.DeidentificationMethod == "dicomcloak 0.1.0 PS3.15 E.1.1 Basic Profile"
    assert out.LongitudinalTemporalInformationModified == "REMOVED"


def test_stronger_site_rules_keep_yes(pseudonymizer: Pseudonymizer) -> None:
    policy = _site({0x00080070: Action.X, 0x00081010: Action.X})  # Manufacturer, Station Name removed
    out = deidentify(load("CT_small.dcm"), policy, pseudonymizer).dataset
    assert out.PatientIdentityRemoved == "YES"
    assert [item.CodeValue for item in out.DeidentificationMethodCodeSequence] == ["113100"]


def test_weakening_outside_dates_keeps_the_temporal_state(pseudonymizer: Pseudonymizer) -> None:
    policy = _site({0x00081010: Action.K}, frozenset({Option.RETAIN_LONG_MODIFIED_DATES}))
    out = deidentify(load("CT_small.dcm"), policy, pseudonymizer).dataset
    assert out.PatientIdentityRemoved == "NO"
    assert list(out.DeidentificationMethod)[1:] == [
        "retain-long-modified-dates", "deviation: StationName X/Z/D->K",
    ]
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"


def test_an_earlier_claim_in_the_input_is_removed(pseudonymizer: Pseudonymizer) -> None:
    """A code sequence from an earlier de-identification would claim 113100 for this output."""
    source = load("CT_small.dcm")
    earlier = Dataset()
    earlier.CodeValue, earlier.CodingSchemeDesignator, earlier.CodeMeaning = "113100", "DCM", "Basic"
    source.DeidentificationMethodCodeSequence = Sequence([earlier])
    source.LongitudinalTemporalInformationModified = "REMOVED"
    outcome = deidentify(source, _site(KEEP_IDENTITY), pseudonymizer)
    assert METHOD_CODE not in outcome.dataset and TEMPORAL not in outcome.dataset
    removed = {change.path for change in outcome.changes if change.action == "X"}
    assert {(METHOD_CODE,), (TEMPORAL,)} <= removed


def test_many_deviations_are_counted_not_all_named(pseudonymizer: Pseudonymizer, tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text('[vr]\nPN = "K"\nLO = "K"\n', encoding="utf-8")
    policy = build_policy([], path)
    out = deidentify(load("CT_small.dcm"), policy, pseudonymizer).dataset
    method = list(out.DeidentificationMethod)
    assert len(method) == 1 + 16 + 1
    assert method[-1] == f"and {len(policy.weakening) - 16} more"
    assert all(len(value) <= 64 for value in method)


def test_markers_are_encoded_once_per_policy_and_encoding(pseudonymizer: Pseudonymizer) -> None:
    policy = _site(KEEP_IDENTITY)
    deidentify(load("CT_small.dcm"), policy, pseudonymizer)
    before = markers._raw_markers.cache_info()
    for _ in range(3):
        deidentify(load("CT_small.dcm"), policy, pseudonymizer)
    after = markers._raw_markers.cache_info()
    assert (after.misses, after.hits) == (before.misses, before.hits + 3)


def test_marker_tags_are_the_ones_reidentification_removes() -> None:
    from dicomcloak.engine.reidentify import MARKER_TAGS

    assert {Tag(tag) for tag in markers._MARKERS} <= {Tag(tag) for tag in MARKER_TAGS}


def test_removed_earlier_markers_come_back_on_reidentification() -> None:
    source = load("CT_small.dcm")
    earlier = Dataset()
    earlier.CodeValue, earlier.CodingSchemeDesignator, earlier.CodeMeaning = "113100", "DCM", "Basic"
    source.DeidentificationMethodCodeSequence = Sequence([earlier])
    source = read_dataset(encode_dataset(source))
    outcome = Deidentifier(_site(KEEP_IDENTITY), ProjectKey(bytes(range(32))), "tests").deidentify(source)
    sealed = Sealer(vault=True).seal(source, outcome)
    restored = restore(read_dataset(encode_dataset(outcome.dataset)), decode_modified(sealed.payload))
    assert differences(source, read_dataset(encode_dataset(restored.dataset))) == []

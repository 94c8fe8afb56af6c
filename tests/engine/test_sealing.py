"""Sealed originals on every bundled file: capture, seal (embedded and vault payload), restore exactly."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from dicomcloak.api import Deidentifier, Sealer
from dicomcloak.engine.originals import capture, decode_modified, encode_modified
from dicomcloak.engine.reidentify import restore
from dicomcloak.errors import DicomcloakError
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.policy.model import Policy
from dicomcloak.testing.restored import differences
from dicomcloak.testing.sealing import SealingKeys, make_sealing_keys

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
DEID = Deidentifier(Policy(), ProjectKey(bytes(range(32))), "tests")


def _deidentifiable() -> list[Path]:
    paths = []
    for path in sorted(TEST_FILES.rglob("*.dcm")):
        try:
            DEID.deidentify(read_dataset(path.read_bytes()))
        except DicomcloakError:
            continue
        paths.append(path)
    return paths


FILES = _deidentifiable()


@pytest.fixture(scope="module")
def keys() -> SealingKeys:
    return make_sealing_keys()


def test_many_bundled_files_deidentify() -> None:
    assert len(FILES) >= 60


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_vault_payload_restores_exactly(path: Path) -> None:
    source = read_dataset(path.read_bytes())
    outcome = DEID.deidentify(source)
    sealed = Sealer(vault=True).seal(source, outcome)
    written = read_dataset(encode_dataset(outcome.dataset))
    restored = restore(written, decode_modified(sealed.payload))
    back = read_dataset(encode_dataset(restored.dataset))
    assert differences(source, back) == []
    assert back.PatientIdentityRemoved == source.get("PatientIdentityRemoved", "NO")


@pytest.mark.parametrize("path", FILES[::4], ids=lambda p: p.name)
def test_embedded_restores_exactly(path: Path, keys: SealingKeys) -> None:
    source = read_dataset(path.read_bytes())
    outcome = DEID.deidentify(source)
    keys.sealer().seal(source, outcome)
    written = read_dataset(encode_dataset(outcome.dataset))
    assert "EncryptedAttributesSequence" in written
    result = keys.reidentifier().reidentify(written)
    assert result.verified and result.bound and result.mode == "embedded"
    assert result.sealer == keys.signer.fingerprint
    back = read_dataset(encode_dataset(result.dataset))
    assert differences(source, back) == []
    for tag in (0x00120063, 0x00120064, 0x00280303, 0x04000500):
        assert (tag in back) == (tag in source)


def test_explicit_little_endian_bytes_are_kept_exactly() -> None:
    source = read_dataset((TEST_FILES / "CT_small.dcm").read_bytes())
    outcome = DEID.deidentify(source)
    item = capture(source, outcome.changes)
    back = decode_modified(encode_modified(item))
    for tag in list(item.keys()):
        original, sealed = source.get_item(tag), back.get_item(tag)
        assert (original.VR, original.value) == (sealed.VR, sealed.value), tag


def test_markers_present_in_the_input_are_restored_not_dropped() -> None:
    source = read_dataset((TEST_FILES / "CT_small.dcm").read_bytes())
    source.PatientIdentityRemoved = "NO"
    source.LongitudinalTemporalInformationModified = "UNMODIFIED"
    source = read_dataset(encode_dataset(source))
    outcome = DEID.deidentify(source)
    assert outcome.dataset.PatientIdentityRemoved == "YES"
    sealed = Sealer(vault=True).seal(source, outcome)
    restored = restore(outcome.dataset, decode_modified(sealed.payload)).dataset
    assert restored.PatientIdentityRemoved == "NO"
    assert restored.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert differences(source, read_dataset(encode_dataset(restored))) == []


def test_the_input_is_not_modified(keys: SealingKeys) -> None:
    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    source = read_dataset(data)
    outcome = DEID.deidentify(source)
    keys.sealer(vault=True).seal(source, outcome)
    assert encode_dataset(source) == encode_dataset(read_dataset(data))
    written = read_dataset(encode_dataset(outcome.dataset))
    before = encode_dataset(written)
    keys.reidentifier().reidentify(written)
    assert encode_dataset(written) == before


def _dataset(path: str) -> Dataset:
    return read_dataset((TEST_FILES / path).read_bytes())


def test_what_the_sanitizer_drops_is_sealed_and_restored(keys: SealingKeys) -> None:
    """Issue 3: the sanitizer's removals are changes, so sealing captures them and reid restores them."""
    ds = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    # DS: invalid for its VR; kept by the profile, so only the sanitizer drops it (pydicom refuses to set it).
    ds._dict[0x00180050] = RawDataElement(Tag(0x00180050), "DS", 12, b"not-a-number", 0, False, True)
    ds.ConvolutionKernel = "x" * 40  # SH: longer than the VR's 16 characters
    source = read_dataset(encode_dataset(ds))
    outcome = DEID.deidentify(source)
    dropped = {change.path for change in outcome.changes if change.source.startswith("sanitize:")}
    assert {(0x00180050,), (0x00181210,)} <= dropped
    keys.sealer(vault=True).seal(source, outcome)
    written = read_dataset(encode_dataset(outcome.dataset))
    assert "SliceThickness" not in written and "ConvolutionKernel" not in written
    back = read_dataset(encode_dataset(keys.reidentifier().reidentify(written).dataset))
    assert differences(source, back) == []
    assert back["SliceThickness"].value == source["SliceThickness"].value

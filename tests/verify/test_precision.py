"""The false alarms of issue 12 are gone, and what they hid is still found.

Each case builds originals from pydicom's real test files with the colliding
values the issue found on real data, de-identifies them with the engine, and
checks that ``verify`` passes with and without the key, while the same values
offered in a place the policy does not keep them are still findings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from dicomcloak.engine.dates import shift_date
from dicomcloak.engine.identity import identify
from dicomcloak.engine.values import dummy_value
from dicomcloak.keys import ProjectKey, Pseudonymizer
from dicomcloak.policy import Policy, build_policy
from dicomcloak.verify import VerifyReport, verify_trees
from dicomcloak.verify.kinds import DummyValues
from dicomcloak.verify.report import named_path

from .conftest import deidentify_tree, plant, write_original  # type: ignore[import-not-found]


def _code(meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "113093", "DCM", meaning
    return item


def _colliding(ds: Dataset) -> None:
    """The collisions the issue found on real files, planted in one original."""
    ds.InstitutionName = ds.Manufacturer = "TOSHIBA"  # removed = kept
    ds.StudyDescription = ds.BodyPartExamined = "CHEST"
    ds.DerivationDescription = "Uncompressed predecessor"  # removed, equal to a kept Code Meaning
    ds.DerivationCodeSequence = Sequence([_code("Uncompressed predecessor")])
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.OperatorsName = "Primary^Mary"  # name parts inside the kept Image Type
    ds.OtherPatientIDs = "0010"  # a short number, inside the dummy date 19000101
    ds.ReferringPhysicianName = "ANONYMIZED"  # an original equal to the engine's dummies
    ds.StudyTime = "000000"
    ds.PatientBirthDate = "19000101"


def _keeps_what_a_removes(ds: Dataset) -> None:
    """Another instance, whose kept attributes hold the values ``_colliding`` puts in removed ones."""
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Manufacturer, ds.BodyPartExamined = "TOSHIBA", "CHEST"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]


def _verified(src: Path, out: Path, policy: Policy, key: ProjectKey) -> tuple[VerifyReport, VerifyReport]:
    return verify_trees(src, out, policy, key), verify_trees(src, out, policy)


@pytest.mark.parametrize("options", [[], ["retain-device-identity", "retain-long-modified-dates"]])
def test_kept_values_equal_to_removed_ones_and_dummies_are_not_findings(
    tmp_path: Path, key: ProjectKey, options: list[str]
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_original(src / "a.dcm", _colliding)
    write_original(src / "b.dcm", _keeps_what_a_removes)
    policy = build_policy(options)
    assert deidentify_tree(src, out, policy, key) == 2
    for report in _verified(src, out, policy, key):
        assert report.ok, report.render_text()
    # The same originals offered as output: each planted value is identifying where it was removed.
    sources = {named_path(f.source) for f in verify_trees(src, src, policy).findings}
    assert {"InstitutionName (0008,0080)", "StudyDescription (0008,1030)", "OperatorsName (0008,1070)",
            "DerivationDescription (0008,2111)", "OtherPatientIDs (0010,1000)"} <= sources


def test_the_tools_own_dummies_are_read_from_the_engine(key: ProjectKey) -> None:
    dummies = DummyValues(build_policy(["retain-safe-private"]))
    for vr in ("PN", "LO", "DA", "TM", "DT", "AE", "UR"):
        assert str(dummy_value(vr)).lower() in dummies.texts
    assert {"yes", "removed", "retain-safe-private"} <= dummies.texts  # the markers the engine adds
    assert dummies.searched_part("ANON^7KQ2M9XZ") == "7kq2m9xz"
    assert dummies.searched_part("ANONYMIZED") == ""


def _safe_private(ds: Dataset) -> None:
    ds.StudyDescription = "WHOLE BODY"
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0D, "CS", "WHOLE BODY")  # on the packaged safe list: kept by Retain Safe Private


def test_a_safe_private_value_equal_to_a_removed_one_is_not_a_finding(
    tmp_path: Path, key: ProjectKey
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    original = write_original(src / "a.dcm", _safe_private)
    private = dcmread(original).private_block(0x0019, "SIEMENS MR HEADER").get_tag(0x0D)
    policy = build_policy(["retain-safe-private"])
    assert deidentify_tree(src, out, policy, key) == 1
    for report in _verified(src, out, policy, key):
        assert report.ok, report.render_text()
    # Under the Basic Profile the private value is removed too: offered back, it is a finding.
    basic = verify_trees(src, src, build_policy([]))
    assert (int(private),) in {f.path for f in basic.findings}


def test_cleaned_text_that_still_holds_the_patients_name_is_found(tmp_path: Path, key: ProjectKey) -> None:
    src, out = tmp_path / "src", tmp_path / "out"

    def other_patient(ds: Dataset) -> None:
        ds.StudyDescription = "CT chest for Qelvar"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()

    write_original(src / "a.dcm", other_patient)
    write_original(src / "b.dcm", lambda ds: setattr(ds, "PatientName", "Qelvar^Zor"))
    policy = build_policy(["clean-descriptors"])
    assert deidentify_tree(src, out, policy, key) == 2
    assert verify_trees(src, out, policy, key).ok
    # A tool that left the description as it was, with the name in it: C keeps clinical words, not names.
    plant(out / "b.dcm", lambda ds: setattr(ds, "StudyDescription", "CT chest for Qelvar"))
    report = verify_trees(src, out, policy, key)
    assert [(f.output, named_path(f.path), f.kind, named_path(f.source)) for f in report.findings] == [
        ("b.dcm", "StudyDescription (0008,1030)", "name-part", "PatientName (0010,0010)")
    ]


def test_outputs_of_originals_sharing_a_sop_instance_uid_are_matched_by_content(
    tmp_path: Path, key: ProjectKey
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_original(src / "a.dcm", lambda ds: setattr(ds, "InstitutionName", "TOSHIBA"))
    write_original(src / "b.dcm", lambda ds: setattr(ds, "Manufacturer", "TOSHIBA"))  # same SOP UID
    policy = build_policy([])
    assert deidentify_tree(src, out, policy, key) == 2
    report = verify_trees(src, out, policy, key)
    assert report.ok, report.render_text()
    assert (report.matched_by_key, report.matched_by_content) == (0, 2)


def test_a_shifted_date_equal_to_another_date_of_the_instance_is_not_a_finding(
    tmp_path: Path, key: ProjectKey
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"

    def collide(ds: Dataset) -> None:
        # the engine's own shift of the Study Date, planted as the original's Instance Creation Date
        shift = identify(ds, Pseudonymizer(key)).shift
        ds.InstanceCreationDate = shift_date(ds.StudyDate, ds.StudyTime, shift)

    original = write_original(src / "a.dcm", collide)
    policy = build_policy(["retain-long-modified-dates"])
    assert deidentify_tree(src, out, policy, key) == 1
    assert dcmread(out / "a.dcm").StudyDate == dcmread(original).InstanceCreationDate
    for report in _verified(src, out, policy, key):
        assert report.ok, report.render_text()
    # Left unshifted, the date is found.
    plant(out / "a.dcm", lambda ds: setattr(ds, "StudyDate", dcmread(original).StudyDate))
    report = verify_trees(src, out, policy, key)
    assert [(named_path(f.path), f.kind) for f in report.findings] == [("StudyDate (0008,0020)", "date")]

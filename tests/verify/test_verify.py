"""``verify_trees`` on real files: a clean output passes; planted leaks are found, named, never echoed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomcloak.errors import UsageError
from dicomcloak.keys import ProjectKey
from dicomcloak.policy import build_policy
from dicomcloak.testing.corpus import build_corpus
from dicomcloak.verify import SCHEMA_VERSION, VerifyReport, verify_trees
from dicomcloak.verify.report import named_path

from .conftest import deidentify_tree, plant  # type: ignore[import-not-found]

N = 10


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory, key: ProjectKey) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("verify")
    corpus = build_corpus(base / "corpus", N, seed=5)
    policy = build_policy([])
    out = base / "out"
    assert deidentify_tree(corpus / "files", out, policy, key) == N
    answer = json.loads((corpus / "answer_key.json").read_text())
    return {"src": corpus / "files", "out": out, "key": key, "policy": policy, "answer": answer}


def _copy(trees: dict[str, Any], tmp_path: Path) -> tuple[Path, str, dict[str, Any]]:
    out = tmp_path / "out"
    shutil.copytree(trees["out"], out)
    rel, entry = next(iter(sorted(trees["answer"]["files"].items())))
    return out, rel, entry


def _phi(entry: dict[str, Any], attr: str, kind: str | None = None) -> str:
    return next(e["value"] for e in entry["phi"] if e["attr"] == attr and (kind is None or e["kind"] == kind))


def _echoed(report: VerifyReport, *secrets: str) -> list[str]:
    text = (report.render_text() + json.dumps(report.to_dict())).lower()
    return [secret for secret in secrets if secret.lower() in text]


def _found(report: VerifyReport) -> set[tuple[str, str, str, str, str]]:
    return {
        (f.output, named_path(f.path), f.kind, f.original, named_path(f.source)) for f in report.findings
    }


@pytest.mark.parametrize("with_key", [True, False])
def test_clean_output_passes(trees: dict[str, Any], with_key: bool) -> None:
    report = verify_trees(trees["src"], trees["out"], trees["policy"], trees["key"] if with_key else None)
    assert report.ok, report.render_text()
    assert (report.originals, report.outputs, report.findings) == (N, N, ())
    assert (report.matched_by_key, report.matched_by_content) == ((N, 0) if with_key else (0, N))
    assert report.render_text().startswith(f"checked {N} output file(s) against {N} original(s)")
    assert report.to_dict()["schema_version"] == SCHEMA_VERSION == 2


def test_planted_name_in_nested_private_item_is_found_named_and_not_echoed(
    trees: dict[str, Any], tmp_path: Path
) -> None:
    out, rel, entry = _copy(trees, tmp_path)
    family = _phi(entry, "PatientName", "name_part")

    def change(ds: Dataset) -> None:
        item = Dataset()
        item.add_new(0x00291010, "LO", "ACME 1.0")
        item.add_new(0x00291020, "LO", f"seen by {family.capitalize()}")
        ds.add_new(0x00291030, "SQ", Sequence([item]))

    plant(out / rel, change)
    report = verify_trees(trees["src"], out, trees["policy"], trees["key"])
    assert not report.ok
    [finding] = report.findings
    assert (finding.output, finding.path, finding.kind, finding.original) == (
        rel, (0x00291030, 0, 0x00291020), "name-part", rel
    )
    assert named_path(finding.source) == "PatientName (0010,0010)"
    assert finding.length == len(family)
    assert named_path(finding.path) == "(0029,1030)[0] / (0029,1020)"
    assert _echoed(report, family) == []
    assert report.render_text().splitlines()[1].startswith("LEAKS: 1 in 1 output file(s) (name-part 1)")
    as_json = report.to_dict()
    assert as_json["findings"][0] == {
        "output": rel, "original": rel, "path": "(0029,1030)[0] / (0029,1020)",
        "tag_path": "(0029,1030)[0]/(0029,1020)", "kind": "name-part", "source": "PatientName (0010,0010)",
        "source_tag_path": "(0010,0010)", "length": len(family), "match": "key",
    }


@pytest.mark.parametrize("with_key", [True, False])
def test_planted_uid_and_reformatted_date_are_found(
    trees: dict[str, Any], tmp_path: Path, with_key: bool
) -> None:
    out, rel, entry = _copy(trees, tmp_path)
    study_uid = entry["uids"]["StudyInstanceUID"]
    birth = _phi(entry, "PatientBirthDate")
    german = f"{birth[6:]}.{birth[4:6]}.{birth[:4]}"

    def change(ds: Dataset) -> None:
        ds.ImageComments = f"born {german}"
        item = Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = study_uid
        ds.SourceImageSequence = Sequence([item])

    plant(out / rel, change)
    report = verify_trees(trees["src"], out, trees["policy"], trees["key"] if with_key else None)
    assert {(f.path, f.kind) for f in report.findings} == {
        ((0x00204000,), "date"), ((0x00082112, 0, 0x00081155), "uid")
    }
    by_kind = {f.kind: f for f in report.findings}
    assert named_path(by_kind["date"].source) == "PatientBirthDate (0010,0030)"
    assert named_path(by_kind["uid"].path) == (
        "SourceImageSequence (0008,2112)[0] / ReferencedSOPInstanceUID (0008,1155)"
    )
    assert _echoed(report, study_uid, german, birth) == []


def test_an_identifying_value_left_in_place_or_moved_into_a_kept_element_is_found(
    trees: dict[str, Any], tmp_path: Path
) -> None:
    out, rel, entry = _copy(trees, tmp_path)
    institution = _phi(entry, "InstitutionName")
    patient_id = _phi(entry, "PatientID")

    def change(ds: Dataset) -> None:
        ds.InstitutionName = institution  # what a de-identifier that skipped the attribute leaves
        ds.Manufacturer = patient_id  # a kept attribute, but not with this value

    plant(out / rel, change)
    report = verify_trees(trees["src"], out, trees["policy"], trees["key"])
    found = _found(report)
    assert (rel, "InstitutionName (0008,0080)", "text", rel, "InstitutionName (0008,0080)") in found
    assert (rel, "Manufacturer (0008,0070)", "id", rel, "PatientID (0010,0020)") in found


def test_a_value_of_another_original_is_found_and_named(trees: dict[str, Any], tmp_path: Path) -> None:
    out, rel, _ = _copy(trees, tmp_path)
    files = trees["answer"]["files"]
    accession = _phi(files[sorted(files)[-1]], "AccessionNumber")
    # the study's instances share it: the report names the first original (in ORIGINAL's order) that holds it
    first = min(name for name, entry in files.items() if _phi(entry, "AccessionNumber") == accession)
    assert first != rel
    plant(out / rel, lambda ds: setattr(ds, "ImageComments", f"order {accession.lower()}"))
    report = verify_trees(trees["src"], out, trees["policy"], trees["key"])
    assert _found(report) == {(rel, "ImageComments (0020,4000)", "id", first, "AccessionNumber (0008,0050)")}


def test_unparseable_output_is_scanned_as_bytes(trees: dict[str, Any], tmp_path: Path) -> None:
    out, rel, entry = _copy(trees, tmp_path)
    pid = _phi(entry, "PatientID")
    (out / "notes.txt").write_text(f"export of {pid}\n")
    report = verify_trees(trees["src"], out, trees["policy"], trees["key"])
    assert report.unparsed_outputs == 1
    assert [(f.output, f.kind, f.original, named_path(f.path)) for f in report.findings] == [
        ("notes.txt", "id", rel, "(file not parsed as DICOM)")
    ]
    assert _echoed(report, pid) == []


def test_originals_as_output_leak_all_but_what_the_policy_keeps(trees: dict[str, Any]) -> None:
    src = trees["src"]
    report = verify_trees(src, src, trees["policy"])
    assert report.outputs_with_findings == N
    assert {"uid", "person-name", "name-part", "date", "time", "id", "text"} <= set(report.kinds)
    kept = verify_trees(src, src, build_policy(["retain-uids"]))
    assert kept.findings and "uid" not in kept.kinds  # names, IDs, dates are still removed


def test_jobs_do_not_change_the_report(trees: dict[str, Any]) -> None:
    src = trees["src"]
    one = verify_trees(src, src, trees["policy"], trees["key"], jobs=1)
    two = verify_trees(src, src, trees["policy"], trees["key"], jobs=2)
    assert one.findings
    assert two.to_dict() == one.to_dict()
    assert two.render_text() == one.render_text()


@pytest.mark.parametrize(
    ("which", "reference"),
    [
        ("original-missing", "verify-original-missing"),
        ("output-missing", "verify-output-missing"),
        ("output-empty", "verify-output-empty"),
        ("original-empty", "verify-original-empty"),
        ("original-not-dicom", "verify-original-empty"),
    ],
)
def test_nothing_to_compare_is_a_usage_error(
    trees: dict[str, Any], tmp_path: Path, which: str, reference: str
) -> None:
    src, out = trees["src"], trees["out"]
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    if which == "original-not-dicom":
        (empty / "sub" / "README.txt").write_text("not DICOM\n")
    trees_for = {
        "original-missing": (tmp_path / "nope", out), "output-missing": (src, tmp_path / "nope"),
        "output-empty": (src, empty), "original-empty": (empty, out), "original-not-dicom": (empty, out),
    }
    with pytest.raises(UsageError) as raised:
        verify_trees(*trees_for[which], trees["policy"])
    assert raised.value.reference == reference


def test_an_output_that_could_not_be_read_makes_the_report_fail() -> None:
    report = VerifyReport(originals=3, outputs=2, unreadable_outputs=1)
    assert not report.ok
    assert "FAILED: 1 output file(s) could not be read" in report.render_text()
    assert report.to_dict()["outputs"]["unreadable"] == 1


def test_links_out_of_the_output_are_counted_as_skipped(trees: dict[str, Any], tmp_path: Path) -> None:
    out, _, _ = _copy(trees, tmp_path)
    outside = tmp_path / "elsewhere.dcm"
    outside.write_bytes(b"not part of the output")
    (out / "link.dcm").symlink_to(outside)
    report = verify_trees(trees["src"], out, trees["policy"], trees["key"])
    assert (report.ok, report.outputs, report.skipped_outputs) == (True, N, 1)
    assert report.to_dict()["outputs"]["skipped"] == 1
    assert "skipped in OUTPUT (links, FIFOs, temporary files): 1" in report.render_text()

"""``verify_trees`` on real files: a clean output passes, planted leaks are found and never echoed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomcloak.api import Deidentifier
from dicomcloak.io.reader import read_path
from dicomcloak.io.writer import write_dataset_atomic
from dicomcloak.keys import ProjectKey
from dicomcloak.policy import Policy, build_policy
from dicomcloak.testing.corpus import build_corpus
from dicomcloak.verify import VerifyReport, verify_trees


def _deidentify_tree(src: Path, out: Path, policy: Policy, key: ProjectKey) -> None:
    deid = Deidentifier(policy, key)
    for path in sorted(src.rglob("*.dcm")):
        outcome = deid.deidentify(read_path(path))
        write_dataset_atomic(out / path.relative_to(src), outcome.dataset)


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("verify")
    corpus = build_corpus(base / "corpus", 10, seed=5)
    key = ProjectKey.generate(ephemeral=True)
    policy = build_policy([])
    out = base / "out"
    _deidentify_tree(corpus / "files", out, policy, key)
    answer = json.loads((corpus / "answer_key.json").read_text())
    return {"src": corpus / "files", "out": out, "key": key, "policy": policy, "answer": answer}


def _copy(trees: dict[str, Any], tmp_path: Path) -> tuple[Path, str, dict[str, Any]]:
    out = tmp_path / "out"
    shutil.copytree(trees["out"], out)
    rel, entry = next(iter(sorted(trees["answer"]["files"].items())))
    return out, rel, entry


def _phi(entry: dict[str, Any], attr: str, kind: str | None = None) -> str:
    return next(e["value"] for e in entry["phi"] if e["attr"] == attr and (kind is None or e["kind"] == kind))


def _plant(path: Path, change: Any) -> None:
    ds = dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)


def _assert_not_echoed(report: VerifyReport, *secrets: str) -> None:
    text = report.render_text() + json.dumps(report.to_dict())
    for secret in secrets:
        assert secret.lower() not in text.lower()


@pytest.mark.parametrize("with_key", [True, False])
def test_clean_output_passes(trees: dict[str, Any], with_key: bool) -> None:
    report = verify_trees(trees["src"], trees["out"], trees["policy"], trees["key"] if with_key else None)
    assert report.ok, report.render_text()
    assert (report.files_checked, report.outputs_checked, report.leaks) == (10, 10, 0)
    assert report.matched_outputs == (10 if with_key else 0)
    assert report.render_text().startswith("checked 10 output file(s)")


def test_planted_name_in_nested_private_item_is_found_not_echoed(
    trees: dict[str, Any], tmp_path: Path
) -> None:
    out, rel, entry = _copy(trees, tmp_path)
    family = _phi(entry, "PatientName", "name_part")

    def plant(ds: Dataset) -> None:
        item = Dataset()
        item.add_new(0x00291010, "LO", "ACME 1.0")
        item.add_new(0x00291020, "LO", f"seen by {family.capitalize()}")
        ds.add_new(0x00291030, "SQ", Sequence([item]))

    _plant(out / rel, plant)
    report = verify_trees(trees["src"], out, trees["policy"], trees["key"])
    assert not report.ok
    assert report.leaks == 1
    leak = report.leaked[0]
    assert (leak.output, leak.path, leak.kind) == (rel, "(0029,1030)[0]/(0029,1020)", "name-part")
    _assert_not_echoed(report, family)
    assert "LEAKS: 1" in report.render_text()


@pytest.mark.parametrize("with_key", [True, False])
def test_planted_uid_and_reformatted_date_are_found(
    trees: dict[str, Any], tmp_path: Path, with_key: bool
) -> None:
    out, rel, entry = _copy(trees, tmp_path)
    study_uid = entry["uids"]["StudyInstanceUID"]
    birth = _phi(entry, "PatientBirthDate")
    german = f"{birth[6:]}.{birth[4:6]}.{birth[:4]}"

    def plant(ds: Dataset) -> None:
        ds.ImageComments = f"born {german}"
        item = Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = study_uid
        ds.SourceImageSequence = Sequence([item])

    _plant(out / rel, plant)
    report = verify_trees(trees["src"], out, trees["policy"], trees["key"] if with_key else None)
    found = {(leak.path, leak.kind) for leak in report.leaked}
    assert found == {("(0020,4000)", "date"), ("(0008,2112)[0]/(0008,1155)", "uid")}
    _assert_not_echoed(report, study_uid, german, birth)


def test_unparseable_output_is_scanned_as_bytes(trees: dict[str, Any], tmp_path: Path) -> None:
    out, _, entry = _copy(trees, tmp_path)
    pid = _phi(entry, "PatientID")
    (out / "notes.txt").write_text(f"export of {pid}\n")
    report = verify_trees(trees["src"], out, trees["policy"], trees["key"])
    assert report.unreadable_outputs == 1
    assert [(leak.output, leak.kind) for leak in report.leaked] == [("notes.txt", "text")]
    _assert_not_echoed(report, pid)


def test_kept_values_are_not_leaks_and_cleaned_text_is_not_a_needle(trees: dict[str, Any]) -> None:
    # Under the default profile the originals themselves leak; under a policy that keeps
    # everything the same originals leak nothing (what the policy keeps is not identifying).
    src = trees["src"]
    assert not verify_trees(src, src, trees["policy"]).ok
    keep_all = build_policy(["retain-uids"])
    report = verify_trees(src, src, keep_all)
    assert report.leaks > 0  # names, IDs, dates are still removed under retain-uids
    assert "uid" not in report.kinds


def test_empty_output_is_not_ok(trees: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    report = verify_trees(trees["src"], tmp_path / "empty", trees["policy"])
    assert not report.ok
    assert "no output file was checked" in report.render_text()

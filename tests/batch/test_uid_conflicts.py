"""Duplicates and UID conflicts in a batch (issue 12, item 1), on real files that share SOP Instance UIDs.

Run in-process (run_batch), both layouts, one and two jobs; the console script,
the vaults and re-identification are exercised in tests/acceptance/test_uid_conflicts.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dicomcloak.batch.claims import OnConflict
from dicomcloak.batch.run import RunSettings, run_batch
from dicomcloak.batch.worker import Layout, WorkerSettings
from dicomcloak.io.inputs import iter_inputs
from dicomcloak.io.reader import ReadLimits, dataset_bytes
from dicomcloak.keys import ProjectKey, Pseudonymizer
from dicomcloak.policy import build_policy

DATA = Path(__file__).parents[1] / "data" / "dicognito"
KEY = ProjectKey(b"k" * 32)

#: Sorted input names -> source. Each odd index shares the SOP Instance UID of the even one before it.
PAIRS = {
    "a_Smithers.dcm": DATA / "p01_s01_s01_i01.dcm",
    "b_Smithers_no_accession.dcm": DATA / "no_accession_p01_s01_s01_i01.dcm",
    "c_liver.dcm": Path(str(get_testdata_file("liver.dcm"))),  # 3 frames (pydicom-data)
    "d_liver_1frame.dcm": Path(str(get_testdata_file("liver_1frame.dcm"))),
    "e_CT_small.dcm": Path(str(get_testdata_file("CT_small.dcm"))),
    "f_CT_small_deflated.dcm": DATA / "CT_small_deflated.dcm",  # the same elements, deflated: a conflict
}


def make_pairs(root: Path, *extra: tuple[str, str]) -> Path:
    """The pairs under ``root``; ``extra`` adds (name, copy of which pair member) re-sends."""
    root.mkdir(parents=True)
    for name, source in PAIRS.items():
        shutil.copyfile(source, root / name)
    for name, copied in extra:
        shutil.copyfile(root / copied, root / name)
    return root


def _run(
    tmp_path: Path, inputs: Path, layout: Layout, on_conflict: OnConflict, jobs: int = 1
) -> dict[str, Any]:
    name = f"out-{layout.value}-{on_conflict.value}-{jobs}"
    worker = WorkerSettings(
        build_policy([]), KEY, "default", tmp_path / name, tmp_path / f"{name}.run" / "quarantine", layout,
        on_conflict=on_conflict,
    )
    summary = run_batch(iter_inputs([inputs]), RunSettings(worker, tmp_path / f"{name}.run", jobs))
    report = json.loads(Path(summary.run["report"]).read_text())
    report["out"] = tmp_path / name
    return report


def _digest(path: Path) -> bytes:
    """The content digest: SHA-256 of the data set as encoded (batch.claims)."""
    return hashlib.sha256(dataset_bytes(path.read_bytes(), ReadLimits())).digest()


def _written(out: Path) -> list[Path]:
    return sorted(out.rglob("*.dcm"))


@pytest.mark.parametrize("layout", list(Layout))
def test_by_default_the_later_object_is_quarantined_naming_the_first(tmp_path: Path, layout: Layout) -> None:
    inputs = make_pairs(tmp_path / "in")
    report = _run(tmp_path, inputs, layout, OnConflict.QUARANTINE)
    summary = report["summary"]
    counts = (summary["files"], summary["written"], summary["quarantined"], summary["uid_conflicts"])
    assert counts == (6, 3, 3, 3)
    assert summary["reasons"] == {"uid-conflict": 3}
    assert report["uid_conflicts"] == [
        {"index": 1, "conflicts_with": 0, "resolution": "quarantined"},
        {"index": 3, "conflicts_with": 2, "resolution": "quarantined"},
        {"index": 5, "conflicts_with": 4, "resolution": "quarantined"},
    ]
    # Written: the first of each pair (input order with one job), the 3-frame liver among them.
    frames = sorted(int(dcmread(path).get("NumberOfFrames", 1)) for path in _written(report["out"]))
    assert frames == [1, 1, 3]
    qdir = tmp_path / f"{report['out'].name}.run" / "quarantine"
    reason = json.loads((qdir / "in" / "b_Smithers_no_accession.dcm.reason.json").read_text())
    assert reason["reason"] == "uid-conflict"
    assert reason["conflicts_with"] == {"index": 0, "input": "in/a_Smithers.dcm"}
    assert reason["content_digest"] == _digest(inputs / "b_Smithers_no_accession.dcm").hex()
    assert len(reason["conflicting_content_digest"]) == 64
    # The quarantine keeps the later original byte for byte; reports and events name no input.
    assert (qdir / "in" / "d_liver_1frame.dcm").read_bytes() == (inputs / "d_liver_1frame.dcm").read_bytes()
    for name in ("report.json", "events.jsonl"):
        text = (Path(report["summary"]["report"]).parent / name).read_text()
        assert "Smithers" not in text and "liver" not in text


@pytest.mark.parametrize("layout", list(Layout))
def test_keep_both_writes_every_object_under_its_own_uid(tmp_path: Path, layout: Layout) -> None:
    inputs = make_pairs(tmp_path / "in")
    report = _run(tmp_path, inputs, layout, OnConflict.KEEP_BOTH)
    summary = report["summary"]
    assert (summary["written"], summary["quarantined"], summary["uid_conflicts"]) == (6, 0, 3)
    assert summary["uid_conflict_resolution"] == "keep-both"
    assert [c["resolution"] for c in report["uid_conflicts"]] == ["kept-both"] * 3
    outputs = [dcmread(path) for path in _written(report["out"])]
    uids = {str(ds.SOPInstanceUID) for ds in outputs}
    assert len(uids) == 6
    assert all(ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID for ds in outputs)
    # The later object's UID: keyed, from its original UID and its content digest.
    later = inputs / "d_liver_1frame.dcm"
    original = str(dcmread(later).SOPInstanceUID)
    assert Pseudonymizer(KEY).conflict_uid(original, _digest(later)) in uids
    assert Pseudonymizer(KEY).uid(original) in uids  # the first keeps the usual keyed UID
    assert sorted(int(ds.get("NumberOfFrames", 1)) for ds in outputs).count(3) == 1


@pytest.mark.parametrize("layout", list(Layout))
@pytest.mark.parametrize("on_conflict", list(OnConflict))
def test_identical_resends_are_duplicates_not_written_again(
    tmp_path: Path, layout: Layout, on_conflict: OnConflict
) -> None:
    # g re-sends a (the first of its pair); h re-sends b (the later, conflicting one).
    resends = ("g_resend.dcm", "a_Smithers.dcm"), ("h_resend.dcm", "b_Smithers_no_accession.dcm")
    inputs = make_pairs(tmp_path / "in", *resends)
    report = _run(tmp_path, inputs, layout, on_conflict)
    summary = report["summary"]
    if on_conflict is OnConflict.KEEP_BOTH:
        # h is the same object as b, already kept under the UID derived from its content.
        assert (summary["written"], summary["duplicates"], summary["uid_conflicts"]) == (6, 2, 3)
    else:
        # h conflicts with a, as b did: quarantined too (and named, as b, in its reason file).
        assert (summary["written"], summary["duplicates"], summary["quarantined"]) == (3, 1, 4)
    not_written = report["not_written"]
    duplicates = [entry["index"] for entry in not_written if entry["reason"] == "duplicate-instance"]
    assert duplicates == ([6, 7] if on_conflict is OnConflict.KEEP_BOTH else [6])
    assert len(_written(report["out"])) == summary["written"]


@pytest.mark.parametrize("on_conflict", list(OnConflict))
def test_two_jobs_account_for_every_input_the_same_way(tmp_path: Path, on_conflict: OnConflict) -> None:
    inputs = make_pairs(tmp_path / "in", ("g_resend.dcm", "a_Smithers.dcm"))
    one = _run(tmp_path, inputs, Layout.PSEUDONYMOUS, on_conflict, jobs=1)["summary"]
    two = _run(tmp_path, inputs, Layout.PSEUDONYMOUS, on_conflict, jobs=2)["summary"]
    keys = ("files", "written", "duplicates", "quarantined", "uid_conflicts", "reasons")
    assert {k: one[k] for k in keys} == {k: two[k] for k in keys}
    assert two["jobs"] == 2

"""The batch layer in-process: per-file results, claims, the report, job-count independence."""

from __future__ import annotations

import gc
import json
import pickle
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from dicomcloak.batch.claims import DirClaims, MemoryClaims
from dicomcloak.batch.report import ReportBuilder
from dicomcloak.batch.run import RunSettings, run_batch
from dicomcloak.batch.worker import (
    FileResult,
    Layout,
    Status,
    WorkerSettings,
    build_context,
    process_chunk,
    process_item,
)
from dicomcloak.errors import OutputError
from dicomcloak.io.inputs import iter_inputs
from dicomcloak.keys import ProjectKey
from dicomcloak.policy import build_policy


def _settings(
    tmp_path: Path, jobs: int = 1, out: str = "out", layout: Layout = Layout.PSEUDONYMOUS
) -> RunSettings:
    key = ProjectKey(b"k" * 32)
    worker = WorkerSettings(
        build_policy([]), key, "default", tmp_path / out, tmp_path / f"{out}.run" / "q", layout
    )
    return RunSettings(worker, tmp_path / f"{out}.run", jobs)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_run_batch_writes_outputs_and_report(dicom_tree: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    summary = run_batch(iter_inputs([dicom_tree]), settings)
    assert (summary.files, summary.written, summary.quarantined) == (6, 6, 0)
    assert len(_tree(tmp_path / "out")) == 6
    report = json.loads((tmp_path / "out.run" / "latest" / "report.json").read_text())
    assert report["summary"]["written"] == 6
    assert sum(change["count"] for change in report["changes"]) == summary.changed_attributes
    assert not list((tmp_path / "out.run").glob(".claims-*"))


def test_job_count_changes_neither_outputs_nor_report_counts(dicom_tree: Path, tmp_path: Path) -> None:
    one = run_batch(iter_inputs([dicom_tree]), _settings(tmp_path, 1, "one"))
    two = run_batch(iter_inputs([dicom_tree]), _settings(tmp_path, 2, "two"))
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")
    report_one = json.loads((tmp_path / "one.run" / "latest" / "report.json").read_text())
    report_two = json.loads((tmp_path / "two.run" / "latest" / "report.json").read_text())
    assert report_one["changes"] == report_two["changes"]
    assert (one.written, one.changed_attributes) == (two.written, two.changed_attributes)


def test_workers_started_without_fork_give_the_same_outputs(dicom_tree: Path, tmp_path: Path) -> None:
    """With a thread alive, fork is unsafe: the pool starts its workers by forkserver (or spawn) instead."""
    import threading

    from dicomcloak.batch.run import _mp_context

    one = run_batch(iter_inputs([dicom_tree]), _settings(tmp_path, 1, "one"))
    stop = threading.Event()
    alive = threading.Thread(target=stop.wait)
    alive.start()
    try:
        assert _mp_context().get_start_method() != "fork"
        two = run_batch(iter_inputs([dicom_tree]), _settings(tmp_path, 2, "two"))
    finally:
        stop.set()
        alive.join()
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")
    assert (one.written, one.changed_attributes) == (two.written, two.changed_attributes)


def test_non_dicom_is_quarantined_with_a_small_phi_free_result(tmp_path: Path) -> None:
    source = tmp_path / "in" / "Smithers_Waylon.txt"
    source.parent.mkdir()
    source.write_text("Smithers^Waylon")
    settings = _settings(tmp_path)
    (item,) = iter_inputs([source.parent])
    result = process_item(item, build_context(settings.worker), 7)
    assert (result.index, result.status, result.reason) == (7, Status.QUARANTINED, "not-dicom")
    assert b"Smithers" not in pickle.dumps(result)
    assert list(settings.worker.quarantine_dir.rglob("*.reason.json"))


def test_file_result_round_trips_through_pickle() -> None:
    result = FileResult(
        3, Status.WRITTEN, "", 2, "P1/S/R/I.dcm", 10, 12, ((("(0010,0010)", "Z", "table:basic"), 1),)
    )
    assert pickle.loads(pickle.dumps(result)) == result
    # Every field crosses: FileResult pickles as a constructor call that lists them all.
    from dataclasses import fields

    full = FileResult(
        **{f.name: getattr(result, f.name) for f in fields(FileResult)} | {"reason": "r", "event": "{}"}
    )
    assert pickle.loads(pickle.dumps(full, protocol=pickle.HIGHEST_PROTOCOL)) == full
    assert len(pickle.loads(pickle.dumps(full)).__reduce__()[1]) == len(fields(FileResult))


def test_claims_first_wins(tmp_path: Path) -> None:
    for claims in (MemoryClaims(), DirClaims(tmp_path)):
        assert claims.claim_path("a/b.dcm")
        assert not claims.claim_path("a/b.dcm")
        assert claims.claim_path("a/c.dcm")


def test_report_is_independent_of_result_order() -> None:
    results = [
        FileResult(i, Status.WRITTEN, "", 1, f"p{i}", 1, 1, ((((0x00100010,), "Z", "table:basic"), 1),))
        for i in range(5)
    ] + [FileResult(9, Status.QUARANTINED, "not-dicom")]
    forward, backward = ReportBuilder(), ReportBuilder()
    for result in results:
        forward.add(result)
    for result in reversed(results):
        backward.add(result)
    summary = forward.summary(1.0, {})
    assert forward.report(summary) == backward.report(summary)


def test_unwritable_output_raises_output_error(dicom_tree: Path, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("a file where the output directory should be")
    with pytest.raises(OutputError):
        run_batch(iter_inputs([dicom_tree]), _settings(tmp_path))


def test_a_chunk_ships_its_change_counts_once(dicom_tree: Path, tmp_path: Path) -> None:
    """The last result of a chunk carries the chunk's summed counts; the report's totals do not change."""
    items = list(iter_inputs([dicom_tree]))
    settings = _settings(tmp_path).worker
    ctx = build_context(settings)
    single_ctx = build_context(replace(settings, out_dir=tmp_path / "o2"))
    singles = [process_item(item, single_ctx, i) for i, item in enumerate(items)]
    single_ctx.writer.close()
    chunk = process_chunk(list(enumerate(items)), ctx)
    ctx.writer.close()
    expected: Counter[object] = Counter()
    for result in singles:
        expected.update(dict(result.changes))
    assert all(not result.changes for result in chunk[:-1])
    assert Counter(dict(chunk[-1].changes)) == expected
    assert [r.n_changes for r in chunk] == [r.n_changes for r in singles]


@pytest.mark.parametrize("padding", [2, 7])
def test_zero_padded_input_gives_the_unpadded_output(tmp_path: Path, padding: int) -> None:
    from pydicom.data import get_testdata_file

    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    outputs = {}
    for name, content in (("plain", data), ("padded", data + b"\x00" * padding)):
        (tmp_path / f"in-{name}").mkdir()
        (tmp_path / f"in-{name}" / "x.dcm").write_bytes(content)
        summary = run_batch(iter_inputs([tmp_path / f"in-{name}"]), _settings(tmp_path, 1, name))
        assert (summary.written, summary.quarantined) == (1, 0)
        outputs[name] = _tree(tmp_path / name)
    assert outputs["padded"] == outputs["plain"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_run_gives_the_collector_back_to_a_long_lived_caller(
    dicom_tree: Path, tmp_path: Path, jobs: int
) -> None:
    """The heap is frozen for the run only: a service calling run_batch again and again would
    otherwise never collect a cycle made before any of its runs."""
    gc.unfreeze()
    run_batch(iter_inputs([dicom_tree]), _settings(tmp_path, jobs))
    assert gc.get_freeze_count() == 0

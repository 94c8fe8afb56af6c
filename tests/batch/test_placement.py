"""A group that cannot be sealed is not written, not counted written, blames no input (issue 13, item 1).

Worker level: a group's sealing hook fails (the vault's typed error, or a bug
standing in for any exception that is none of ours) while later inputs are
being processed. The error stops the chunk; no input is quarantined for it;
the writer's ``unplaced`` names exactly the inputs whose outputs are not on
disk. Report level: the builder moves those inputs from written to unwritten.
The same on a real locked, full or stopped vault: ``test_vault_failures.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomcloak.batch.placement import Placement
from dicomcloak.batch.report import UNWRITTEN, ReportBuilder
from dicomcloak.batch.worker import FileResult, Status, WorkerSettings, build_context, process_chunk
from dicomcloak.errors import DicomcloakError, VaultDatabaseError
from dicomcloak.io.grouped import GroupedWriter
from dicomcloak.io.inputs import InputItem, iter_inputs
from dicomcloak.keys import ProjectKey
from dicomcloak.policy import build_policy


class FailingSeal:
    """A group's sealing hook that seals ``good`` groups, then raises ``error`` (records: none, no vault)."""

    def __init__(self, good: int, error: Exception) -> None:
        self.good, self.error, self.calls = good, error, 0

    def __call__(self, records: list[object]) -> None:
        self.calls += 1
        if self.calls > self.good:
            raise self.error


def _hook(reference: str) -> FailingSeal:
    if reference == "vault-full":
        return FailingSeal(1, VaultDatabaseError("the vault is full (SQLITE_FULL)", reference=reference))
    return FailingSeal(0, KeyError("a bug in the hook, not the input's fault"))


@pytest.mark.parametrize("reference", ["vault-full", "internal-error"])
def test_a_failed_group_stops_the_chunk_quarantines_nobody_and_is_unplaced(
    dicom_tree: Path, tmp_path: Path, reference: str
) -> None:
    hook = _hook(reference)
    key = ProjectKey(b"k" * 32)
    ctx = build_context(WorkerSettings(build_policy([]), key, "default", tmp_path / "out", tmp_path / "q"))
    ctx.writer = GroupedWriter(max_files=2, background=True, before_commit=hook)
    items = [item for item in iter_inputs([dicom_tree]) if isinstance(item, InputItem)]
    placement = Placement()
    with pytest.raises(DicomcloakError) as raised, placement.closing(ctx):
        process_chunk(list(enumerate(items)), ctx)
    assert raised.value.reference == reference
    assert not (tmp_path / "q").exists()  # nobody quarantined for the group's failure
    on_disk = len(list((tmp_path / "out").rglob("*.dcm")))
    assert on_disk == 2 * hook.good  # the groups sealed before the failure, and only those
    assert placement.unplaced and on_disk + len(placement.unplaced) <= len(items)


def test_the_report_moves_unplaced_inputs_from_written_to_unwritten() -> None:
    builder = ReportBuilder()
    for index in range(5):
        builder.add(FileResult(index, Status.WRITTEN, bytes_in=100, bytes_out=10 * index))
    builder.add(FileResult(5, Status.QUARANTINED, "not-dicom"))
    builder.unplaced({1: 10, 3: 30, 7: 70}, "vault-busy")  # 7: its chunk stopped before its result came
    summary = builder.summary(1.0, {}, entries=9)
    assert (summary.written, summary.quarantined, builder.unwritten) == (3, 1, 3)
    assert summary.bytes_out == 0 + 20 + 40 and summary.files == 9 and builder.accounted == 7
    assert summary.reasons == {"not-dicom": 1, "vault-busy": 3}
    report = builder.report(summary)
    unwritten = [entry["index"] for entry in report["not_written"] if entry["status"] == UNWRITTEN]
    assert unwritten == [1, 3, 7]

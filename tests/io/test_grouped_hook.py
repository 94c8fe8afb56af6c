"""The grouped writer's ``before_commit`` hook: once per group, before any rename, in both modes."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from dicomcloak.errors import SealError
from dicomcloak.io.grouped import GroupedWriter


class Recorder:
    """A hook that records, for each call, its records and which outputs already existed."""

    def __init__(self, outputs: list[Path]) -> None:
        self.outputs = outputs
        self.calls: list[tuple[list[object], int, str]] = []

    def __call__(self, records: list[object]) -> None:
        visible = sum(path.exists() for path in self.outputs)
        self.calls.append((list(records), visible, threading.current_thread().name))


@pytest.mark.parametrize("background", [False, True])
def test_the_hook_sees_each_group_before_its_files_appear(tmp_path: Path, background: bool) -> None:
    outputs = [tmp_path / f"f{number}.dcm" for number in range(10)]
    hook = Recorder(outputs)
    writer = GroupedWriter(max_files=4, background=background, before_commit=hook)
    for number, path in enumerate(outputs):
        writer.submit(path, b"x" * 10, record=number)
    writer.close()  # the last group of two is committed here: the hook runs for it too
    assert [records for records, _, _ in hook.calls] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [visible for _, visible, _ in hook.calls] == [0, 4, 8]  # never a file of its own group
    assert all(path.read_bytes() == b"x" * 10 for path in outputs)
    threads = {name for _, _, name in hook.calls}
    assert all(name.startswith("dicomcloak-commit") for name in threads) == background


@pytest.mark.parametrize("background", [False, True])
def test_a_failing_hook_leaves_no_file_of_its_group(tmp_path: Path, background: bool) -> None:
    def refuse(records: list[object]) -> None:
        if 5 in records:
            raise SealError("vault unavailable", reference="vault-unavailable")

    writer = GroupedWriter(max_files=4, background=background, before_commit=refuse)

    def write_all() -> None:
        for number in range(12):
            writer.submit(tmp_path / f"f{number}.dcm", b"data", record=number)
        writer.close()

    with pytest.raises(SealError):
        write_all()
    with contextlib.suppress(SealError):
        writer.close()  # the error surfaced already: let the writer finish what is in flight
    names = sorted(p.name for p in tmp_path.iterdir())
    assert {"f4.dcm", "f5.dcm", "f6.dcm", "f7.dcm"}.isdisjoint(names)
    assert {"f0.dcm", "f1.dcm", "f2.dcm", "f3.dcm"} <= set(names)
    assert not [name for name in names if name.endswith(".tmp") or name.startswith(".")]


def test_records_are_optional(tmp_path: Path) -> None:
    calls: list[list[object]] = []
    writer = GroupedWriter(max_files=2, before_commit=calls.append)
    for number in range(3):
        writer.submit(tmp_path / f"f{number}.dcm", b"data")
    writer.close()
    assert calls == [[], []]

"""Grouped atomic writes: complete after commit, failures raised, nothing half-written."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import pytest

from dicomcloak.errors import OutputError
from dicomcloak.io.grouped import GroupedWriter, sync_file_system


def test_files_appear_complete_only_when_their_group_commits(tmp_path: Path) -> None:
    writer = GroupedWriter(max_files=4, max_bytes=1 << 20)
    expected = {}
    for number in range(10):
        path = tmp_path / f"d{number % 3}" / f"f{number}.dcm"
        parts = [b"head", bytes([number]) * 1000, b"tail"]
        writer.submit(path, parts)
        expected[path] = b"".join(parts)
    # Two groups of four were committed by the bound; the last two wait for commit().
    assert sum(path.exists() for path in expected) == 8
    writer.close()
    for path, content in expected.items():
        assert path.read_bytes() == content
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_failed_write_is_raised_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"x")
    writer = GroupedWriter()
    with pytest.raises(OutputError) as info:
        writer.submit(blocker / "out.dcm", b"data")
    assert info.value.reference == "output-unwritable"
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-directory"]


def test_a_failed_rename_removes_the_rest_of_the_group(tmp_path: Path) -> None:
    writer = GroupedWriter()
    writer.submit(tmp_path / "a" / "ok.dcm", b"ok")
    target = tmp_path / "b" / "dir-in-the-way.dcm"
    writer.submit(target, b"data")
    target.mkdir()  # os.replace onto a directory fails
    writer.submit(tmp_path / "c" / "after.dcm", b"later")
    with pytest.raises(OutputError):
        writer.commit()
    assert (tmp_path / "a" / "ok.dcm").read_bytes() == b"ok"
    assert not (tmp_path / "c" / "after.dcm").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_background_commits_finish_on_close(tmp_path: Path) -> None:
    writer = GroupedWriter(max_files=3, background=True)
    paths = [tmp_path / f"f{number}.dcm" for number in range(10)]
    for number, path in enumerate(paths):
        writer.submit(path, bytes([number]) * 100)
    writer.close()
    assert [path.read_bytes() for path in paths] == [bytes([n]) * 100 for n in range(10)]
    assert not list(tmp_path.rglob("*.tmp"))


def test_background_failure_is_raised_by_close(tmp_path: Path) -> None:
    writer = GroupedWriter(background=True)
    target = tmp_path / "in-the-way.dcm"
    writer.submit(target, b"data")
    target.mkdir()
    writer.commit()  # the group is handed to the commit thread
    with pytest.raises(OutputError):
        writer.close()
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("write_batch", [1, 2, 8])
def test_background_write_failure_leaves_nothing_of_its_group(tmp_path: Path, write_batch: int) -> None:
    """Whether the group's files were handed over one at a time, in pairs or all at once."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"x")
    writer = GroupedWriter(background=True, write_batch=write_batch)
    writer.submit(tmp_path / "a" / "first.dcm", b"first")
    writer.submit(blocker / "out.dcm", b"data")  # written on the commit thread, fails there
    writer.submit(tmp_path / "c" / "last.dcm", b"last")
    with pytest.raises(OutputError) as info:
        writer.close()
    assert info.value.reference == "output-unwritable"
    assert not list(tmp_path.rglob("*.dcm"))
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_file_is_durable_before_its_rename(tmp_path: Path) -> None:
    """Whichever way the group is synced (syncfs or fsync), every file has its full content."""
    writer = GroupedWriter(max_files=5, background=True)
    payloads = {tmp_path / f"s{n % 4}" / f"f{n}.dcm": [bytes([n]) * (1000 + n), b"end"] for n in range(23)}
    for path, parts in payloads.items():
        writer.submit(path, parts)
    writer.close()
    assert {path: path.read_bytes() for path in payloads} == {p: b"".join(v) for p, v in payloads.items()}


def test_sync_file_system_accepts_a_directory_and_a_missing_one(tmp_path: Path) -> None:
    (tmp_path / "f.dcm").write_bytes(b"x")
    sync_file_system(tmp_path)  # syncfs of the directory's file system
    sync_file_system(tmp_path / "missing")  # falls back to sync()
    assert (tmp_path / "f.dcm").read_bytes() == b"x"


def test_more_parts_than_one_writev_takes_are_written_in_order(tmp_path: Path) -> None:
    """A payload of more parts than IOV_MAX (1,024) is written in batches, nothing lost or reordered."""
    parts = [number.to_bytes(2, "little") * (number % 7) for number in range(3000)]
    writer = GroupedWriter(background=True)
    writer.submit(tmp_path / "many.dcm", parts)
    writer.close()
    assert (tmp_path / "many.dcm").read_bytes() == b"".join(parts)


def test_a_short_writev_goes_on_from_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """writev may write less than asked (a signal, a nearly full disk): the rest follows, in order."""
    import os

    real_writev = os.writev

    def short_writev(fd: int, buffers: list[memoryview]) -> int:
        # The real call, on at most 7 bytes: cuts parts in the middle and at their ends.
        budget, taken = 7, []
        for buffer in buffers:
            taken.append(buffer[:budget])
            budget -= len(taken[-1])
            if budget == 0:
                break
        return real_writev(fd, taken)

    monkeypatch.setattr(os, "writev", short_writev)
    parts = [b"preamble", b"", b"x" * 20, b"meta", bytes(range(50))]
    writer = GroupedWriter()
    writer.submit(tmp_path / "short.dcm", parts)
    writer.close()
    assert (tmp_path / "short.dcm").read_bytes() == b"".join(parts)


def test_background_files_are_written_as_they_arrive_and_appear_on_commit(tmp_path: Path) -> None:
    """The payloads go to disk a batch at a time (hidden temporary files), not when the group is whole."""
    writer = GroupedWriter(max_files=100, background=True, write_batch=2)
    paths = [tmp_path / f"f{number}.dcm" for number in range(5)]
    for number, path in enumerate(paths):
        writer.submit(path, bytes([number]) * 100)
    deadline = time.monotonic() + 10
    while len(list(tmp_path.glob(".*.tmp"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(list(tmp_path.glob(".*.tmp"))) == 4  # two batches of two; the fifth waits for its batch
    assert not any(path.exists() for path in paths)
    writer.close()
    assert [path.read_bytes() for path in paths] == [bytes([n]) * 100 for n in range(5)]
    assert not list(tmp_path.glob(".*.tmp"))


def test_background_groups_commit_in_order_across_batches(tmp_path: Path) -> None:
    """Groups of 5 written in batches of 3: every group is renamed whole, none before its writes."""
    writer = GroupedWriter(max_files=5, background=True, write_batch=3)
    payloads = {tmp_path / f"s{n % 3}" / f"f{n}.dcm": [bytes([n]) * (100 + n), b"end"] for n in range(23)}
    for path, parts in payloads.items():
        writer.submit(path, parts)
    writer.close()
    assert {path: path.read_bytes() for path in payloads} == {p: b"".join(v) for p, v in payloads.items()}
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_earlier_group_failure_leaves_no_temporary_file_of_the_next_group(tmp_path: Path) -> None:
    """The next group's files, already written when the failure surfaces, are removed, not left as debris."""
    writer = GroupedWriter(max_files=2, background=True, write_batch=1)
    target = tmp_path / "in-the-way.dcm"
    target.mkdir()  # the first group's rename fails on the commit thread
    writer.submit(target, b"first")
    writer.submit(tmp_path / "a.dcm", b"a")  # group 1 full: committed in the background
    failed = False
    try:  # the failure surfaces at one of the next group commits, when they wait for it
        for number in range(6):
            writer.submit(tmp_path / f"later{number}.dcm", b"later")
    except OutputError:
        failed = True
    with pytest.raises(OutputError) if not failed else nullcontext():
        writer.close()
    assert not list(tmp_path.rglob("*.tmp"))
    assert not (tmp_path / "a.dcm").exists()

"""The background writer: outputs complete after drain, failures surface, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomcloak.batch.background import BackgroundWriter
from dicomcloak.errors import OutputError


@pytest.mark.parametrize("threads", [0, 2])
def test_writes_are_complete_after_drain(tmp_path: Path, threads: int) -> None:
    writer = BackgroundWriter(threads, max_pending=3, max_bytes=1 << 20)
    expected = {}
    for number in range(20):
        path = tmp_path / f"d{number % 4}" / f"f{number}.dcm"
        parts = [b"head", bytes([number]) * 1000, b"tail"]
        writer.submit(path, parts)
        expected[path] = b"".join(parts)
    writer.close()
    for path, content in expected.items():
        assert path.read_bytes() == content
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("threads", [0, 2])
def test_a_failed_write_is_raised_and_leaves_no_temp_file(tmp_path: Path, threads: int) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"x")
    writer = BackgroundWriter(threads)

    def write_and_drain() -> None:
        writer.submit(blocker / "out.dcm", [b"data"])  # inline (0 threads) raises here
        writer.drain()  # threaded raises here

    with pytest.raises(OutputError):
        write_and_drain()
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-directory"]

"""Atomic writes committed in groups: one journal commit for many files, same guarantees.

Each output is still written to a hidden temporary file, fsynced, and only
then renamed to its final name (DESIGN.md decision 6). A batch writes a group
of temporary files first and fsyncs them together: the first fsync commits the
file system journal for the whole group, so the others cost next to nothing,
and no thread or lock is needed to keep the CPU busy meanwhile.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from dicomcloak.io.writer import _open_temp, _remove_quietly, _unwritable

__all__ = ["GroupedWriter"]


class GroupedWriter:
    """Write files atomically, fsyncing and renaming them a group at a time.

    Parameters
    ----------
    max_files, max_bytes:
        A group is committed when it reaches either bound (open files and
        unsynced bytes stay bounded); :meth:`commit` commits it sooner.
    background:
        Commit each group on one background thread while the caller goes on
        writing the next (at most one group in flight); a failure is raised
        by the next :meth:`commit` or by :meth:`close`.
    """

    def __init__(self, max_files: int = 64, max_bytes: int = 256 << 20, *, background: bool = False) -> None:
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._pending: list[tuple[BinaryIO, Path, Path]] = []
        self._bytes = 0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="dicomcloak-commit") if background else None
        self._in_flight: Future[None] | None = None

    def submit(self, path: Path, payload: bytes | Sequence[bytes]) -> None:
        """Write ``payload`` to a temporary file beside ``path``; it is renamed on commit.

        Raises
        ------
        OutputError
            ``output-unwritable``; nothing of this file is left behind.
        """
        parts = [payload] if isinstance(payload, bytes) else payload
        handle, tmp = _open_temp(path)
        try:
            handle.writelines(parts)
            handle.flush()
        except OSError:
            _discard(handle, tmp)
            raise _unwritable(path) from None
        self._pending.append((handle, tmp, path))
        self._bytes += sum(len(part) for part in parts)
        if len(self._pending) >= self._max_files or self._bytes >= self._max_bytes:
            self.commit()

    def commit(self) -> None:
        """fsync every pending file, then rename each to its final name.

        Raises
        ------
        OutputError
            ``output-unwritable`` for the first file that failed; the files of
            the group not yet renamed are removed, none is left half-written.
        """
        pending, self._pending, self._bytes = self._pending, [], 0
        self._wait()
        if self._executor is None:
            _commit(pending)
        elif pending:
            self._in_flight = self._executor.submit(_commit, pending)

    def sync(self) -> None:
        """Commit what is pending and wait until every file written so far is on disk."""
        self.commit()
        self._wait()

    def close(self) -> None:
        """:meth:`sync`, then stop the commit thread."""
        try:
            self.sync()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()


def _commit(pending: list[tuple[BinaryIO, Path, Path]]) -> None:
    """fsync, close and rename each file of a group; after a failure, remove the rest."""
    failed: Path | None = None
    for handle, tmp, path in pending:
        if failed is None:
            try:
                os.fsync(handle.fileno())
                handle.close()
                os.replace(tmp, path)
                continue
            except OSError:
                failed = path
        _discard(handle, tmp)
    if failed is not None:
        raise _unwritable(failed)


def _discard(handle: BinaryIO, tmp: Path) -> None:
    with suppress(OSError):
        handle.close()
    _remove_quietly(tmp)

"""Atomic writes committed in groups: one journal commit for many files, same guarantees.

Each output is still written to a hidden temporary file (in the tree's
``.dicomcloak-tmp/`` when the writer is given its :class:`~dicomcloak.io.staging.Tree`),
fsynced, and only then renamed to its final name (architecture.md decision 6). A batch
writes a group of temporary files first and fsyncs them together: the first fsync
commits the file system journal for the whole group, so the others cost next to
nothing, and no thread or lock is needed to keep the CPU busy meanwhile.

A file submitted with a ``tag`` stays in :attr:`GroupedWriter.unplaced` until it
is in place: after :meth:`close`, exactly the submitted files not on disk (the
batch counts "written" from it, not from what it submitted).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any, cast

from dicomcloak.errors import DicomcloakError, OutputError
from dicomcloak.io.staging import Tree
from dicomcloak.io.writer import _open_temp_fd, _remove_quietly, _unwritable

__all__ = ["GroupedWriter", "sync_file_system"]


class GroupedWriter:
    """Write files atomically, fsyncing and renaming them a group at a time.

    Parameters
    ----------
    max_files, max_bytes:
        A group is committed when it reaches either bound (open files and
        unsynced bytes stay bounded); :meth:`commit` commits it sooner.
    background:
        Write and commit on one background thread while the caller goes on
        (at most two groups in flight, so a slow journal commit does not
        stall the caller); a failure is raised by a later :meth:`commit` or
        by :meth:`close`. Files are written a few at a time as they arrive
        (``write_batch``), and each group is synced and renamed once whole.
    write_batch:
        With ``background``, how many submitted files are handed to the
        background thread at a time. Writing a payload soon after it was
        encoded copies it into the page cache while it is still in the CPU's
        cache, and frees its memory for the next file; holding it until its
        whole group was ready (up to ``max_files`` files, tens of MB) did
        neither (docs/benchmarks.md).
    before_commit:
        Called once per group, on the thread that commits it, with the
        records submitted with the group's files (in order, possibly none),
        after the files are written and before any is renamed into place:
        the vault seals a group's originals there, so no output appears
        unless its originals are sealed. If it raises, no file of the group
        is renamed and the error (a bug: ``internal-error``) surfaces like a
        write failure, from a later call: never the caller's current file's.
    tree:
        The tree the files belong to: their temporary files are created in
        its staging directory (:mod:`dicomcloak.io.staging`), not beside them.
    """

    def __init__(
        self,
        max_files: int = 64,
        max_bytes: int = 256 << 20,
        *,
        background: bool = False,
        before_commit: Callable[[list[Any]], None] | None = None,
        write_batch: int = 8,
        tree: Tree | None = None,
    ) -> None:
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._write_batch = max(1, write_batch)
        self._pending: list[_Temp] = []
        self._payloads: list[tuple[Path, Sequence[bytes], Any]] = []
        self._unplaced: dict[Any, int] = {}  # tag -> bytes, until the file is renamed into place
        self._group = _Group()
        self._files = 0  # files of the current group (background)
        self._records: list[Any] = []
        self._before_commit = before_commit
        self._bytes = 0
        self._tree = tree
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="dicomcloak-commit") if background else None
        self._writes: deque[Future[None]] = deque()
        self._in_flight: deque[Future[None]] = deque()

    def submit(
        self, path: Path, payload: bytes | Sequence[bytes], record: Any = None, tag: Any = None
    ) -> None:
        """Write ``payload`` to a temporary file (see ``tree``); it is renamed to ``path`` on commit.

        ``tag`` (hashable, unique): in :attr:`unplaced` until the file is in place.

        With ``background``, the temporary file is created and written on the
        commit thread too: creating a file waits while the file system commits
        its journal, and that wait belongs off the thread that de-identifies.

        Raises
        ------
        OutputError
            ``output-unwritable``; nothing of this file is left behind.
        """
        parts = [payload] if isinstance(payload, bytes) else payload
        size = sum(map(len, parts))
        if record is not None:
            self._records.append(record)
        if tag is not None:
            self._unplaced[tag] = size
        if self._executor is not None:
            self._payloads.append((path, parts, tag))
            self._files += 1
            if len(self._payloads) >= self._write_batch:
                self._hand_over_writes(self._executor)
        else:
            self._pending.append((*_write_temp(path, parts, self._tree), path, tag))
            self._files = len(self._pending)
        self._bytes += size
        if self._files >= self._max_files or self._bytes >= self._max_bytes:
            self.commit()

    def commit(self) -> None:
        """fsync every pending file, then rename each to its final name.

        Raises
        ------
        OutputError
            ``output-unwritable`` for the first file that failed; the files of
            the group not yet renamed are removed, none is left half-written.
        """
        pending, self._pending, self._bytes, files, self._files = self._pending, [], 0, self._files, 0
        records, self._records = self._records, []
        if self._executor is None:
            self._wait(keep=_MAX_IN_FLIGHT - 1)
            if pending:
                _run_hook(self._before_commit, records, pending)
            _commit(pending, self._unplaced)
            return
        self._hand_over_writes(self._executor)
        group, self._group = self._group, _Group()
        try:
            self._wait(keep=_MAX_IN_FLIGHT - 1)
        except BaseException:
            # An earlier group failed: this one, already partly written, is removed, not committed.
            self._executor.submit(_discard_group, group)
            raise
        if files:
            self._in_flight.append(
                self._executor.submit(_commit_group, group, self._before_commit, records, self._unplaced)
            )

    def _hand_over_writes(self, executor: ThreadPoolExecutor) -> None:
        """Queue the files submitted since the last hand-over for writing into the current group."""
        if self._payloads:
            self._writes.append(executor.submit(_write_batch, self._group, self._payloads, self._tree))
            self._payloads = []

    @property
    def unplaced(self) -> dict[Any, int]:
        """Tags of submitted files not (yet) in place, with their sizes; after :meth:`close`, not on disk."""
        return dict(self._unplaced)

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

    def _wait(self, keep: int = 0) -> None:
        """Wait for the oldest groups in flight until at most ``keep`` remain; raise a write's failure.

        Writes run in order before their group's commit, so a write that is
        not done yet belongs to a group still in flight: its failure is
        raised when it is done (at the latest by :meth:`sync`).
        """
        while self._writes and (self._writes[0].done() or not keep):
            self._writes.popleft().result()
        while len(self._in_flight) > keep:
            self._in_flight.popleft().result()


_MAX_IN_FLIGHT = 2


#: A temporary file of a group: its open descriptor, its name, its final name, its tag.
_Temp = tuple[int, Path, Path, Any]
#: The hook run before a group is renamed into place (the vault seals the group's records).
_Hook = Callable[[list[Any]], None] | None


def _write_temp(path: Path, parts: Sequence[bytes], tree: Tree | None) -> tuple[int, Path]:
    """Write ``parts`` to a new temporary file for ``path``; its open descriptor. Removed if that fails.

    One ``writev`` per file, straight from the parts (no buffered file object,
    no join): on the commit thread every system call gives up the interpreter
    lock and must win it back from the thread that de-identifies, so fewer
    calls mean fewer waits.
    """
    fd, tmp = _open_temp_fd(path, tree)
    try:
        _write_all(fd, parts)
    except OSError:
        _discard(fd, tmp)
        raise _unwritable(path) from None
    return fd, tmp


_IOV_MAX = 1024  # POSIX minimum of IOV_MAX (Linux: 1024)


def _write_all(fd: int, parts: Sequence[bytes]) -> None:
    """Write every part in order; ``writev`` may write less than asked (a signal, a full disk)."""
    views = [memoryview(part) for part in parts if len(part)]
    first = 0  # the first part not yet wholly written
    while first < len(views):
        written = os.writev(fd, views[first : first + _IOV_MAX])
        if written == 0:
            raise OSError("writev wrote nothing")
        while first < len(views) and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:  # the call stopped inside a part: go on from there
            views[first] = views[first][written:]


class _Group:
    """A group's temporary files as the background thread writes them (only that thread touches it)."""

    __slots__ = ("failed", "written")

    def __init__(self) -> None:
        self.written: list[_Temp] = []
        self.failed = False


def _write_batch(group: _Group, payloads: list[tuple[Path, Sequence[bytes], Any]], tree: Tree | None) -> None:
    """Write some of a group's temporary files; after a failure nothing of the group is left or written."""
    if group.failed:
        return
    try:
        for path, parts, tag in payloads:
            group.written.append((*_write_temp(path, parts, tree), path, tag))
    except OutputError:
        _discard_group(group)
        raise


def _discard_group(group: _Group) -> None:
    """Remove a group's temporary files and drop its later writes (a failure elsewhere stops the writer)."""
    group.failed = True
    for fd, tmp, _, _ in group.written:
        _discard(fd, tmp)
    group.written.clear()


def _commit_group(group: _Group, before_commit: _Hook, records: list[Any], unplaced: dict[Any, int]) -> None:
    """Run the hook, then commit the files; a group whose write failed is dropped (its write raises)."""
    if group.failed:
        return
    _run_hook(before_commit, records, group.written)
    _commit(group.written, unplaced)


def _run_hook(before_commit: _Hook, records: list[Any], written: list[_Temp]) -> None:
    """Call the group's hook; if it fails, remove the group's temporary files and re-raise.

    An exception that is none of ours is a bug: it stops the caller as
    ``internal-error`` (its type only: its message may quote values), never
    as a bare exception that the caller could blame on its current file.
    """
    if before_commit is None:
        return
    try:
        before_commit(records)
    except BaseException as error:
        for fd, tmp, _, _ in written:
            _discard(fd, tmp)
        if isinstance(error, DicomcloakError) or not isinstance(error, Exception):
            raise
        raise DicomcloakError(
            f"sealing a group of outputs failed: unexpected {type(error).__name__} (a bug in dicomcloak)",
            reference="internal-error",
            hint="the group's outputs were not written; rerun with DICOMCLOAK_DEBUG=1 and report it",
        ) from error


def _commit(pending: list[_Temp], unplaced: dict[Any, int]) -> None:
    """Make a group durable, then close and rename each file; after a failure, remove the rest.

    Each file renamed into place leaves ``unplaced``.

    Where the system has ``syncfs`` (Linux), one call writes back every file of
    the group with a single journal commit; a per-file ``fsync`` would allocate
    each file's delayed blocks in a transaction of its own and commit the journal
    once per file, stalling every file creation of the writing thread meanwhile.
    """
    failed: Path | None = None
    synced = bool(pending) and _syncfs(pending[0][0])
    for fd, tmp, path, tag in pending:
        if failed is None:
            try:
                if not synced:
                    os.fsync(fd)
                _drop_cached(fd)
                os.close(fd)
                fd = -1
                os.replace(tmp, path)
                unplaced.pop(tag, None)
                continue
            except OSError:
                failed = path
        _discard(fd, tmp)
    if failed is not None:
        raise _unwritable(failed)


def _drop_cached(fd: int) -> None:
    """Let the kernel drop a synced output's pages from the page cache (clean now, so dropped at once).

    A batch writes far more than it will read back: kept, its outputs would
    push everything else out of the cache, and on this project's reference VM
    the page cache growing into memory never touched before made every write
    pay for it (sys time 1.6-2.1 s down to 0.8-1.2 s for the 2,000-file
    benchmark, docs/benchmarks.md). Advice only: failures are ignored.
    """
    if _FADVISE is not None:
        with suppress(OSError):
            _FADVISE(fd, 0, 0, _DONTNEED)


_FADVISE = getattr(os, "posix_fadvise", None)
_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", 4)


def sync_file_system(directory: Path) -> None:
    """Make every completed write and rename under ``directory`` durable.

    One ``syncfs`` of the directory's file system where there is one (the
    renames of a whole run, instead of a directory fsync per file); ``sync``
    of every file system elsewhere.
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        os.sync()
        return
    try:
        if not _syncfs(fd):
            os.sync()
    finally:
        os.close(fd)


def _syncfs(fd: int) -> bool:
    """Write back the whole file system of ``fd`` and wait; False when unavailable or failed.

    syncfs(2) waits for the writeback and reports its errors since Linux 5.8;
    on failure the caller falls back to fsync per file, which reports the error
    for the file it concerns.
    """
    if _SYNCFS is None:
        return False
    return bool(_SYNCFS(fd) == 0)


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return cast(Callable[[int], int], ctypes.CDLL(None, use_errno=True).syncfs)
    except (OSError, AttributeError):
        return None


_SYNCFS = _load_syncfs()


def _discard(fd: int, tmp: Path) -> None:
    """Close (unless already closed: -1) and remove a temporary file."""
    if fd >= 0:
        with suppress(OSError):
            os.close(fd)
    _remove_quietly(tmp)

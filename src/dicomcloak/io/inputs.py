"""Turn the paths a user gives into a deterministic stream of input items.

Files, directory trees and zip archives (PACS exports often come zipped)
all become :class:`InputItem` values: small, picklable descriptions that
cross process boundaries to the workers, which read the bytes themselves.
Walking is sorted so two runs over the same tree process the same items in
the same order (resumable journals rely on that); symlinked directories are
not followed (no cycles, no escaping the tree); zip members that would
escape the output tree (absolute paths, ``..``) are skipped.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dicomcloak.errors import MalformedError, ReadLimitError, UsageError
from dicomcloak.io.bounded import read_capped

__all__ = ["InputItem", "count_inputs", "iter_inputs"]

_DICM_OFFSET = 128
_DRIVE = re.compile(r"^[A-Za-z]:")
# Everything the standard library raises for an unreadable file or member.
_READ_ERRORS = (
    OSError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    KeyError,
    zlib.error,
    EOFError,
    RuntimeError,  # encrypted member
    NotImplementedError,  # unsupported compression method
    ValueError,
)


@dataclass(frozen=True)
class InputItem:
    """One input instance: a plain file, or one member of a zip archive.

    Parameters
    ----------
    root:
        The input argument as the user gave it.
    root_name:
        Its base name; the top folder of mirrored and quarantined outputs.
    relpath:
        POSIX path relative to `root` (for a single file argument, its
        name); for zip members, the sanitised member path.
    member:
        The zip member name, or ``None`` for a plain file.
    source:
        The real file to open: the file itself, or the zip archive.
    """

    root: Path
    root_name: str
    relpath: str
    member: str | None
    source: Path

    @property
    def label(self) -> str:
        """``<root_name>/<relpath>``: how reports and quarantine name this input."""
        return f"{self.root_name}/{self.relpath}"

    def read_bytes(self, max_bytes: int) -> bytes:
        """Return the input's bytes, never holding more than `max_bytes` + 1.

        The size is checked before reading (stat, or the member's declared
        size) and again while reading, because a zip header may lie: a
        zip bomb stops at the limit instead of exhausting memory.

        Raises
        ------
        ReadLimitError
            ``file-too-large``; ``memory-exhausted`` (:func:`~dicomcloak.io.bounded.read_capped`).
        MalformedError
            ``unreadable``: the file or member cannot be opened or read.
        """
        try:
            with self._open_within(max_bytes) as handle:
                data = read_capped(handle, self._declared_size(handle), max_bytes)
        except _READ_ERRORS:
            raise _unreadable(self) from None
        if len(data) > max_bytes:
            raise _too_large(self, max_bytes)
        return data

    def open(self) -> IO[bytes]:
        """Open the original bytes for streaming (the caller closes the stream).

        Raises
        ------
        MalformedError
            ``unreadable``.
        """
        try:
            return self._open_within(None)
        except _READ_ERRORS:
            raise _unreadable(self) from None

    def _declared_size(self, handle: IO[bytes]) -> int:
        if self.member is None:
            return os.fstat(handle.fileno()).st_size
        return int(_ZIPS.get(self.source).getinfo(self.member).file_size)

    def _open_within(self, max_bytes: int | None) -> IO[bytes]:
        """Open the bytes, refusing early if the known size exceeds `max_bytes`."""
        handle: IO[bytes]
        if self.member is None:
            handle = self.source.open("rb")
            size = os.fstat(handle.fileno()).st_size
        else:
            archive = _ZIPS.get(self.source)
            info = archive.getinfo(self.member)
            handle, size = archive.open(info), info.file_size
        if max_bytes is not None and size > max_bytes:
            handle.close()
            raise _too_large(self, max_bytes)
        return handle


def iter_inputs(paths: Sequence[Path]) -> Iterator[InputItem]:
    """Yield every input item under `paths`, in a deterministic order.

    All paths are checked before anything is yielded, so a typo in the
    last argument fails the command before any work is done.

    Raises
    ------
    UsageError
        ``input-missing``: a path does not exist.
    """
    for path in paths:
        if not path.exists():
            raise UsageError(
                f"input {path} does not exist",
                reference="input-missing",
                hint="check the path, or quote it if it contains spaces",
            )
    return _iter_all(list(paths))


def count_inputs(paths: Sequence[Path]) -> int:
    """Return how many items :func:`iter_inputs` yields (for progress bars)."""
    return sum(1 for _ in iter_inputs(paths))


def _iter_all(paths: list[Path]) -> Iterator[InputItem]:
    for path in paths:
        yield from _iter_one(path, _root_name(path))


def _iter_one(path: Path, root_name: str) -> Iterator[InputItem]:
    if path.is_dir():
        yield from _walk(path, root_name, path, "")
    elif not _starts_like_dicom(path) and (_named_zip(path) or zipfile.is_zipfile(path)):
        yield from _zip_items(path, root_name, path, "")
    else:
        yield InputItem(path, root_name, path.name, None, path)


def _root_name(path: Path) -> str:
    """The input's base name, also for ``.``, ``..`` and trailing slashes."""
    return os.path.basename(os.path.normpath(os.path.abspath(path))) or "root"


def _walk(root: Path, root_name: str, directory: Path, prefix: str) -> Iterator[InputItem]:
    """Yield the items of `directory`, recursively, sorted by name.

    Only files named ``*.zip`` are opened as archives here: sniffing every
    file of a million-file tree would double the reads. An unreadable
    directory is yielded as an item so it is quarantined, not lost.
    """
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError:
        yield InputItem(root, root_name, prefix.rstrip("/") or root_name, None, directory)
        return
    for entry in entries:
        yield from _walk_entry(root, root_name, entry, prefix + entry.name)


def _walk_entry(root: Path, root_name: str, entry: os.DirEntry[str], relpath: str) -> Iterator[InputItem]:
    path = Path(entry.path)
    if entry.is_dir(follow_symlinks=False):
        yield from _walk(root, root_name, path, relpath + "/")
    elif entry.is_symlink() and entry.is_dir():
        return  # symlinked directories are not followed
    elif not entry.is_file() or _is_temp(entry.name):
        return  # FIFOs, sockets, dangling links; debris of a crashed write
    elif _named_zip(path) and not _starts_like_dicom(path):
        yield from _zip_items(root, root_name, path, relpath + "/")
    else:
        yield InputItem(root, root_name, relpath, None, path)


def _is_temp(name: str) -> bool:
    """The writer's temporary files: ``.<name>.<random>.tmp``."""
    return name.startswith(".") and name.endswith(".tmp")


def _named_zip(path: Path) -> bool:
    return path.name.lower().endswith(".zip")


def _starts_like_dicom(path: Path) -> bool:
    """True if the file has the Part 10 ``DICM`` marker at offset 128."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_DICM_OFFSET + 4)
    except OSError:
        return False
    return head[_DICM_OFFSET:] == b"DICM"


def _zip_items(root: Path, root_name: str, archive: Path, prefix: str) -> Iterator[InputItem]:
    """Yield the file members of `archive`, sorted; a broken archive is one item."""
    try:
        with zipfile.ZipFile(archive) as handle:
            infos = handle.infolist()
    except _READ_ERRORS:
        yield InputItem(root, root_name, prefix.rstrip("/") or archive.name, None, archive)
        return
    for info in sorted(infos, key=lambda info: info.filename):
        relpath = None if info.is_dir() else _member_relpath(info.filename)
        if relpath is not None:
            yield InputItem(root, root_name, prefix + relpath, info.filename, archive)


def _member_relpath(name: str) -> str | None:
    """Return a member's safe relative path, or None if it tries to escape.

    Absolute names and ``..`` components are the zip-slip attack; such a
    member is skipped rather than renamed, because no honest archive has one.
    """
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        return None
    parts = [part for part in posix.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


class _ZipCache:
    """A few open archives per process, so reading N members parses one directory.

    Opening a ZipFile parses its whole central directory; doing that once
    per member makes a 10,000-member export quadratic. Entries are keyed by
    process id (a forked worker never shares a parent's file offset) and by
    mtime and size (a replaced archive is reopened). Evicted archives are
    closed; zipfile keeps the file open until members being read are closed.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._open: OrderedDict[tuple[str, int, int, int], zipfile.ZipFile] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> zipfile.ZipFile:
        stat = path.stat()
        key = (str(path), os.getpid(), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            archive = self._open.pop(key, None)
            if archive is None:
                archive = zipfile.ZipFile(path)
            self._open[key] = archive
            while len(self._open) > self._size:
                self._open.popitem(last=False)[1].close()
        return archive

    def clear(self) -> None:
        with self._lock:
            while self._open:
                self._open.popitem()[1].close()


_ZIPS = _ZipCache(size=4)
atexit.register(_ZIPS.clear)


def _unreadable(item: InputItem) -> MalformedError:
    return MalformedError(
        f"cannot read {item.label}",
        reference="unreadable",
        hint="check permissions, or re-create the archive if it is damaged",
    )


def _too_large(item: InputItem, max_bytes: int) -> ReadLimitError:
    return ReadLimitError(
        f"{item.label} is larger than the limit of {max_bytes} bytes",
        reference="file-too-large",
        hint="raise max_file_bytes if such files are expected",
    )

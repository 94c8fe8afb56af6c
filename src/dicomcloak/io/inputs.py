"""Turn the paths a user gives into a deterministic stream of entries, each one accounted for.

Files, directory trees and zip archives (PACS exports often come zipped)
become :class:`InputItem` values: small, picklable descriptions that cross
process boundaries to the workers, which read the bytes themselves. Walking
is sorted so two runs over the same tree see the same entries in the same
order (resumable journals and report indexes rely on that).

Nothing the walk sees is dropped silently (docs/security.md, "Input walk"):
what it will not process is yielded in the same stream as a :class:`Skipped`
entry with a reason code (symbolic links, FIFOs, sockets, devices, the
writer's temporary files), decided from the directory listing and link
metadata without opening anything, so a FIFO never blocks the walk; a zip
member whose path would escape the tree is a :class:`Refused` entry, its
bytes quarantined as ``unsafe-path``.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dicomcloak.errors import MalformedError, ReadLimitError, UsageError
from dicomcloak.io._zipcache import ZIPS
from dicomcloak.io.bounded import read_capped

__all__ = [
    "SKIP_REASONS",
    "UNSAFE_PATH",
    "InputItem",
    "Refused",
    "Skipped",
    "WalkEntry",
    "count_inputs",
    "iter_inputs",
]

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
        name); for zip members, the sanitised member path (for a member
        the walk refuses, ``unsafe-path/`` and its defused name).
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
        return int(ZIPS.get(self.source).getinfo(self.member).file_size)

    def _open_within(self, max_bytes: int | None) -> IO[bytes]:
        """Open the bytes, refusing early if the known size exceeds `max_bytes`."""
        handle: IO[bytes]
        if self.member is None:
            handle = self.source.open("rb")
            size = os.fstat(handle.fileno()).st_size
        else:
            archive = ZIPS.get(self.source)
            info = archive.getinfo(self.member)
            handle, size = archive.open(info), info.file_size
        if max_bytes is not None and size > max_bytes:
            handle.close()
            raise _too_large(self, max_bytes)
        return handle


@dataclass(frozen=True)
class Skipped:
    """An entry the walk saw and does not process: counted and reported with its reason, never opened.

    ``reason`` is one of :data:`SKIP_REASONS`. The entry's path is not kept:
    reports list skips by their index in the walk's order, never by name.
    """

    reason: str


@dataclass(frozen=True)
class Refused:
    """An input the walk itself refuses: its bytes are quarantined with ``reason``, it is never processed.

    Today only a zip member whose path would escape the archive (``unsafe-path``).
    """

    item: InputItem
    reason: str


#: What the walk yields, in its deterministic order; each one is counted in a run's summary.
WalkEntry = InputItem | Refused | Skipped

SYMLINK_OUTSIDE = "symlink-outside-input"
SYMLINK_DUPLICATE = "symlink-duplicate"
DANGLING_SYMLINK = "dangling-symlink"
NOT_REGULAR_FILE = "not-regular-file"
TEMPORARY_FILE = "temporary-file"
UNSAFE_PATH = "unsafe-path"
#: Reason codes of :class:`Skipped` entries (README.md, docs/security.md).
SKIP_REASONS = (SYMLINK_OUTSIDE, SYMLINK_DUPLICATE, DANGLING_SYMLINK, NOT_REGULAR_FILE, TEMPORARY_FILE)


def iter_inputs(paths: Sequence[Path]) -> Iterator[WalkEntry]:
    """Yield every entry under `paths`, in a deterministic order: items, refusals and skips.

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
    """Return how many entries :func:`iter_inputs` yields (a run's ``files``)."""
    return sum(1 for _ in iter_inputs(paths))


@dataclass(frozen=True)
class _Root:
    """One input argument being walked: as given, its base name, and its real path."""

    path: Path
    name: str
    real: str

    def holds(self, real: str) -> bool:
        """True if the real path ``real`` is this root or lies below it."""
        return real == self.real or real.startswith(self.real.rstrip(os.sep) + os.sep)


def _iter_all(paths: list[Path]) -> Iterator[WalkEntry]:
    for path in paths:
        yield from _iter_one(_Root(path, _root_name(path), os.path.realpath(path)))


def _iter_one(root: _Root) -> Iterator[WalkEntry]:
    """An argument is followed even if it is a symbolic link: the operator named it."""
    path = root.path
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        yield from _walk(root, path, "")
    elif not stat.S_ISREG(mode):
        yield Skipped(NOT_REGULAR_FILE)  # a FIFO or device: opening it could block
    elif not _starts_like_dicom(path) and (_named_zip(path) or zipfile.is_zipfile(path)):
        yield from _zip_items(root, path, "")
    else:
        yield InputItem(path, root.name, path.name, None, path)


def _root_name(path: Path) -> str:
    """The input's base name, also for ``.``, ``..`` and trailing slashes."""
    return os.path.basename(os.path.normpath(os.path.abspath(path))) or "root"


def _walk(root: _Root, directory: Path, prefix: str) -> Iterator[WalkEntry]:
    """Yield the entries of `directory`, recursively, sorted by name.

    Only files named ``*.zip`` are opened as archives here: sniffing every
    file of a million-file tree would double the reads. An unreadable
    directory is yielded as an item so it is quarantined, not lost.
    """
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError:
        yield InputItem(root.path, root.name, prefix.rstrip("/") or root.name, None, directory)
        return
    for entry in entries:
        yield from _walk_entry(root, entry, prefix + entry.name)


def _walk_entry(root: _Root, entry: os.DirEntry[str], relpath: str) -> Iterator[WalkEntry]:
    """One directory entry, judged by its type as the directory lists it (no ``stat``, never opened)."""
    if entry.is_symlink():
        yield Skipped(_link_reason(root, entry.path))
    elif entry.is_dir(follow_symlinks=False):
        yield from _walk(root, Path(entry.path), relpath + "/")
    elif not entry.is_file(follow_symlinks=False):
        yield Skipped(NOT_REGULAR_FILE)  # FIFOs, sockets, devices
    elif _is_temp(entry.name):
        yield Skipped(TEMPORARY_FILE)  # the debris of a crashed write
    elif _named_zip(path := Path(entry.path)) and not _starts_like_dicom(path):
        yield from _zip_items(root, path, relpath + "/")
    else:
        yield InputItem(root.path, root.name, relpath, None, path)


def _link_reason(root: _Root, link: str) -> str:
    """Why a symbolic link met in a walk is skipped; decided from link metadata, its target never opened.

    A link inside the input is never followed: its target, file or directory,
    lies in the same tree and the walk reaches it by its real path, so every
    file is processed once and a link cycle ends here. A link that leaves the
    input could expose any file the process can read: not an input.
    """
    if not os.path.exists(link):  # stat only; a loop of links is dangling too
        return DANGLING_SYMLINK
    return SYMLINK_DUPLICATE if root.holds(os.path.realpath(link)) else SYMLINK_OUTSIDE


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


def _zip_items(root: _Root, archive: Path, prefix: str) -> Iterator[WalkEntry]:
    """Yield the file members of `archive`, sorted; a broken archive is one item.

    A member whose name would escape (zip slip) is refused: quarantined
    under a defused name below ``unsafe-path/``, never processed.
    """
    try:
        with zipfile.ZipFile(archive) as handle:
            infos = handle.infolist()
    except _READ_ERRORS:
        yield InputItem(root.path, root.name, prefix.rstrip("/") or archive.name, None, archive)
        return
    for info in sorted(infos, key=lambda info: info.filename):
        if info.is_dir():
            continue  # a folder entry holds no bytes, like an empty directory
        relpath = _member_relpath(info.filename)
        if relpath is None:
            unsafe = InputItem(root.path, root.name, prefix + _defused(info.filename), info.filename, archive)
            yield Refused(unsafe, UNSAFE_PATH)
        else:
            yield InputItem(root.path, root.name, prefix + relpath, info.filename, archive)


def _member_relpath(name: str) -> str | None:
    """Return a member's safe relative path, or None if it tries to escape.

    Absolute names, drive letters and ``..`` components are the zip-slip
    attack; such a member is refused rather than renamed, because no honest
    archive has one.
    """
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        return None
    parts = [part for part in posix.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _defused(name: str) -> str:
    """``unsafe-path/`` and the member's name with ``..`` and drive colons made harmless (quarantine only)."""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    return "/".join(["unsafe-path", *("__" if part == ".." else part.replace(":", "_") for part in parts)])


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

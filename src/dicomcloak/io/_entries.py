"""What a walk of the inputs yields: an input to process, a refusal, a skip; and how an input is opened.

Split from :mod:`dicomcloak.io.inputs` (the walk), which re-exports these.
An :class:`InputItem` is opened only as a regular file, without blocking and
without following a link (``O_NONBLOCK``, ``O_NOFOLLOW``, then ``fstat``): the
walk judged the entry from its metadata, and an entry swapped for a FIFO, a
device or a link after the walk is refused as ``unreadable``, never read
(docs/security.md, "Input walk").
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dicomcloak.errors import MalformedError, ReadLimitError
from dicomcloak.io._slice import open_slice
from dicomcloak.io._zipcache import ZIPS
from dicomcloak.io.bounded import read_capped

__all__ = [
    "ARCHIVE_LINK",
    "ARCHIVE_TOO_LARGE",
    "DANGLING_SYMLINK",
    "MEDIA_DIRECTORY",
    "NOT_REGULAR_FILE",
    "REFUSALS",
    "SKIP_REASONS",
    "SPARSE_MEMBER",
    "SYMLINK_DUPLICATE",
    "SYMLINK_OUTSIDE",
    "TEMPORARY_FILE",
    "UNSAFE_PATH",
    "InputItem",
    "MediaRef",
    "Refused",
    "Skipped",
    "WalkEntry",
    "open_regular",
]

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
    tarfile.TarError,
)


@dataclass(frozen=True)
class InputItem:
    """One input instance: a plain file, or one member of a zip or tar archive.

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
        The archive member's name, or ``None`` for a plain file.
    source:
        The real file to open: the file itself, the zip archive, or the
        uncompressed tar (the archive itself, or its decompressed copy:
        :mod:`dicomcloak.io.tarfiles`).
    extent:
        For a tar member, where its bytes lie in ``source``: (offset, size).
    media:
        The input lies in a DICOM media set (a directory holding a DICOMDIR,
        PS3.10 section 8): ``deid`` writes it in the media layout
        (:mod:`dicomcloak.io.mediaset`).
    """

    root: Path
    root_name: str
    relpath: str
    member: str | None
    source: Path
    extent: tuple[int, int] | None = None
    media: bool = False

    @property
    def label(self) -> str:
        """``<root_name>/<relpath>``: how reports and quarantine name this input."""
        return f"{self.root_name}/{self.relpath}"

    def read_bytes(self, max_bytes: int, check: Callable[[IO[bytes], int], bool] | None = None) -> bytes:
        """Return the input's bytes, never holding more than `max_bytes` + 1.

        The size is checked before reading (stat, or the member's declared
        size) and again while reading, because a zip header may lie: a
        zip bomb stops at the limit instead of exhausting memory. ``check``,
        if given, is called with the open input and its size before it is
        read whole (:func:`dicomcloak.io.reader.read_input` walks its element
        headers there), returns whether it read from the input (which is then
        read again from its start), and may raise an
        :class:`~dicomcloak.errors.InputError`.

        Raises
        ------
        ReadLimitError
            ``file-too-large``; ``memory-exhausted`` (:func:`~dicomcloak.io.bounded.read_capped`).
        MalformedError
            ``unreadable``: the file or member cannot be opened or read.
        """
        try:
            with self._open_within(max_bytes) as handle:
                size = self.declared_size(handle)
                if check is not None and check(handle, size):
                    handle.seek(0)
                data = read_capped(handle, size, max_bytes)
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

    def declared_size(self, handle: IO[bytes]) -> int:
        """The size ``fstat``, the zip or the tar header gives, for a handle from :meth:`open`."""
        if self.extent is not None:
            return self.extent[1]
        if self.member is None:
            return os.fstat(handle.fileno()).st_size
        return int(ZIPS.get(self.source).getinfo(self.member).file_size)

    def _open_within(self, max_bytes: int | None) -> IO[bytes]:
        """Open the bytes, refusing early if the known size exceeds `max_bytes`."""
        handle: IO[bytes]
        if self.extent is not None:  # a tar member: its bytes where they lie (the walk judged the archive)
            offset, size = self.extent
            handle = open_slice(open_regular(self.source), offset, size)
        elif self.member is None:
            handle = open_regular(self.source)
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
class MediaRef:
    """A DICOMDIR the walk found (PS3.10 section 8): the file, and the media set's root (its directory).

    Kept in memory for the media step after the run (:mod:`dicomcloak.batch.media`); never reported.
    """

    dicomdir: Path
    root: Path


@dataclass(frozen=True)
class Skipped:
    """An entry the walk saw and does not process: counted and reported with its reason, never opened.

    ``reason`` is one of :data:`SKIP_REASONS`. The entry's path is not kept:
    reports list skips by their index in the walk's order, never by name.
    ``media``: for a DICOMDIR (``media-directory``), where it is, for the
    step that rebuilds one for the output after the run.
    """

    reason: str
    media: MediaRef | None = None


@dataclass(frozen=True)
class Refused:
    """An input the walk itself refuses: its bytes are quarantined with ``reason``, it is never processed.

    An archive member whose path would escape the archive (``unsafe-path``);
    a compressed tar that inflates beyond the limits (``archive-too-large``).
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
ARCHIVE_TOO_LARGE = "archive-too-large"
ARCHIVE_LINK = "archive-link"
SPARSE_MEMBER = "sparse-member"
MEDIA_DIRECTORY = "media-directory"
#: What each reason of a :class:`Refused` entry means: (message, hint) of the error it is quarantined with.
REFUSALS = {
    UNSAFE_PATH: (
        "an archive member's path would leave the archive (absolute, a drive, or '..')",
        "the member is quarantined under unsafe-path/; an honest archive has no such name",
    ),
    ARCHIVE_TOO_LARGE: (
        "a compressed tar inflates beyond max_archive_bytes or the free disk space",
        "the archive's head is quarantined; raise the limits in [sanitize.limits] if it is expected",
    ),
}
#: Reason codes of :class:`Skipped` entries (README.md, docs/inputs.md, docs/security.md).
SKIP_REASONS = (
    SYMLINK_OUTSIDE, SYMLINK_DUPLICATE, DANGLING_SYMLINK, NOT_REGULAR_FILE, TEMPORARY_FILE, ARCHIVE_LINK,
    SPARSE_MEMBER, MEDIA_DIRECTORY,
)


def open_regular(path: Path, *, follow: bool = False) -> IO[bytes]:
    """Open ``path`` for reading only if it is a regular file: never blocking, not through a final link.

    ``O_NONBLOCK`` makes opening a FIFO return at once (a plain ``open``
    waits for a writer, forever); ``O_NOFOLLOW`` (unless ``follow``) refuses
    a final symbolic link; ``fstat`` of what was opened then refuses
    anything but a regular file (a FIFO, a device, a socket, a directory),
    so what is read is what the walk judged, even if the entry was swapped
    since. ``O_NONBLOCK`` changes nothing for a regular file's reads.

    Raises
    ------
    OSError
        When it cannot be opened or is not a regular file (``EINVAL``), as
        :func:`os.open` raises it.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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

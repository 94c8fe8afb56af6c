"""Tar archives as inputs (plain, gzip, bzip2, xz): members listed once and read where they lie.

A zip archive has a central directory, so a worker opens any member at once.
A tar has none, and a compressed tar is one stream: reaching its last member
means inflating everything before it. Opening the archive per member (what
``tarfile`` offers) would inflate a 10,000-member ``.tar.gz`` 10,000 times,
and workers in other processes cannot share one stream. So:

* a **plain tar** is listed once by the walk (headers only: ``tarfile`` seeks
  over member data); each member is an :class:`~dicomcloak.io.inputs.InputItem`
  with its ``extent`` (offset and size of its data in the archive), read by
  ``pread`` from any process;
* a **compressed tar** is inflated once, by the walk, into a private copy
  (mode 0600, in the run directory's ``.dicomcloak-tmp/`` when the command
  passes one, else in a private temporary directory), then read as a plain tar.
  The copy costs the archive's uncompressed size on disk for the run and is
  removed at its end (:func:`release_copies`); a crashed run's copy is debris
  the next run removes (:mod:`dicomcloak.io.staging`). Unpacking the members
  into files instead would create one file per member from names we do not
  control; one copy needs no name at all. Measured in docs/benchmarks.md.

Inflating is bounded (a decompression bomb): at most ``max_archive_bytes``
in total, and never more than 90% of the space free where the copy goes
(``archive-too-large``); each member's size is then bounded by
``max_file_bytes`` when it is read (``file-too-large``). No ratio is checked:
xz and bzip2 shrink repetitive images 300-fold and more (a tar.xz of 400
synthetic CTs: 45 KB for 16 MB), so a ratio would refuse honest archives;
the total and the free space are what a bomb would exhaust.
"""

from __future__ import annotations

import atexit
import bz2
import contextlib
import gzip
import io
import lzma
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dicomcloak.errors import ReadLimitError
from dicomcloak.io._entries import open_regular
from dicomcloak.io.staging import makedirs_private, temp_name
from dicomcloak.raw.limits import ReadLimits

__all__ = ["TAR_SUFFIXES", "TarMember", "list_members", "named_tar", "release_copies"]

#: File names the walk opens as tar archives (case-insensitive).
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")

_CHUNK = 1 << 20
#: Magic numbers of the compressions tar archives come in, and the stream that inflates each.
_MAGIC: tuple[tuple[bytes, Callable[[IO[bytes]], io.BufferedIOBase]], ...] = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)
#: What a damaged or truncated archive raises while it is inflated or listed.
TAR_ERRORS = (OSError, EOFError, tarfile.TarError, lzma.LZMAError, ValueError)

_copies: list[Path] = []  # the copies this process made (removed at the end of the run, or at exit)
_private: list[Path] = []  # the private temporary directory, when no scratch directory was given
_maker = os.getpid()


@dataclass(frozen=True)
class TarMember:
    """One member, as its header says: name, kind (``file``, ``link``, ``special``, ``sparse``), extent."""

    name: str
    kind: str
    offset: int
    size: int


def named_tar(path: Path) -> bool:
    """True for the names :data:`TAR_SUFFIXES` lists."""
    return path.name.lower().endswith(TAR_SUFFIXES)


def list_members(archive: Path, limits: ReadLimits, scratch: Path | None) -> tuple[Path, list[TarMember]]:
    """The uncompressed tar to read members from (the archive, or its copy) and its members, sorted by name.

    Directories are left out (they hold no bytes, like a zip's folder entries).

    Raises
    ------
    ReadLimitError
        ``archive-too-large``: it inflates beyond the limits (no copy is left).
    OSError, EOFError, tarfile.TarError, lzma.LZMAError
        A damaged archive (:data:`TAR_ERRORS`); a copy made is removed.
    """
    data = _uncompressed(archive, limits, scratch)
    try:
        members = sorted(_members(data), key=lambda member: member.name)
    except BaseException:
        if data != archive:
            _discard(data)
        raise
    return data, members


def _members(data: Path) -> Iterator[TarMember]:
    """Each header in turn; ``tarfile``'s own list emptied as it goes (a million members, little memory)."""
    with tarfile.open(data, "r:") as tar:
        while (info := tar.next()) is not None:
            tar.members.clear()  # type: ignore[attr-defined]  # its list of headers read so far
            if not info.isdir():
                yield TarMember(info.name, _kind(info), info.offset_data, info.size)


def _kind(info: tarfile.TarInfo) -> str:
    if info.issym() or info.islnk():
        return "link"
    if not info.isreg():
        return "special"  # character and block devices, FIFOs
    return "sparse" if info.issparse() else "file"


def _uncompressed(archive: Path, limits: ReadLimits, scratch: Path | None) -> Path:
    """``archive`` itself if it is a plain tar; else its inflated copy, made now."""
    with open_regular(archive, follow=True) as handle:
        head = handle.read(8)
        opener = next((open_ for magic, open_ in _MAGIC if head.startswith(magic)), None)
        if opener is None:
            return archive
        handle.seek(0)
        directory = _scratch_dir(scratch)
        with opener(handle) as stream:
            return _inflate(stream, _cap(directory, limits), directory)


def _cap(directory: Path, limits: ReadLimits) -> int:
    """The most bytes an archive may inflate to in ``directory`` (module docstring)."""
    free = shutil.disk_usage(directory).free
    return min(limits.max_archive_bytes, free * 9 // 10)


def _inflate(stream: io.BufferedIOBase, cap: int, directory: Path) -> Path:
    """Copy ``stream`` into a new private file in ``directory``, stopping one chunk past ``cap``."""
    path = directory / temp_name()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    _copies.append(path)
    try:
        with os.fdopen(fd, "wb") as out:
            total = 0
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                if total > cap:
                    raise ReadLimitError(
                        f"a compressed tar inflates beyond {cap} bytes",
                        reference="archive-too-large",
                        hint="raise max_archive_bytes in [sanitize.limits], or free disk space, if expected",
                    )
                out.write(chunk)
    except BaseException:
        _discard(path)
        raise
    return path


def _scratch_dir(scratch: Path | None) -> Path:
    if scratch is not None:
        makedirs_private(scratch)
        return scratch
    if not _private:
        _private.append(Path(tempfile.mkdtemp(prefix="dicomcloak-tar-")))  # mode 0700
    return _private[0]


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
    if path in _copies:
        _copies.remove(path)


def release_copies() -> int:
    """Remove the inflated copies this process made (at the end of a run); return how many.

    Only in the process that made them: a forked worker inherits the list, never the job of removing them.
    """
    if os.getpid() != _maker:
        return 0
    removed = len(_copies)
    for path in list(_copies):
        _discard(path)
    while _private:
        with contextlib.suppress(OSError):
            os.rmdir(_private.pop())
    return removed


atexit.register(release_copies)

"""Turn the paths a user gives into a deterministic stream of entries, each one accounted for.

Files, directory trees, zip and tar archives (PACS exports often come packed;
tar members are listed by :mod:`dicomcloak.io.tarfiles`) and DICOM media sets
(a DICOMDIR, :mod:`dicomcloak.io.mediaset`) become :class:`InputItem`
values: small, picklable descriptions that cross process boundaries to the
workers, which read the bytes themselves. Walking is sorted so two runs
over the same tree see the same entries in the same order (resumable
journals and report indexes rely on that).

Nothing the walk sees is dropped silently (docs/security.md, "Input walk"):
what it will not process is yielded in the same stream as a :class:`Skipped`
entry with a reason code (symbolic links, FIFOs, sockets, devices, the
writer's temporary files), decided from the directory listing and link
metadata without opening anything, so a FIFO never blocks the walk; a zip
member whose path would escape the tree is a :class:`Refused` entry, its
bytes quarantined as ``unsafe-path``; so is a tar member. A tar's links,
devices and FIFOs are skipped (``archive-link``, ``not-regular-file``); a
DICOMDIR is never an instance: skipped as ``media-directory``, and the files
of its directory marked as a media set's (docs/inputs.md). A command-line argument must be a
regular file or a directory (``input-not-regular``, a usage error, decided
by ``stat``): ``/dev/zero`` or a FIFO is never read.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dicomcloak.errors import MalformedError, ReadLimitError, UsageError
from dicomcloak.io._entries import (
    _READ_ERRORS,
    ARCHIVE_LINK,
    ARCHIVE_TOO_LARGE,
    DANGLING_SYMLINK,
    MEDIA_DIRECTORY,
    NOT_REGULAR_FILE,
    SKIP_REASONS,
    SPARSE_MEMBER,
    SYMLINK_DUPLICATE,
    SYMLINK_OUTSIDE,
    TEMPORARY_FILE,
    UNSAFE_PATH,
    InputItem,
    MediaRef,
    Refused,
    Skipped,
    WalkEntry,
    open_regular,
)
from dicomcloak.io.mediaset import HEAD_BYTES, is_dicomdir, is_dicomdir_head
from dicomcloak.io.tarfiles import TAR_ERRORS, list_members, named_tar
from dicomcloak.raw.limits import ReadLimits

__all__ = [
    "MEDIA_DIRECTORY",
    "SKIP_REASONS",
    "UNSAFE_PATH",
    "InputItem",
    "MediaRef",
    "Refused",
    "Skipped",
    "WalkEntry",
    "count_inputs",
    "iter_inputs",
]

_DICM_OFFSET = 128
_DRIVE = re.compile(r"^[A-Za-z]:")


def iter_inputs(
    paths: Sequence[Path],
    *,
    follow_symlinks: bool = False,
    limits: ReadLimits | None = None,
    scratch: Path | None = None,
) -> Iterator[WalkEntry]:
    """Yield every entry under `paths`, in a deterministic order: items, refusals and skips.

    ``limits`` bound what a compressed tar may inflate to, and ``scratch``
    (a private directory: the run directory's ``.dicomcloak-tmp``) is where
    its copy goes (:mod:`dicomcloak.io.tarfiles`; default: a private temporary
    directory).

    All paths are checked before anything is yielded, so a typo in the
    last argument fails the command before any work is done. An argument
    that is a symbolic link is followed (the operator named it); links met
    in the walk are skipped unless ``follow_symlinks`` (``--follow-symlinks``)
    lets the walk follow those that leave the input (:func:`_link_reason`).

    Raises
    ------
    UsageError
        ``input-missing``: a path does not exist (or is a link to nothing);
        ``input-not-regular``: it is neither a regular file nor a directory
        (a FIFO, a socket, a device such as ``/dev/zero``), decided by
        ``stat`` without opening it.
    """
    for path in paths:
        _check_argument(path)
    return _iter_all(list(paths), _Options(follow_symlinks, limits or ReadLimits(), scratch))


def _check_argument(path: Path, named: str = "") -> None:
    """Refuse an input that is missing or neither a regular file nor a directory.

    ``named``: how the error names it (a list's line number: a listed path may
    hold a patient's name, :mod:`dicomcloak.io.pathlist`); by default the path.
    """
    named = named or f"input {path}"
    try:
        mode = path.stat().st_mode
    except OSError:
        raise UsageError(
            f"{named} does not exist",
            reference="input-missing",
            hint="check the path, or quote it if it contains spaces",
        ) from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise UsageError(
            f"{named} is neither a regular file nor a directory",
            reference="input-not-regular",
            hint="give DICOM files, directories or zip archives; a FIFO, socket or device is never read",
        )


def count_inputs(paths: Sequence[Path]) -> int:
    """Return how many entries :func:`iter_inputs` yields (a run's ``files``)."""
    return sum(1 for _ in iter_inputs(paths))


@dataclass(frozen=True)
class _Options:
    """How a walk treats what it meets: links out of the input, compressed tars."""

    follow: bool = False
    limits: ReadLimits = field(default_factory=ReadLimits)
    scratch: Path | None = None


@dataclass(frozen=True)
class _Root:
    """One input argument being walked: as given, its base name, its real path, what links it follows.

    ``followed`` holds the real paths of the trees and files reached through
    links followed out of the input (``--follow-symlinks``), so each is walked
    once and a cycle of links ends.
    """

    path: Path
    name: str
    real: str
    options: _Options = field(default_factory=_Options)
    followed: list[str] = field(default_factory=list)

    @property
    def follow(self) -> bool:
        """``--follow-symlinks``."""
        return self.options.follow

    def holds(self, real: str) -> bool:
        """True if the real path ``real`` is this root, lies below it, or below a tree already followed."""
        tops = (self.real, *self.followed)
        return any(real == top or real.startswith(top.rstrip(os.sep) + os.sep) for top in tops)


def _iter_all(paths: list[Path], options: _Options) -> Iterator[WalkEntry]:
    for path in paths:
        yield from _iter_one(_Root(path, _root_name(path), os.path.realpath(path), options))


def _iter_one(root: _Root) -> Iterator[WalkEntry]:
    """An argument is followed even if it is a symbolic link: the operator named it."""
    path = root.path
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        yield from _walk(root, path, "")
    elif not stat.S_ISREG(mode):
        yield Skipped(NOT_REGULAR_FILE)  # replaced by a FIFO or device since it was checked
    elif not _starts_like_dicom(path) and (_named_zip(path) or _is_zip(path)):
        yield from _zip_items(root, path, "")
    elif named_tar(path) and not _starts_like_dicom(path):
        yield from _tar_items(root, path, "")
    elif is_dicomdir(path):
        yield Skipped(MEDIA_DIRECTORY)  # a DICOMDIR alone: no media set to rebuild, never an instance
    else:
        yield InputItem(path, root.name, path.name, None, Path(root.real) if path.is_symlink() else path)


def _root_name(path: Path) -> str:
    """The input's base name, also for ``.``, ``..`` and trailing slashes."""
    return os.path.basename(os.path.normpath(os.path.abspath(path))) or "root"


def _walk(root: _Root, directory: Path, prefix: str, media: bool = False) -> Iterator[WalkEntry]:
    """Yield the entries of `directory`, recursively, sorted by name.

    Only files named ``*.zip`` or as :data:`~dicomcloak.io.tarfiles.TAR_SUFFIXES`
    are opened as archives here, and only a file named ``DICOMDIR`` is read to
    see whether it is one: sniffing every file of a million-file tree would
    double the reads. A directory holding a DICOMDIR is a media set's root
    (PS3.10 section 8.6): every file below it is marked ``media``. An
    unreadable directory is yielded as an item so it is quarantined, not lost.
    """
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError:
        yield InputItem(root.path, root.name, prefix.rstrip("/") or root.name, None, directory)
        return
    dicomdir = _media_directory(entries)
    for entry in entries:
        if entry is dicomdir:
            yield Skipped(MEDIA_DIRECTORY, MediaRef(Path(entry.path), directory))
        else:
            yield from _walk_entry(root, entry, prefix + entry.name, media or dicomdir is not None)


def _media_directory(entries: list[os.DirEntry[str]]) -> os.DirEntry[str] | None:
    """The directory's DICOMDIR (a regular file, not a link, whose File Meta says so), if it has one."""
    for entry in entries:
        regular = entry.name.upper() == "DICOMDIR" and entry.is_file(follow_symlinks=False)
        if regular and is_dicomdir(Path(entry.path)):
            return entry
    return None


def _walk_entry(
    root: _Root, entry: os.DirEntry[str], relpath: str, media: bool = False
) -> Iterator[WalkEntry]:
    """One directory entry, judged by its type as the directory lists it (no ``stat``, never opened)."""
    if entry.is_symlink():
        reason = _link_reason(root, entry.path)
        if reason == SYMLINK_OUTSIDE and root.follow:
            yield from _followed(root, entry.path, relpath)
        else:
            yield Skipped(reason)
    elif entry.is_dir(follow_symlinks=False):
        yield from _walk(root, Path(entry.path), relpath + "/", media)
    elif not entry.is_file(follow_symlinks=False):
        yield Skipped(NOT_REGULAR_FILE)  # FIFOs, sockets, devices
    elif _is_temp(entry.name):
        yield Skipped(TEMPORARY_FILE)  # the debris of a crashed write
    elif _named_zip(path := Path(entry.path)) and not _starts_like_dicom(path):
        yield from _zip_items(root, path, relpath + "/")
    elif named_tar(path) and not _starts_like_dicom(path):
        yield from _tar_items(root, path, relpath + "/")
    else:
        yield InputItem(root.path, root.name, relpath, None, path, media=media)


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


def _followed(root: _Root, link: str, relpath: str) -> Iterator[WalkEntry]:
    """A link out of the input, followed (``--follow-symlinks``): its tree walked, or its file an input.

    Judged by ``stat`` of the target, never opened: a link to a FIFO or a
    device is skipped as ``not-regular-file``. The target is remembered, so
    a second link to it (or into its tree) is a ``symlink-duplicate``.
    """
    real = os.path.realpath(link)
    try:
        mode = os.stat(real).st_mode
    except OSError:  # gone since the link was judged
        yield Skipped(DANGLING_SYMLINK)
        return
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        yield Skipped(NOT_REGULAR_FILE)
        return
    root.followed.append(real)
    if stat.S_ISDIR(mode):
        yield from _walk(root, Path(link), relpath + "/")
    elif _named_zip(Path(link)) and not _starts_like_dicom(Path(real)):
        yield from _zip_items(root, Path(real), relpath + "/")
    elif named_tar(Path(link)) and not _starts_like_dicom(Path(real)):
        yield from _tar_items(root, Path(real), relpath + "/")
    else:
        yield InputItem(root.path, root.name, relpath, None, Path(real))


def _is_temp(name: str) -> bool:
    """The writer's temporary files: ``.<name>.<random>.tmp``."""
    return name.startswith(".") and name.endswith(".tmp")


def _named_zip(path: Path) -> bool:
    return path.name.lower().endswith(".zip")


def _starts_like_dicom(path: Path) -> bool:
    """True if the file has the Part 10 ``DICM`` marker at offset 128 (opened as a regular file only)."""
    try:
        with open_regular(path, follow=True) as handle:
            head = handle.read(_DICM_OFFSET + 4)
    except OSError:
        return False
    return head[_DICM_OFFSET:] == b"DICM"


def _is_zip(path: Path) -> bool:
    """:func:`zipfile.is_zipfile` on the file opened as a regular file only (a FIFO never blocks it)."""
    try:
        with open_regular(path, follow=True) as handle:
            return zipfile.is_zipfile(handle)
    except OSError:
        return False


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
            yield _member(InputItem(root.path, root.name, prefix + relpath, info.filename, archive))


def _member(item: InputItem) -> WalkEntry:
    """An archive member, or ``media-directory`` for a DICOMDIR (no media set is rebuilt from an archive)."""
    if item.relpath.rsplit("/", 1)[-1].upper() != "DICOMDIR":
        return item
    try:
        with item.open() as handle:
            head = handle.read(HEAD_BYTES)
    except (MalformedError, OSError):
        return item  # its worker finds it unreadable, and says so
    return Skipped(MEDIA_DIRECTORY) if is_dicomdir_head(head) else item


def _tar_items(root: _Root, archive: Path, prefix: str) -> Iterator[WalkEntry]:
    """Yield the members of a tar archive, sorted: files as items, the rest skipped or refused.

    Like a zip member, a name that would escape is refused (``unsafe-path``);
    links are skipped (``archive-link``: never followed, within the archive
    or out of it), devices and FIFOs too (``not-regular-file``), and GNU
    sparse members (``sparse-member``: their data are not contiguous). A
    damaged archive is one item (quarantined by its worker); one that
    inflates beyond the limits is refused (``archive-too-large``).
    """
    options = root.options
    try:  # by its real path: a member is opened without following a link, as a plain file is
        data, members = list_members(Path(os.path.realpath(archive)), options.limits, options.scratch)
    except ReadLimitError:
        whole = InputItem(root.path, root.name, prefix.rstrip("/") or archive.name, None, archive)
        yield Refused(whole, ARCHIVE_TOO_LARGE)
        return
    except TAR_ERRORS:
        yield InputItem(root.path, root.name, prefix.rstrip("/") or archive.name, None, archive)
        return
    for member in members:
        reason = _TAR_SKIPS.get(member.kind)
        relpath = _member_relpath(member.name)
        if relpath is None:
            unsafe = InputItem(root.path, root.name, prefix + _defused(member.name), member.name, data,
                               (member.offset, member.size))
            yield Refused(unsafe, UNSAFE_PATH)
        elif reason is not None:
            yield Skipped(reason)
        else:
            extent = (member.offset, member.size)
            yield _member(InputItem(root.path, root.name, prefix + relpath, member.name, data, extent))


_TAR_SKIPS = {"link": ARCHIVE_LINK, "special": NOT_REGULAR_FILE, "sparse": SPARSE_MEMBER}


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

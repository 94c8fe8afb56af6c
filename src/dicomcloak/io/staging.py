"""Where temporary files go, whose they are, and the removal of those a dead process left behind.

An output appears under its final name only when complete (architecture.md decision 6): it is written to a
temporary file, synced, and renamed. After a crash (``kill -9``, the kernel's out-of-memory killer, a
power cut) the temporary files remain, some of them complete de-identified copies not yet sealed. Two
decisions keep that debris harmless:

* **Where.** A batch keeps the temporary files of each tree it writes (the output, the run directory,
  the quarantine) in one hidden directory at the tree's root, ``ROOT/.dicomcloak-tmp/`` (mode 0700), on
  the tree's own file system, so the rename into place stays atomic. A walker of the output tree meets
  outputs under their final names only, never a half-written or unsealed file among them, and finding a
  crashed run's debris costs one directory listing instead of a walk of the whole tree. A directory of
  the tree that is another file system's mount point keeps its temporary files beside its outputs (a
  rename cannot cross file systems).
* **Whose.** Every temporary name says which process made it,
  ``.dicomcloak.<host>.<pid namespace>.<pid>.<n>.tmp`` (hidden, and ending in ``.tmp``: the input walk
  skips it as ``temporary-file``). At the start of a run, :func:`remove_stale` removes the entries of
  processes of this host and pid namespace that no longer exist, and nothing else: a run still writing
  into the same tree, here or on another host sharing it, keeps its files. A process pool's claim
  directories are named the same way (:data:`CLAIMS_PREFIX`).

The trees that hold originals (the run directory and its quarantine) are *private*: every directory
dicomcloak creates in them is mode 0700 whatever the umask (:func:`makedirs_private`).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import stat
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CLAIMS_PREFIX",
    "TEMP_DIR_NAME",
    "Owner",
    "Tree",
    "makedirs_private",
    "owner",
    "owner_of",
    "remove_stale",
    "temp_name",
]

#: The hidden directory, at the root of each tree a batch writes, that holds its temporary files.
TEMP_DIR_NAME = ".dicomcloak-tmp"
#: Temporary file names: ``.dicomcloak.<owner>.<n>.tmp``.
TEMP_PREFIX = ".dicomcloak."
TEMP_SUFFIX = ".tmp"
#: A process pool's claim directories: ``.dicomcloak-claims.<owner>.<random>``.
CLAIMS_PREFIX = ".dicomcloak-claims."

_PRIVATE = 0o700
_HOST_UNSAFE = re.compile(r"[^A-Za-z0-9-]")


def _host() -> str:
    """This host's name, reduced to letters, digits and ``-`` (dots would split the name's fields)."""
    return _HOST_UNSAFE.sub("-", socket.gethostname())[:63] or "localhost"


def _pid_namespace() -> str:
    """The pid namespace's inode number: containers sharing a host name still tell their pids apart."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


_HOST = _host()
_NAMESPACE = _pid_namespace()
_numbers = itertools.count()


@dataclass(frozen=True)
class Owner:
    """The process a temporary name was made by."""

    host: str
    namespace: str
    pid: int

    def is_gone(self) -> bool:
        """True only for a process of this host and pid namespace that no longer exists."""
        if self.host != _HOST or self.namespace != _NAMESPACE or self.pid <= 0:
            return False
        if self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return True
        except (OSError, OverflowError):  # PermissionError: it exists, another user's
            return False
        return _zombie(self.pid)


def _zombie(pid: int) -> bool:
    """True when ``pid`` has exited but was not reaped yet (a killed worker whose parent died too).

    Signal 0 still reaches a zombie; its state in ``/proc/<pid>/stat`` (after
    the command name, which may hold spaces and parentheses) says it is dead.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rpartition(b")")[2].split()
    except OSError:
        return False
    return bool(fields) and fields[0] in (b"Z", b"X")


def owner() -> str:
    """``<host>.<pid namespace>.<pid>`` of the calling process (after a fork, the child's)."""
    return f"{_HOST}.{_NAMESPACE}.{os.getpid()}"


def temp_name() -> str:
    """A new temporary file name of this process: ``.dicomcloak.<owner>.<n>.tmp``.

    Unique per process and call (the counter is shared by the threads);
    files are created with ``O_EXCL`` all the same.
    """
    return f"{TEMP_PREFIX}{owner()}.{next(_numbers)}{TEMP_SUFFIX}"


def owner_of(name: str, prefix: str = TEMP_PREFIX, suffix: str = TEMP_SUFFIX) -> Owner | None:
    """The owner a name made by :func:`temp_name` (or with ``prefix`` + :func:`owner`) records; else None."""
    if not name.startswith(prefix) or not name.endswith(suffix) or len(name) <= len(prefix) + len(suffix):
        return None
    fields = name[len(prefix) : len(name) - len(suffix)].split(".")
    if len(fields) != 4 or not fields[2].isdigit():
        return None
    return Owner(fields[0], fields[1], int(fields[2]))


def remove_stale(directory: Path, prefix: str = TEMP_PREFIX, suffix: str = TEMP_SUFFIX) -> int:
    """Remove the entries of ``directory`` named by processes of this host that are gone; return how many.

    Only names that :func:`owner_of` reads are considered, only this user's
    entries are touched, and a directory (a claim directory) goes with its
    content. Failures are ignored: debris is removed on a best-effort basis
    and never stops a run.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    removed = 0
    for name in names:
        found = owner_of(name, prefix, suffix)
        if found is not None and found.is_gone():
            removed += _remove(directory / name)
    return removed


def _remove(path: Path) -> int:
    try:
        info = os.lstat(path)
        if info.st_uid != os.geteuid():
            return 0
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError:
        return 0
    return 1


def makedirs_private(path: Path) -> None:
    """:func:`os.makedirs` with every directory it creates mode 0700, whatever the umask.

    Directories that exist already are left as they are (an operator may
    have chosen their mode).

    Raises
    ------
    OSError
        As :func:`os.makedirs`: ``FileExistsError`` when ``path`` or one of its
        parents is a file.
    """
    missing: list[Path] = []
    probe = path
    while not probe.is_dir() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, _PRIVATE)
        except FileExistsError:
            if directory.is_dir():
                continue  # made meanwhile by another process: not ours to change
            raise  # a file where a directory must go, as os.makedirs says
        os.chmod(directory, _PRIVATE)  # mkdir's mode is masked by the umask


@dataclass(frozen=True)
class Tree:
    """A directory tree a batch writes into, whose temporary files live in ``root/.dicomcloak-tmp``.

    ``private``: the tree holds originals (the run directory, the
    quarantine); every directory created in it is mode 0700.
    """

    root: Path
    private: bool = False

    @property
    def staging(self) -> Path:
        """``root/.dicomcloak-tmp``: where temporary files are created."""
        return self.root / TEMP_DIR_NAME

    def make_dirs(self, directory: Path) -> None:
        """Create ``directory`` (inside the tree) and its missing parents; 0700 in a private tree."""
        if self.private:
            makedirs_private(directory)
        else:
            os.makedirs(directory, exist_ok=True)

    def make_staging(self) -> None:
        """Create the staging directory, mode 0700 (its files may be complete outputs, unsealed)."""
        makedirs_private(self.staging)

    def remove_stale(self) -> int:
        """Remove the temporary files that gone processes of this host left in the staging directory."""
        return remove_stale(self.staging)

    def tidy(self) -> None:
        """Remove the staging directory if it is empty (another run may still be using it: then not)."""
        with suppress(OSError):
            os.rmdir(self.staging)

"""The gateway's durable spool: its layout on disk and the queries on it.

docs/gateway.md, "Durability and the spool".

One directory per route under the spool root, all mode 0700 (the received
instances are originals; the outbound ones are de-identified but not yet
delivered), files 0600::

    <spool>/<route>/incoming/<uuid>.dcm     received, being processed (a crash leaves it: removed at start)
    <spool>/<route>/incoming/<uuid>.claim   the instance claims it made (released if it never completed)
    <spool>/<route>/outbound/...            processed and durable, waiting for the forwarder
    <spool>/<route>/claims/                 who wrote each instance first (batch.claims.DirClaims)
    <spool>/<route>/failed/                 refused by the destination for good (an error status)

An instance in ``outbound`` was answered success: it is removed only once the
destination accepted it, with its directory synced, so a crash at any point
delivers it again rather than never (at least once: the destination sees a
re-send of the same SOP Instance as a duplicate).
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from dicomcloak.batch.claims import Claim, DirClaims
from dicomcloak.errors import ConfigError
from dicomcloak.io.inputs import InputItem
from dicomcloak.io.staging import TEMP_DIR_NAME, Tree, makedirs_private

__all__ = ["CLAIM_SUFFIX", "RouteSpool", "SpoolClaims", "SpoolLock", "Usage", "fsync_directory"]

#: The side file of a received instance that lists the claim files it made, one a line.
CLAIM_SUFFIX = ".claim"
_PRIVATE_FILE = 0o600
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class Usage:
    """What the outbound queue holds: files and bytes."""

    files: int
    bytes: int


def fsync_directory(directory: Path) -> None:
    """Make the renames and removals in ``directory`` durable (a power cut could otherwise undo them)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolLock:
    """One gateway per spool: an exclusive lock on ``<spool>/gateway.lock`` while it runs.

    A second gateway on the same spool would remove the first one's received
    instances as crash leftovers and send the same files twice.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / "gateway.lock"
        self._fd = -1

    def acquire(self) -> None:
        """Take the lock (the spool root is made, 0700).

        Raises
        ------
        ConfigError
            ``spool-in-use``: another gateway runs on this spool.
        """
        makedirs_private(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), _PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(
                f"another gateway is running on the spool {self.path.parent}",
                reference="spool-in-use",
                hint="stop it first, or give this gateway a spool of its own",
            ) from None
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (closing the descriptor releases it)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class RouteSpool:
    """One route's part of the spool; the outbound queue's size is counted in memory (thread-safe)."""

    def __init__(self, root: Path, route: str) -> None:
        self.base = root / route
        self.incoming = self.base / "incoming"
        self.outbound = self.base / "outbound"
        self.claims = self.base / "claims"
        self.failed = self.base / "failed"
        self.tree = Tree(self.outbound, private=True)
        self._lock = threading.Lock()
        self._files = 0
        self._bytes = 0

    def prepare(self) -> int:
        """Make the directories (0700), remove what a crashed process left; how many claims were released.

        Leftovers of ``incoming`` were never answered success (their senders
        will send them again): they are removed, and the claims they made are
        released (an instance claimed but never written must not pass for a
        duplicate when it comes again). The writers' temporary files and
        half-made claim files are removed too.
        """
        directories = (self.base.parent, self.base, self.incoming, self.outbound, self.claims, self.failed)
        for directory in directories:
            makedirs_private(directory)
            os.chmod(directory, 0o700)
        stale: list[Path] = []
        for entry in os.scandir(self.incoming):
            path = Path(entry.path)
            if entry.name.endswith(CLAIM_SUFFIX) and path.with_suffix(".dcm").exists():
                with suppress(OSError):
                    stale += [Path(line) for line in path.read_text("utf-8").splitlines() if line]
        for entry in os.scandir(self.incoming):
            with suppress(OSError):
                os.unlink(entry.path)
        for entry in os.scandir(self.claims):
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                with suppress(OSError):
                    os.unlink(entry.path)
        self.tree.remove_stale()
        for claim in stale:
            with suppress(OSError):
                os.unlink(claim)
        usage = self.scan()
        with self._lock:
            self._files, self._bytes = usage.files, usage.bytes
        return len(stale)

    def receive(self, encoded: bytes) -> Path:
        """Write a received instance to ``incoming/<uuid>.dcm`` (0600) under a name of its own.

        Not synced: until it is processed and its output durable, the sender keeps its copy.
        """
        path = self.incoming / f"{uuid.uuid4().hex}.dcm"
        fd = os.open(path, _CREATE, _PRIVATE_FILE)
        try:
            view = memoryview(encoded)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            with suppress(OSError):
                os.unlink(path)
            raise
        os.close(fd)
        return path

    def discard_received(self, path: Path) -> None:
        """Remove a processed received instance, then its claim list (in that order: see :meth:`prepare`)."""
        with suppress(OSError):
            os.unlink(path)
        with suppress(OSError):
            os.unlink(path.with_suffix(CLAIM_SUFFIX))

    def scan(self) -> Usage:
        """Count the outbound files and bytes on disk (at start; afterwards they are counted as they come)."""
        files = size = 0
        for path in self._walk():
            with suppress(OSError):
                size += path.stat().st_size
                files += 1
        return Usage(files, size)

    def pending(self, limit: int | None = None) -> list[Path]:
        """The outbound files, oldest first (by modification time, then name), at most ``limit``."""
        stamped: list[tuple[int, str, Path]] = []
        for path in self._walk():
            with suppress(OSError):
                stamped.append((path.stat().st_mtime_ns, path.name, path))
        stamped.sort()
        return [path for _, _, path in stamped[:limit]]

    def _walk(self) -> list[Path]:
        found: list[Path] = []
        for directory, subdirs, files in os.walk(self.outbound):
            subdirs[:] = [name for name in subdirs if name != TEMP_DIR_NAME]
            found += [Path(directory, name) for name in files if not name.startswith(".")]
        return found

    def added(self, size: int, *, replacing: int | None = None) -> None:
        """Count an output just made durable in ``outbound``; ``replacing``: the size of the file it replaced.

        A re-identified instance is named after its SOP Instance UID: received
        again before it was forwarded, it replaces the waiting file (the latest
        restored copy is sent, once), and the queue does not grow.
        """
        with self._lock:
            if replacing is None:
                self._files += 1
                self._bytes += size
            else:
                self._bytes += size - replacing

    @staticmethod
    def size_of(path: Path) -> int | None:
        """The size of an outbound file, or None when there is none."""
        try:
            return path.stat().st_size
        except OSError:
            return None

    def usage(self) -> Usage:
        """The outbound queue now."""
        with self._lock:
            return Usage(self._files, self._bytes)

    def remove(self, path: Path) -> None:
        """Remove a delivered file durably (its directory synced), and uncount it."""
        size = _size(path)
        os.unlink(path)
        fsync_directory(path.parent)
        self._uncount(size)

    def fail(self, path: Path) -> Path:
        """Move a file the destination refused for good to ``failed/`` (flat, its own name), durably."""
        size = _size(path)
        target = self.failed / path.name
        os.replace(path, target)
        fsync_directory(self.failed)
        fsync_directory(path.parent)
        self._uncount(size)
        return target

    @property
    def in_flight_note(self) -> Path:
        """Names the file being sent now: after a crash or a lost association it is *in doubt*."""
        return self.base / "in-flight"

    def sending(self, path: Path) -> None:
        """Note ``path`` as about to be sent (atomic replace; not synced: a ``kill -9`` keeps it).

        A file is in doubt between the destination storing it and :meth:`remove`:
        the forwarder settles it before sending again (docs/gateway.md, "In doubt").
        """
        note = self.in_flight_note
        temporary = note.with_name(".in-flight.tmp")
        temporary.write_text(str(path.relative_to(self.outbound)), "utf-8")
        os.replace(temporary, note)

    def settled(self) -> None:
        """Nothing is in doubt any more (delivered and removed, or refused by the destination)."""
        with suppress(OSError):
            os.unlink(self.in_flight_note)

    def in_doubt(self) -> Path | None:
        """The outbound file a previous send left in doubt, if it is still there."""
        try:
            relative = self.in_flight_note.read_text("utf-8").strip()
        except OSError:
            return None
        path = self.outbound / relative
        inside = bool(relative) and ".." not in Path(relative).parts and not Path(relative).is_absolute()
        if inside and path.is_file():
            return path
        self.settled()
        return None

    def _uncount(self, size: int) -> None:
        with self._lock:
            self._files = max(0, self._files - 1)
            self._bytes = max(0, self._bytes - size)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class SpoolClaims(DirClaims):
    """Claims that a received instance which never completed gives back (:class:`DirClaims`, with digests).

    The worker claims an instance before its output is written. If the output
    is never made durable (a failure, a crash), the sender was not answered
    success and sends it again, and that re-send must be processed, not taken
    for a duplicate. So before a claim is made, its file is listed beside the
    received instance (``<uuid>.claim``); :meth:`release` removes the listed
    claims after a failure, :meth:`RouteSpool.prepare` after a crash.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, digests=True)

    def claim(self, key: str, index: int, item: InputItem, digest: bytes | None = None) -> Claim | None:
        """Claim ``key`` as :meth:`DirClaims.claim`, listed first beside the received instance."""
        side = item.source.with_suffix(CLAIM_SUFFIX)
        with open(side, "a", encoding="utf-8") as handle:
            before = handle.tell()
            handle.write(self.path_of(key) + "\n")
        first = super().claim(key, index, item, digest)
        if first is not None:  # another input's claim: not ours to release
            os.truncate(side, before)
        return first

    @staticmethod
    def release(received: Path) -> None:
        """Remove the claims listed beside ``received`` (its output was not made durable)."""
        side = received.with_suffix(CLAIM_SUFFIX)
        try:
            lines = side.read_text("utf-8").splitlines()
        except OSError:
            return
        for line in lines:
            if line:
                with suppress(OSError):
                    os.unlink(line)

"""Write the report file: atomically, readable by its owner only (it shows PHI).

``pixels`` may not import :mod:`dicomcloak.io` (layering), so this is the
small atomic write of the pattern the project uses everywhere (temporary file
0600 beside the target, fsync, rename, fsync of the directory).
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from dicomcloak.errors import OutputError

__all__ = ["write_report"]


def write_report(path: Path, html: str) -> None:
    """Write ``html`` to ``path`` (UTF-8), replacing it only when complete; mode 0600.

    A half-written report is useless and a world-readable one leaks the PHI
    on its thumbnails, so the file appears whole, owner-only, or not at all.

    Raises
    ------
    OutputError
        ``output-unwritable`` when the directory cannot be created or the
        file written; no temporary file is left behind.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_synced(tmp, html.encode("utf-8"))
        os.replace(tmp, path)
        _fsync_directory(path.parent)
    except OSError:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OutputError(
            f"cannot write the pixel report {path.name}", reference="output-unwritable",
            hint="check that the run directory exists, is writable and has free space",
        ) from None


def _write_synced(path: Path, payload: bytes) -> None:
    """Create ``path`` afresh with mode 0600 (O_EXCL: never reuse a stale file's permissions), sync it."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

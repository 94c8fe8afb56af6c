"""The gateway's SQLite files live where its configuration says, whose directories may not exist yet.

A first ``dicomcloak serve`` with ``audit = "./var/audit.db"`` (examples/gateway.toml)
creates ``./var/`` as it creates the spool and quarantine: private (0700), like
every directory that holds the audit trail or sealed originals (docs/security.md).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["make_sqlite_parent"]


def make_sqlite_parent(url: str | None) -> None:
    """Create the directory of a ``sqlite:///PATH`` store (0700) if missing; other URLs are left alone."""
    if url is None or not url.startswith("sqlite:///"):
        return
    database = url.removeprefix("sqlite:///").split("?", 1)[0]
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)

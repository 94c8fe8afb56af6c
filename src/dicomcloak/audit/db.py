"""SQLAlchemy engines for the vault and audit stores: SQLite (WAL) by default, PostgreSQL by URL.

An edge module (STYLE.md layout): it imports SQLAlchemy at module level, so
import it only where a store is opened; ``dicomcloak.audit`` and
``dicomcloak.vault`` import it lazily. URLs are never echoed in errors or
logs: a PostgreSQL URL may hold a password.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from dicomcloak.audit.failures import type_failures
from dicomcloak.errors import OutputError, StoreError, UsageError

__all__ = ["insert_missing", "make_engine", "parse_url", "upsert"]

# When a server goes away, SQLAlchemy's pool logs each connection it fails to close, with a traceback:
# with no logging configured, Python's last-resort handler would print those on stderr. Our typed
# error says what happened; a program that configures logging still gets the records.
logging.getLogger("sqlalchemy.pool").addHandler(logging.NullHandler())

_DRIVERS = {"sqlite": "sqlite", "sqlite+pysqlite": "sqlite", "postgresql": "postgresql+pg8000",
            "postgresql+pg8000": "postgresql+pg8000"}


def parse_url(url: str) -> URL:
    """Validate a store URL: ``sqlite:///path`` or ``postgresql[+pg8000]://...``."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise UsageError("the vault URL is not a valid SQLAlchemy URL", reference="vault-url-invalid",
                         hint="e.g. sqlite:///vault.db or postgresql+pg8000://user@host/db") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise UsageError(f"unsupported vault database {parsed.drivername!r}", reference="vault-url-invalid",
                         hint="use sqlite:///PATH or postgresql+pg8000://...")
    if driver == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise UsageError("the vault needs a SQLite file, not an in-memory database",
                         reference="vault-url-invalid", hint="e.g. sqlite:///vault.db")
    return parsed.set(drivername=driver)


def make_engine(url: str, *, lock_slice: float | None = None) -> Engine:
    """An engine for ``url``, connected once; SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE``.

    Connecting here, where the vault and the audit log are opened, makes an
    unreachable database one typed error before any work starts (the
    connection goes back to the pool and serves the first statement). From
    then on every driver error is typed as it is raised
    (:mod:`dicomcloak.audit.failures`). ``lock_slice``: seconds a statement
    waits for a lock before it fails as busy (SQLite's busy timeout,
    PostgreSQL's ``lock_timeout``), for callers that retry
    (:class:`~dicomcloak.audit.failures.BusyWait`); None: SQLite waits
    60 s, PostgreSQL as long as the server is configured to.

    Raises
    ------
    StoreError
        ``vault-unreachable``: no server answered, the credentials or the
        database were refused, the SQLite file cannot be opened.
    """
    parsed = parse_url(url)
    if parsed.drivername == "sqlite":
        engine = _sqlite_engine(parsed, _SQLITE_BUSY if lock_slice is None else lock_slice)
    else:
        engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=_pg_arguments(lock_slice))
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as error:
        engine.dispose()
        raise _unreachable(engine.dialect.name, error.orig) from None
    type_failures(engine)  # after the first connection: an unreachable database at start stays a StoreError
    return engine


_SQLITE_BUSY = 60.0


def _pg_arguments(lock_slice: float | None) -> dict[str, Any]:
    if lock_slice is None:
        return {}
    return {"startup_params": {"lock_timeout": str(max(1, round(lock_slice * 1000)))}}


#: PostgreSQL's SQLSTATE codes for a connection the server refused (PostgreSQL documentation, Appendix A).
_REFUSALS = {
    "28000": "the server refused the user (invalid authorization)",
    "28P01": "the server refused the password",
    "3D000": "the database does not exist",
}


#: Without the server's reason: no server (refused, no such host or socket), or it hung up first
#: (pg8000 may meet a closed socket before it reads the server's refusal).
_NO_SERVER = "no server answered, or it closed the connection"


def _unreachable(dialect: str, cause: BaseException | None) -> StoreError:
    """The typed error for a failed first connection; the URL is never shown (it may hold a password)."""
    if dialect != "postgresql":
        return StoreError("the SQLite database file cannot be opened", reference="vault-unreachable",
                          hint="check that the path names a SQLite file, or none yet, in a writable folder")
    args = getattr(cause, "args", ())
    fields = args[0] if args and isinstance(args[0], dict) else {}  # pg8000: the server's error fields
    what = _REFUSALS.get(str(fields.get("C", "")), _NO_SERVER)
    return StoreError(f"cannot connect to the PostgreSQL database: {what}", reference="vault-unreachable",
                      hint="check the URL's host, port or unix_sock, that the server runs, the user, "
                      "password and database name (the URL is not shown: it may hold a password)")


def _sqlite_engine(url: URL, busy: float) -> Engine:
    path = Path(str(url.database))
    if not path.exists():
        _create_private(path)
    engine = sa.create_engine(url, connect_args={"timeout": busy})
    sa.event.listen(engine, "connect", functools.partial(_sqlite_connect, busy_ms=max(1, round(busy * 1000))))
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _create_private(path: Path) -> None:
    # The vault holds ciphertext of PHI and the audit trail: owner-only, like the key file.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError:
        raise OutputError("the vault database file cannot be created", reference="vault-unwritable",
                          hint="check that the directory exists and is writable") from None


def _sqlite_connect(dbapi_connection: Any, _record: Any, *, busy_ms: int) -> None:
    # pysqlite's own transaction handling is off; SQLAlchemy's "begin" event issues BEGIN IMMEDIATE,
    # so a read-then-write (audit chain, data key creation) never races another writer.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: every commit is on disk before it returns. A group's files are renamed into place only after
    # its originals are sealed (architecture.md decision 6); with NORMAL, a power cut could keep the files and
    # lose their sealed originals (and audit rows). One fsync per group of files costs next to nothing.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def upsert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert ``rows`` (one executemany), replacing rows with the same ``keys``; keys must not repeat."""
    if not rows:
        return
    stmt = _dialect_insert(conn, table)
    update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    _executemany(conn, stmt.on_conflict_do_update(index_elements=keys, set_=update), table, keys, rows)


def insert_missing(conn: Connection, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert ``rows`` (one executemany), keeping any row another writer already inserted."""
    if rows:
        stmt = _dialect_insert(conn, table).on_conflict_do_nothing(index_elements=keys)
        _executemany(conn, stmt, table, keys, rows)


def _executemany(conn: Connection, stmt: Any, table: sa.Table, keys: list[str],
                 rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name == "postgresql":
        # pg8000's executemany is one round trip per row. With RETURNING, SQLAlchemy's
        # "insertmanyvalues" sends multi-row VALUES batches (1,000 rows each) compiled once
        # (without RETURNING it is off for ON CONFLICT statements).
        stmt = stmt.returning(*(table.c[k] for k in keys))
    conn.execute(stmt, rows)


def _dialect_insert(conn: Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)

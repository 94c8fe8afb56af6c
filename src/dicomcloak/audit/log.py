"""The hash-chained, append-only audit log: who did what to the vault, never a value.

One row per action (a seal batch, a record opened, a pseudonym looked up, a key
rotation, rewrap or retirement, a shred): sequence number, UTC time, action,
actor (the OS user) and facts (pseudonyms, tags, key ids, counts; DESIGN.md
decision 7 forbids values). Each row stores the hash of the previous row and
its own hash, SHA-256 over the previous hash and the row's canonical JSON, so
changing, inserting or deleting a row breaks the chain. Deleting the *last*
rows leaves a valid shorter chain: compare :meth:`AuditLog.verify`'s head with
one recorded elsewhere (``audit verify --expect-head``).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dicomcloak.audit.db import make_engine
from dicomcloak.errors import SealError

__all__ = ["GENESIS", "AuditLog", "audit_table", "row_hash"]

#: The "previous hash" of the first row, and the head of an empty log.
GENESIS = "0" * 64
_METADATA = sa.MetaData()


def audit_table(metadata: sa.MetaData) -> sa.Table:
    """The audit table in ``metadata`` (shared with the vault's tables when they live together)."""
    return sa.Table(
        "dicomcloak_audit", metadata,
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("time", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


_TABLE = audit_table(_METADATA)


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): still audited, as unknown
        return "unknown"


def _canonical(facts: dict[str, Any]) -> str:
    return json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def row_hash(seq: int, time: str, action: str, actor: str, facts: str, prev_hash: str) -> str:
    """SHA-256 over the previous hash and the row's canonical JSON."""
    body = json.dumps([seq, time, action, actor, facts, prev_hash], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode("ascii")).hexdigest()


class AuditLog:
    """The audit table of one database. Thread-compatible; one writer transaction at a time."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine
        _METADATA.create_all(engine, checkfirst=True)

    @classmethod
    def open(cls, url: str) -> AuditLog:
        """Open (creating the table if missing) the audit log at ``url``."""
        return cls(make_engine(url), owns_engine=True)

    def append(self, action: str, **facts: Any) -> str:
        """Append one event in its own transaction; returns its hash (the new head)."""
        with self._engine.begin() as conn:
            return self.append_in(conn, action, facts)

    def append_in(self, conn: Connection, action: str, facts: dict[str, Any]) -> str:
        """Append one event inside the caller's transaction (atomic with what it records)."""
        if conn.dialect.name == "postgresql":
            # Serialize appenders across nodes: the chain needs the true last row.
            conn.exec_driver_sql("LOCK TABLE dicomcloak_audit IN SHARE ROW EXCLUSIVE MODE")
        last = conn.execute(sa.select(_TABLE.c.seq, _TABLE.c.hash).order_by(_TABLE.c.seq.desc()).limit(1))
        seq, prev = next(iter(last), (0, GENESIS))
        time, actor, text = dt.datetime.now(dt.UTC).isoformat(), _actor(), _canonical(facts)
        digest = row_hash(seq + 1, time, action, actor, text, prev)
        conn.execute(sa.insert(_TABLE), {"seq": seq + 1, "time": time, "action": action, "actor": actor,
                                         "facts": text, "prev_hash": prev, "hash": digest})
        return digest

    def verify(self, expect_head: str | None = None) -> str:
        """Check the whole chain; return the head hash. :class:`SealError` ``audit-chain-broken``."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_TABLE).order_by(_TABLE.c.seq)).mappings()
            head = _check_chain(rows)
        if expect_head is not None and head != expect_head.strip().lower():
            raise _broken("the head does not match the expected head: the last rows were changed or deleted")
        return head

    def count(self) -> int:
        """How many events the log holds."""
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(_TABLE)).scalar_one())

    def events(self) -> list[dict[str, Any]]:
        """Every event, oldest first, with its facts decoded (for reports and tests)."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_TABLE).order_by(_TABLE.c.seq)).mappings().all()
        return [{**row, "facts": json.loads(row["facts"])} for row in rows]

    def close(self) -> None:
        """Release the database connections (only if this log opened them)."""
        if self._owns_engine:
            self._engine.dispose()


def _check_chain(rows: Iterable[sa.RowMapping]) -> str:
    prev, expected_seq = GENESIS, 1
    for row in rows:
        if row["seq"] != expected_seq:
            raise _broken(f"row {expected_seq} is missing (found {row['seq']})")
        if row["prev_hash"] != prev:
            raise _broken(f"row {row['seq']} does not follow row {expected_seq - 1}")
        fields = {k: row[k] for k in ("seq", "time", "action", "actor", "facts", "prev_hash")}
        if row_hash(**fields) != row["hash"]:
            raise _broken(f"row {row['seq']} was changed")
        prev, expected_seq = row["hash"], expected_seq + 1
    return prev


def _broken(message: str) -> SealError:
    return SealError(f"audit chain broken: {message}", reference="audit-chain-broken",
                     hint="restore the audit table from a trusted backup and investigate")

"""The hash-chained, append-only audit log: who did what to the vault, never a value.

One row per action (a seal batch, a record opened, a pseudonym looked up, a key
rotation, rewrap or retirement, a shred): sequence number, UTC time, action,
actor (the OS user) and facts (pseudonyms, tags, key ids, counts; architecture.md
decision 7 forbids values). Each row stores the hash of the previous row and
its own hash, SHA-256 over the previous hash and the row's canonical JSON, so
changing, inserting or deleting a row breaks the chain.

Deleting the *last* rows, or all of them, or dropping the table, would leave a
valid shorter chain. So every append also writes the chain's **anchor**, its
head hash and number of events, to the metadata table ``dicomcloak_vault_meta``
(``audit_head``, ``audit_events``) in the same transaction, and
:meth:`AuditLog.verify` compares the chain with it: fewer events than anchored
is ``audit-chain-truncated``. Someone who can also rewrite the anchor can hide
a truncation from it; only a head kept elsewhere exposes that (a run report's
``audit`` block, ``audit verify --expect-head`` or ``--report``; docs/vault.md).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dicomcloak.audit.db import make_engine, upsert
from dicomcloak.errors import SealError

__all__ = ["GENESIS", "AuditLog", "Head", "audit_table", "row_hash"]

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
#: The vault's metadata table (the same definition as ``dicomcloak.vault.schema.META``, which sits above
#: this layer); created in an audit-only database too. It holds the chain's anchor.
_META = sa.Table(
    "dicomcloak_vault_meta", _METADATA,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
_HEAD, _EVENTS = "audit_head", "audit_events"


@dataclass(frozen=True)
class Head:
    """A point of the chain: how many events it holds, and the hash of the last (:data:`GENESIS` if none)."""

    events: int
    head: str

    def to_dict(self) -> dict[str, Any]:
        """``{"events": N, "head": HASH}``, as run reports record it."""
        return {"events": self.events, "head": self.head}


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
        # The anchor, in the same transaction: truncating the chain now shows (verify).
        anchor = [{"name": _HEAD, "value": digest}, {"name": _EVENTS, "value": str(seq + 1)}]
        upsert(conn, _META, anchor, ["name"])
        return digest

    def verify(self, expect_head: str | None = None, *, through: Iterable[Head] = ()) -> str:
        """Check the whole chain against its anchor; return the head hash (:meth:`check`)."""
        return self.check(expect_head, through=through).head

    def check(self, expect_head: str | None = None, *, through: Iterable[Head] = ()) -> Head:
        """Check the whole chain against its anchor; return its head and number of events, read together.

        ``expect_head``: the head must be exactly this (recorded elsewhere, nothing
        appended since). ``through``: heads recorded earlier (a run report's
        ``audit`` block) that the chain must still pass through.

        Raises
        ------
        SealError
            ``audit-chain-broken``: a row changed, inserted or deleted, rows
            added or rewritten behind the anchor's back, another head than
            expected; ``audit-chain-truncated``: fewer events than the anchor
            (or a recorded head) says, the last rows or the table gone.
        """
        recorded = list(through)
        wanted = {head.events for head in recorded}
        with self._connect() as conn:
            rows = conn.execute(sa.select(_TABLE).order_by(_TABLE.c.seq)).mappings()
            current, seen = _check_chain(rows, wanted)
            anchor = _read_anchor(conn)
        _check_anchor(anchor, current)
        for head in recorded:
            _check_through(head, seen, current)
        if expect_head is not None and current.head != expect_head.strip().lower():
            raise _broken("the head does not match the expected head: the last rows were changed or deleted")
        return current

    def anchor(self) -> Head | None:
        """The anchor the last append wrote (None: nothing appended since anchors exist)."""
        with self._connect() as conn:
            return _read_anchor(conn)

    def head(self) -> Head:
        """The last event's number and hash (no check: :meth:`verify` checks)."""
        with self._connect() as conn:
            last = conn.execute(sa.select(_TABLE.c.seq, _TABLE.c.hash).order_by(_TABLE.c.seq.desc()).limit(1))
            seq, digest = next(iter(last), (0, GENESIS))
        return Head(int(seq), str(digest))

    def _connect(self) -> Connection:
        """A connection whose reads see one snapshot (PostgreSQL: REPEATABLE READ; SQLite: its BEGIN)."""
        conn = self._engine.connect()
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        return conn

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


def _check_chain(rows: Iterable[sa.RowMapping], wanted: set[int]) -> tuple[Head, dict[int, str]]:
    """Walk the chain; its head, and the hashes of the ``wanted`` event numbers."""
    prev, expected_seq = GENESIS, 1
    seen = {0: GENESIS} if 0 in wanted else {}
    for row in rows:
        if row["seq"] != expected_seq:
            raise _broken(f"row {expected_seq} is missing (found {row['seq']})")
        if row["prev_hash"] != prev:
            raise _broken(f"row {row['seq']} does not follow row {expected_seq - 1}")
        fields = {k: row[k] for k in ("seq", "time", "action", "actor", "facts", "prev_hash")}
        if row_hash(**fields) != row["hash"]:
            raise _broken(f"row {row['seq']} was changed")
        if expected_seq in wanted:
            seen[expected_seq] = row["hash"]
        prev, expected_seq = row["hash"], expected_seq + 1
    return Head(expected_seq - 1, prev), seen


def _read_anchor(conn: Connection) -> Head | None:
    query = sa.select(_META.c.name, _META.c.value).where(_META.c.name.in_([_HEAD, _EVENTS]))
    rows = {str(name): str(value) for name, value in conn.execute(query)}
    if _HEAD not in rows and _EVENTS not in rows:
        return None
    try:
        return Head(int(rows.get(_EVENTS, "")), str(rows.get(_HEAD, "")))
    except ValueError:
        raise _broken("the anchor's event count is not a number: the metadata table was edited") from None


def _check_anchor(anchor: Head | None, current: Head) -> None:
    """The chain must end where its anchor says (a log without an anchor yet passes: older versions)."""
    if anchor is None or anchor == current:
        return
    if current.events < anchor.events:
        raise _truncated(f"the log holds {current.events} events, its anchor {anchor.events}: "
                         "the last rows (or the whole table) were deleted")
    if current.events > anchor.events:
        raise _broken(f"the log holds {current.events} events, its anchor {anchor.events}: "
                      "rows were added outside dicomcloak")
    raise _broken("the last row's hash is not the anchor's: the last rows were replaced")


def _check_through(recorded: Head, seen: dict[int, str], current: Head) -> None:
    """The chain must still hold ``recorded`` (a head a run report kept)."""
    if recorded.events > current.events:
        raise _truncated(f"the log holds {current.events} events, a recorded head {recorded.events}: "
                         "rows were deleted since it was recorded")
    if seen.get(recorded.events) != recorded.head.strip().lower():
        raise _broken(f"event {recorded.events} is not the one recorded: the chain was rewritten since")


def _truncated(message: str) -> SealError:
    return SealError(f"audit chain truncated: {message}", reference="audit-chain-truncated",
                     hint="restore the audit table from a trusted backup and investigate")


def _broken(message: str) -> SealError:
    return SealError(f"audit chain broken: {message}", reference="audit-chain-broken",
                     hint="restore the audit table from a trusted backup and investigate")

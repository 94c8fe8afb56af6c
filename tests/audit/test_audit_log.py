"""The audit chain on real SQLite and PostgreSQL: changed, inserted and deleted rows are detected."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from dicomcloak.audit import AuditLog
from dicomcloak.audit.log import GENESIS, row_hash
from dicomcloak.errors import SealError

TABLE = sa.table("dicomcloak_audit", sa.column("seq"), sa.column("facts"), sa.column("hash"),
                 sa.column("prev_hash"), sa.column("time"), sa.column("action"), sa.column("actor"))


@pytest.fixture
def log(db_url: str) -> Iterator[AuditLog]:
    audit = AuditLog.open(db_url)
    for n in range(5):
        audit.append("seal", records=n, studies=[f"2.25.{n}"])
    yield audit
    audit.close()


def run(db_url: str, statement: sa.Executable) -> None:
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(statement)
    engine.dispose()


def broken(log: AuditLog, expect_head: str | None = None) -> str:
    with pytest.raises(SealError) as info:
        log.verify(expect_head)
    assert info.value.reference == "audit-chain-broken"
    return info.value.message


def test_intact_chain(log: AuditLog) -> None:
    head = log.verify()
    assert head == log.events()[-1]["hash"]
    assert log.verify(head) == head
    assert log.count() == 5
    assert [e["facts"]["records"] for e in log.events()] == [0, 1, 2, 3, 4]


def test_empty_log_head_is_genesis(db_url: str) -> None:
    audit = AuditLog.open(db_url)
    assert audit.verify() == GENESIS
    assert audit.count() == 0
    audit.close()


def test_changed_row(log: AuditLog, db_url: str) -> None:
    run(db_url, sa.update(TABLE).where(TABLE.c.seq == 3).values(facts=json.dumps({"records": 99})))
    assert "row 3 was changed" in broken(log)


def test_changed_row_with_recomputed_hash(log: AuditLog, db_url: str) -> None:
    row = log.events()[2]
    facts = json.dumps({"records": 99}, separators=(",", ":"))
    forged = row_hash(row["seq"], row["time"], row["action"], row["actor"], facts, row["prev_hash"])
    run(db_url, sa.update(TABLE).where(TABLE.c.seq == 3).values(facts=facts, hash=forged))
    assert "row 4 does not follow" in broken(log)


def test_deleted_middle_row(log: AuditLog, db_url: str) -> None:
    run(db_url, sa.delete(TABLE).where(TABLE.c.seq == 2))
    assert "row 2 is missing" in broken(log)


def test_inserted_row(log: AuditLog, db_url: str) -> None:
    run(db_url, sa.update(TABLE).where(TABLE.c.seq == 5).values(seq=6))
    run(db_url, sa.update(TABLE).where(TABLE.c.seq == 4).values(seq=5))
    first = log.events()[0]
    run(db_url, sa.insert(TABLE).values(seq=4, time=first["time"], action="seal", actor="x", facts="{}",
                                        prev_hash=first["hash"], hash=first["hash"]))
    broken(log)


def test_deleted_last_rows_need_the_expected_head(log: AuditLog, db_url: str) -> None:
    head = log.verify()
    run(db_url, sa.delete(TABLE).where(TABLE.c.seq >= 4))
    assert log.verify() != head  # a shorter chain is still a valid chain...
    assert "expected head" in broken(log, head)  # ...which the recorded head exposes

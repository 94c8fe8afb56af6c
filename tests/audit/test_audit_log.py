"""The audit chain on real SQLite and PostgreSQL: changed, inserted and deleted rows are detected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from dicomcloak.audit import AuditLog
from dicomcloak.audit.log import GENESIS, Head, row_hash
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


META = sa.table("dicomcloak_vault_meta", sa.column("name"), sa.column("value"))


def failure(log: AuditLog, reference: str, **kwargs: Any) -> str:
    with pytest.raises(SealError) as info:
        log.verify(**kwargs)
    assert info.value.reference == reference
    return info.value.message


def test_every_append_anchors_the_head_in_the_metadata_table(log: AuditLog, db_url: str) -> None:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        anchor = dict(conn.execute(sa.select(META.c.name, META.c.value)).all())
    engine.dispose()
    assert anchor["audit_head"] == log.events()[-1]["hash"] and anchor["audit_events"] == "5"
    assert log.anchor() == Head(5, log.verify()) == log.head()


@pytest.mark.parametrize("first_deleted", [4, 1], ids=["last-rows", "all-rows"])
def test_deleted_last_rows_are_a_truncation(log: AuditLog, db_url: str, first_deleted: int) -> None:
    run(db_url, sa.delete(TABLE).where(TABLE.c.seq >= first_deleted))
    message = failure(log, "audit-chain-truncated")
    assert f"holds {first_deleted - 1} events, its anchor 5" in message


def test_a_dropped_table_is_a_truncation(log: AuditLog, db_url: str) -> None:
    run(db_url, sa.text("DROP TABLE dicomcloak_audit"))
    reopened = AuditLog.open(db_url)  # as `audit verify` does: the table comes back, empty
    try:
        assert "holds 0 events, its anchor 5" in failure(reopened, "audit-chain-truncated")
    finally:
        reopened.close()


def test_rows_appended_behind_the_anchors_back_are_refused(log: AuditLog, db_url: str) -> None:
    last = log.events()[-1]
    facts = "{}"
    forged = row_hash(6, last["time"], "seal", "mallory", facts, last["hash"])
    run(db_url, sa.insert(TABLE).values(seq=6, time=last["time"], action="seal", actor="mallory", facts=facts,
                                        prev_hash=last["hash"], hash=forged))
    assert "added outside dicomcloak" in broken(log)


def test_truncation_with_a_rewritten_anchor_needs_a_head_kept_elsewhere(log: AuditLog, db_url: str) -> None:
    """The anchor's limit (docs/vault.md): who can also edit the metadata row hides the cut from it."""
    head, third = log.head(), Head(3, log.events()[2]["hash"])
    run(db_url, sa.delete(TABLE).where(TABLE.c.seq >= 4))
    run(db_url, sa.update(META).where(META.c.name == "audit_head").values(value=third.head))
    run(db_url, sa.update(META).where(META.c.name == "audit_events").values(value="3"))
    assert log.verify() == third.head  # the chain and its anchor agree again...
    assert "expected head" in broken(log, head.head)  # ...which a head kept elsewhere exposes,
    assert "a recorded head 5" in failure(log, "audit-chain-truncated", through=[head])  # as does a report
    assert log.verify(through=[third]) == third.head


def test_a_recorded_head_the_chain_no_longer_holds_is_refused(log: AuditLog, db_url: str) -> None:
    recorded = Head(3, log.events()[2]["hash"])
    assert log.verify(through=[recorded, Head(0, GENESIS), log.head()]) == log.head().head
    assert "event 3 is not the one recorded" in broken_through(log, Head(3, "ab" * 32))


def broken_through(log: AuditLog, recorded: Head) -> str:
    with pytest.raises(SealError) as info:
        log.verify(through=[recorded])
    assert info.value.reference == "audit-chain-broken"
    return info.value.message


def test_a_log_from_before_anchors_passes_until_its_next_append(log: AuditLog, db_url: str) -> None:
    run(db_url, sa.delete(META).where(META.c.name.in_(["audit_head", "audit_events"])))
    assert log.anchor() is None
    assert log.verify() == log.events()[-1]["hash"]
    log.append("rotate", previous="w1", current="w2")
    assert log.anchor() == log.head() == Head(6, log.verify())


def test_a_vault_anchors_its_audit_head_with_every_seal_batch(db_url: str) -> None:
    from dicomcloak.keys import Keyring, ProjectKey
    from dicomcloak.vault import Vault, VaultRecord

    with Vault.open(db_url, Keyring.create(ProjectKey.generate())) as vault:
        for study in ("2.25.1", "2.25.2"):
            vault.seal_records([VaultRecord("P1", study, f"{study}.1", b"originals", ())])
        assert vault.audit.anchor() == vault.audit.head() == Head(2, vault.audit.verify())
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        names = set(conn.execute(sa.select(META.c.name)).scalars())
    engine.dispose()
    assert {"project_key_id", "audit_head", "audit_events"} <= names  # the vault's own metadata table

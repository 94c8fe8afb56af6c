"""The vault on real SQLite and real PostgreSQL: round trips, tamper detection, shredding, rotation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from dicomcloak.audit import AuditLog
from dicomcloak.errors import SealError
from dicomcloak.keys import Keyring, ProjectKey, Pseudonymizer, WrappingKey
from dicomcloak.vault import Vault, VaultRecord
from dicomcloak.vault.schema import BOUND_RECORDS as RECORDS
from dicomcloak.vault.schema import STUDY_KEYS, UID_MAP

PROJECT = ProjectKey.generate()


def record(study: str, instance: str, patient: str = "PAAA", payload: bytes | None = None) -> VaultRecord:
    pairs = ((instance, f"1.2.840.{instance[-3:]}"), (study, "1.2.840.99"), (patient, "MRN-1"))
    return VaultRecord(patient, study, instance, payload or f"originals of {instance}".encode(), pairs)


@pytest.fixture
def ring() -> Keyring:
    return Keyring.create(PROJECT)


@pytest.fixture
def vault(db_url: str, ring: Keyring) -> Iterator[Vault]:
    store = Vault.open(db_url, ring)
    store.seal_records([record("2.25.100", "2.25.101"), record("2.25.100", "2.25.102"),
                        record("2.25.200", "2.25.201", patient="PBBB")])
    yield store
    store.close()


def reopen(db_url: str, ring: Keyring) -> Vault:
    """A fresh Vault object: nothing cached, every key unwrapped from the database."""
    return Vault.open(db_url, ring)


def tamper(db_url: str, table: sa.Table, where: sa.ColumnElement[bool], **values: object) -> None:
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        assert conn.execute(sa.update(table).where(where).values(**values)).rowcount == 1
    engine.dispose()


def fetch(db_url: str, column: sa.Column[bytes], where: sa.ColumnElement[bool]) -> bytes:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        value = conn.execute(sa.select(column).where(where)).scalar_one()
    engine.dispose()
    return bytes(value)


def flip(data: bytes, index: int = -5) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def expect(reference: str, action: Callable[[], object]) -> SealError:
    with pytest.raises(SealError) as info:
        action()
    assert info.value.reference == reference
    return info.value


def test_roundtrip_and_lookup(vault: Vault, db_url: str, ring: Keyring) -> None:
    fresh = reopen(db_url, ring)
    assert fresh.open_record("2.25.100", "2.25.101").payload == b"originals of 2.25.101"
    assert fresh.open_record("2.25.200", "2.25.201").payload == b"originals of 2.25.201"
    assert fresh.lookup("2.25.102") == "1.2.840.102"
    assert fresh.lookup("PAAA") == "MRN-1"
    assert fresh.lookup("2.25.999") is None
    fresh.close()


def test_records_are_ciphertext(vault: Vault, db_url: str) -> None:
    blob = fetch(db_url, RECORDS.c.sealed, RECORDS.c.instance == "2.25.101")
    assert b"originals" not in blob
    where = sa.and_(UID_MAP.c.pseudonym == "PAAA", UID_MAP.c.study == "2.25.100")
    mapped = fetch(db_url, UID_MAP.c.sealed, where)
    assert b"MRN" not in mapped


def test_resealing_replaces_the_record(vault: Vault, db_url: str, ring: Keyring) -> None:
    vault.seal_records([record("2.25.100", "2.25.101", payload=b"second run")])
    fresh = reopen(db_url, ring)
    assert fresh.open_record("2.25.100", "2.25.101").payload == b"second run"
    fresh.close()


def test_put_uid_map(vault: Vault, db_url: str, ring: Keyring) -> None:
    vault.put_uid_map("2.25.100", [("2.25.555", "1.2.3.555")])
    fresh = reopen(db_url, ring)
    assert fresh.lookup("2.25.555") == "1.2.3.555"
    expect("vault-record-missing", lambda: fresh.put_uid_map("2.25.404", [("a", "b")]))
    fresh.close()


def test_missing_record(vault: Vault) -> None:
    expect("vault-record-missing", lambda: vault.open_record("2.25.100", "2.25.999"))
    expect("vault-record-missing", lambda: vault.open_record("2.25.404", "2.25.405"))


def test_flipped_bit_in_record(vault: Vault, db_url: str, ring: Keyring) -> None:
    where = sa.and_(RECORDS.c.study == "2.25.100", RECORDS.c.instance == "2.25.101")
    tamper(db_url, RECORDS, where, sealed=flip(fetch(db_url, RECORDS.c.sealed, where)))
    fresh = reopen(db_url, ring)
    error = expect("vault-record-tampered", lambda: fresh.open_record("2.25.100", "2.25.101"))
    assert "originals" not in str(error)
    assert fresh.open_record("2.25.100", "2.25.102").payload == b"originals of 2.25.102"  # others unaffected
    fresh.close()


def test_flipped_bit_in_wrapped_key(vault: Vault, db_url: str, ring: Keyring) -> None:
    where = STUDY_KEYS.c.study == "2.25.100"
    tamper(db_url, STUDY_KEYS, where, wrapped=flip(fetch(db_url, STUDY_KEYS.c.wrapped, where)))
    fresh = reopen(db_url, ring)
    expect("vault-key-tampered", lambda: fresh.open_record("2.25.100", "2.25.101"))
    assert fresh.open_record("2.25.200", "2.25.201").payload == b"originals of 2.25.201"
    fresh.close()


def test_swapped_records_between_instances(vault: Vault, db_url: str, ring: Keyring) -> None:
    a = sa.and_(RECORDS.c.study == "2.25.100", RECORDS.c.instance == "2.25.101")
    b = sa.and_(RECORDS.c.study == "2.25.100", RECORDS.c.instance == "2.25.102")
    blob_a, blob_b = fetch(db_url, RECORDS.c.sealed, a), fetch(db_url, RECORDS.c.sealed, b)
    tamper(db_url, RECORDS, a, sealed=blob_b)
    tamper(db_url, RECORDS, b, sealed=blob_a)
    fresh = reopen(db_url, ring)
    expect("vault-record-tampered", lambda: fresh.open_record("2.25.100", "2.25.101"))
    expect("vault-record-tampered", lambda: fresh.open_record("2.25.100", "2.25.102"))
    fresh.close()


def test_record_moved_to_another_study(vault: Vault, db_url: str, ring: Keyring) -> None:
    source = sa.and_(RECORDS.c.study == "2.25.200", RECORDS.c.instance == "2.25.201")
    target = sa.and_(RECORDS.c.study == "2.25.100", RECORDS.c.instance == "2.25.101")
    tamper(db_url, RECORDS, target, sealed=fetch(db_url, RECORDS.c.sealed, source))
    tamper(db_url, RECORDS, source, study="2.25.100", instance="2.25.103")
    fresh = reopen(db_url, ring)
    expect("vault-record-tampered", lambda: fresh.open_record("2.25.100", "2.25.101"))
    expect("vault-record-tampered", lambda: fresh.open_record("2.25.100", "2.25.103"))
    fresh.close()


def test_wrapped_key_moved_to_another_study(vault: Vault, db_url: str, ring: Keyring) -> None:
    wrapped = fetch(db_url, STUDY_KEYS.c.wrapped, STUDY_KEYS.c.study == "2.25.200")
    tamper(db_url, STUDY_KEYS, STUDY_KEYS.c.study == "2.25.100", wrapped=wrapped)
    fresh = reopen(db_url, ring)
    expect("vault-key-tampered", lambda: fresh.open_record("2.25.100", "2.25.101"))
    fresh.close()


def test_wrong_master_key(vault: Vault, db_url: str) -> None:
    expect("wrong-master-key", lambda: Vault.open(db_url, Keyring.create(ProjectKey.generate())))


def test_key_file_without_the_wrapping_key(vault: Vault, db_url: str) -> None:
    other_wrapping = Keyring(PROJECT, (WrappingKey.generate(),))  # same project, e.g. a stale backup
    fresh = reopen(db_url, other_wrapping)
    expect("vault-key-unknown", lambda: fresh.open_record("2.25.100", "2.25.101"))
    fresh.close()


def test_shred_study(vault: Vault, db_url: str, ring: Keyring) -> None:
    assert vault.shred(study="2.25.100") == 1
    expect("vault-key-shredded", lambda: vault.open_record("2.25.100", "2.25.101"))
    fresh = reopen(db_url, ring)
    expect("vault-key-shredded", lambda: fresh.open_record("2.25.100", "2.25.102"))
    expect("vault-key-shredded", lambda: fresh.open_record("2.25.100", "2.25.999"))
    expect("vault-key-shredded", lambda: fresh.lookup("2.25.101"))
    expect("vault-key-shredded", lambda: fresh.seal_records([record("2.25.100", "2.25.104")]))
    assert fresh.open_record("2.25.200", "2.25.201").payload == b"originals of 2.25.201"
    assert fresh.shred(study="2.25.100") == 0
    fresh.close()


def test_shred_patient(vault: Vault, db_url: str, ring: Keyring) -> None:
    vault.seal_records([record("2.25.300", "2.25.301")])  # a second study of PAAA
    assert vault.shred(patient="PAAA") == 2
    fresh = reopen(db_url, ring)
    expect("vault-key-shredded", lambda: fresh.open_record("2.25.300", "2.25.301"))
    expect("vault-key-shredded", lambda: fresh.lookup("PAAA"))
    assert fresh.lookup("PBBB") == "MRN-1"
    fresh.close()


def test_rotate_rewrap_retire(vault: Vault, db_url: str, ring: Keyring) -> None:
    pseudonym = Pseudonymizer(ring.project).uid("1.2.3")
    rotated = ring.rotated(WrappingKey.generate())
    store = reopen(db_url, rotated)
    store.seal_records([record("2.25.400", "2.25.401")])  # new data key under the new current key
    assert store.key_usage() == {ring.current.key_id: 2, rotated.current.key_id: 1}
    assert store.rewrap() == 2
    assert store.rewrap() == 0
    assert store.key_usage() == {rotated.current.key_id: 3}
    store.close()
    retired = rotated.retired(ring.current.key_id)
    fresh = reopen(db_url, retired)
    for study, instance in [("2.25.100", "2.25.101"), ("2.25.200", "2.25.201"), ("2.25.400", "2.25.401")]:
        assert fresh.open_record(study, instance).payload == f"originals of {instance}".encode()
    assert Pseudonymizer(retired.project).uid("1.2.3") == pseudonym
    fresh.close()


def test_retired_key_fails_closed(vault: Vault, db_url: str, ring: Keyring) -> None:
    rotated = ring.rotated(WrappingKey.generate()).retired(ring.current.key_id)
    fresh = reopen(db_url, rotated)
    expect("vault-key-retired", lambda: fresh.open_record("2.25.100", "2.25.101"))
    expect("vault-key-retired", fresh.rewrap)
    fresh.close()


def test_every_action_is_audited(vault: Vault) -> None:
    vault.open_record("2.25.100", "2.25.101")
    vault.lookup("PAAA")
    vault.shred(study="2.25.200")
    events = vault.audit.events()
    assert [e["action"] for e in events] == ["seal", "open-record", "lookup", "shred"]
    assert events[0]["facts"] == {"records": 3, "studies": ["2.25.100", "2.25.200"], "uid_pairs": 7}
    assert "MRN" not in repr(events) and "originals" not in repr(events) and "1.2.840" not in repr(events)
    assert vault.audit.verify() == events[-1]["hash"]


def test_failed_seal_writes_nothing(db_url: str, ring: Keyring, vault: Vault) -> None:
    vault.shred(study="2.25.100")
    before = vault.audit.count()
    expect("vault-key-shredded", lambda: vault.seal_records([record("2.25.500", "2.25.501"),
                                                              record("2.25.100", "2.25.105")]))
    assert vault.audit.count() == before
    expect("vault-record-missing", lambda: vault.open_record("2.25.500", "2.25.501"))


def test_audit_in_its_own_database(tmp_path: Path, db_url: str, ring: Keyring) -> None:
    audit_url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = Vault.open(db_url, ring, audit_url=audit_url)
    store.seal_records([record("2.25.100", "2.25.101")])
    assert store.open_record("2.25.100", "2.25.101").payload == b"originals of 2.25.101"
    store.close()
    log = AuditLog.open(audit_url)
    assert [e["action"] for e in log.events()] == ["seal", "open-record"]
    log.verify()
    log.close()
    engine = sa.create_engine(db_url)
    assert not sa.inspect(engine).has_table("dicomcloak_audit")
    engine.dispose()


def test_sqlite_commits_are_durable(tmp_path: Path) -> None:
    """WAL with synchronous=FULL: a sealed group is on disk before its files are renamed into place."""
    from dicomcloak.audit.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        engine.dispose()

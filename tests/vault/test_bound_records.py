"""Vault records bound to their output (issue 12): opened for it only, one per object, old ones still read.

Real SQLite and real PostgreSQL (``db_url``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from dicomcloak.errors import SealError
from dicomcloak.keys import Keyring, ProjectKey, aead
from dicomcloak.vault import OpenedRecord, Vault, VaultRecord
from dicomcloak.vault.schema import BOUND_RECORDS, RECORDS

PROJECT = ProjectKey.generate()
STUDY, INSTANCE = "2.25.100", "2.25.101"
FIRST, SECOND, OTHER = (hashlib.sha256(name).digest() for name in (b"first", b"second", b"other"))


def bound(payload: bytes, binding: bytes, instance: str = INSTANCE) -> VaultRecord:
    return VaultRecord("PAAA", STUDY, instance, payload, ((instance, "1.2.3"),), binding)


@pytest.fixture
def ring() -> Keyring:
    return Keyring.create(PROJECT)


@pytest.fixture
def vault(db_url: str, ring: Keyring) -> Iterator[Vault]:
    store = Vault.open(db_url, ring)
    yield store
    store.close()


def reference(action: object) -> str:
    assert callable(action)
    with pytest.raises(SealError) as info:
        action()
    return info.value.reference


def test_a_record_opens_for_its_own_output_only(vault: Vault) -> None:
    vault.seal_records([bound(b"originals of the first", FIRST)])
    assert vault.open_record(STUDY, INSTANCE, FIRST) == OpenedRecord(b"originals of the first", True)
    assert reference(lambda: vault.open_record(STUDY, INSTANCE, OTHER)) == "vault-record-mismatch"
    # Without a file to compare with, the only record there is opens, reported unbound.
    assert vault.open_record(STUDY, INSTANCE) == OpenedRecord(b"originals of the first", False)
    assert reference(lambda: vault.open_record(STUDY, "2.25.999", FIRST)) == "vault-record-missing"


def test_two_objects_under_one_instance_keep_a_record_each(vault: Vault, db_url: str, ring: Keyring) -> None:
    vault.seal_records([bound(b"first object", FIRST)])
    vault.seal_records([bound(b"second object", SECOND)])  # a later run, another object, the same UID
    vault.seal_records([bound(b"first object, sealed again", FIRST)])  # re-sealing one replaces it only
    fresh = Vault.open(db_url, ring)
    assert fresh.open_record(STUDY, INSTANCE, FIRST) == OpenedRecord(b"first object, sealed again", True)
    assert fresh.open_record(STUDY, INSTANCE, SECOND) == OpenedRecord(b"second object", True)
    assert reference(lambda: fresh.open_record(STUDY, INSTANCE)) == "vault-record-mismatch"  # which one?
    events = [e for e in fresh.audit.events() if e["action"] == "open-record"]
    assert [e["facts"]["bound"] for e in events] == [True, True]
    fresh.close()


def _swap(db_url: str, a: bytes, b: bytes) -> None:
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        rows = {row.binding: row.sealed for row in conn.execute(sa.select(BOUND_RECORDS))}
        for mine, theirs in ((a, b), (b, a)):
            where = BOUND_RECORDS.c.binding == mine.hex()
            conn.execute(sa.update(BOUND_RECORDS).where(where).values(sealed=rows[theirs.hex()]))
    engine.dispose()


def test_a_record_moved_to_another_objects_row_fails(vault: Vault, db_url: str, ring: Keyring) -> None:
    vault.seal_records([bound(b"first object", FIRST), bound(b"second object", SECOND)])
    _swap(db_url, FIRST, SECOND)
    fresh = Vault.open(db_url, ring)
    assert reference(lambda: fresh.open_record(STUDY, INSTANCE, FIRST)) == "vault-record-tampered"
    assert reference(lambda: fresh.open_record(STUDY, INSTANCE, SECOND)) == "vault-record-tampered"
    fresh.close()


def make_legacy(db_url: str, ring: Keyring, study: str, instance: str) -> None:
    """Turn a bound record into one of the first format (earlier versions'): bound to the instance only."""
    with Vault.open(db_url, ring) as store:
        payload = store.open_record(study, instance).payload
        with store._engine.begin() as conn:
            key = store._key_for(conn, study)
            sealed = aead.seal_blob(key, payload, aead.record_aad(study, instance))
            conn.execute(sa.insert(RECORDS).values(study=study, instance=instance, sealed=sealed))
            where = sa.and_(BOUND_RECORDS.c.study == study, BOUND_RECORDS.c.instance == instance)
            conn.execute(sa.delete(BOUND_RECORDS).where(where))


def test_records_sealed_before_binding_open_unbound(vault: Vault, db_url: str, ring: Keyring) -> None:
    vault.seal_records([bound(b"an old record", FIRST)])
    make_legacy(db_url, ring, STUDY, INSTANCE)
    fresh = Vault.open(db_url, ring)
    assert fresh.open_record(STUDY, INSTANCE, OTHER) == OpenedRecord(b"an old record", False)
    assert fresh.open_record(STUDY, INSTANCE) == OpenedRecord(b"an old record", False)
    # An old blob moved among the bound records fails: the formats have different associated data.
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        sealed = conn.execute(sa.select(RECORDS.c.sealed)).scalar_one()
        conn.execute(sa.insert(BOUND_RECORDS).values(study=STUDY, instance=INSTANCE, binding=SECOND.hex(),
                                                     sealed=sealed))
    engine.dispose()
    assert reference(lambda: fresh.open_record(STUDY, INSTANCE, SECOND)) == "vault-record-tampered"
    fresh.close()


def test_records_without_binding_open_for_any_output_unbound(vault: Vault) -> None:
    vault.seal_records([VaultRecord("PAAA", STUDY, INSTANCE, b"sealed by an API caller")])
    assert vault.open_record(STUDY, INSTANCE, OTHER) == OpenedRecord(b"sealed by an API caller", False)

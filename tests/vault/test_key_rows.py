"""The study-key table's patient column is bound to its key; wrong types fail closed (issue 13, item 2).

Real SQLite and PostgreSQL. Before: an edited ``patient`` made ``vault shred
--patient`` shred nothing and exit 0; a record stored as TEXT or as an
integer made ``reid`` fail as ``internal-error``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest
import sqlalchemy as sa

from dicomcloak.errors import SealError
from dicomcloak.keys import Keyring, ProjectKey, aead, load_keyring
from dicomcloak.vault import Vault, VaultRecord
from dicomcloak.vault.keyrows import LEGACY_WRAPPED_BYTES, unwrap_row
from dicomcloak.vault.schema import BOUND_RECORDS, STUDY_KEYS, UID_MAP

PROJECT = ProjectKey.generate()
RunCli = Callable[..., CompletedProcess[str]]


def _record(study: str, instance: str, patient: str) -> VaultRecord:
    return VaultRecord(patient, study, instance, f"originals of {instance}".encode(), ((instance, "1.2.9"),))


@pytest.fixture
def ring() -> Keyring:
    return Keyring.create(PROJECT)


@pytest.fixture
def vault(db_url: str, ring: Keyring) -> Iterator[Vault]:
    store = Vault.open(db_url, ring)
    store.seal_records([_record("2.25.100", "2.25.101", "PAAA"), _record("2.25.110", "2.25.111", "PAAA"),
                        _record("2.25.200", "2.25.201", "PBBB")])
    yield store
    store.close()


def _sql(db_url: str, statement: str | sa.Executable, **params: object) -> None:
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text(statement) if isinstance(statement, str) else statement, params)
    engine.dispose()


def _expect(reference: str, action: Callable[[], object]) -> SealError:
    with pytest.raises(SealError) as caught:
        action()
    assert caught.value.reference == reference, caught.value
    return caught.value


def _relabel(db_url: str, study: str, patient: str) -> None:
    _sql(db_url, sa.update(STUDY_KEYS).where(STUDY_KEYS.c.study == study).values(patient=patient))


def test_an_edited_patient_column_is_found_and_shredded_and_reported(
    vault: Vault, db_url: str, ring: Keyring
) -> None:
    _relabel(db_url, "2.25.100", "PZZZ")  # hides one of PAAA's studies from shred --patient PAAA
    error = _expect("vault-key-tampered", lambda: vault.shred(patient="PAAA"))
    assert "shredded 2 data keys" in str(error) and "1 rows" in str(error)
    fresh = Vault.open(db_url, ring)
    for study, instance in (("2.25.100", "2.25.101"), ("2.25.110", "2.25.111")):
        _expect("vault-key-shredded", lambda s=study, i=instance: fresh.open_record(s, i))
    assert fresh.open_record("2.25.200", "2.25.201").payload == b"originals of 2.25.201"  # PBBB untouched
    (event,) = [e for e in fresh.audit.events() if e["action"] == "shred"]
    assert (event["facts"]["count"], event["facts"]["tampered"]) == (2, 1)
    fresh.close()


def test_a_study_moved_to_another_patient_is_not_shredded_with_that_patient(
    vault: Vault, db_url: str, ring: Keyring
) -> None:
    _relabel(db_url, "2.25.200", "PAAA")  # PBBB's study made to look like PAAA's
    error = _expect("vault-key-tampered", lambda: vault.shred(patient="PAAA"))
    assert "shredded 2 data keys" in str(error)  # PAAA's own two
    _relabel(db_url, "2.25.200", "PBBB")  # the edit undone: PBBB's key was not destroyed
    fresh = Vault.open(db_url, ring)
    assert fresh.open_record("2.25.200", "2.25.201").payload == b"originals of 2.25.201"
    fresh.close()


def test_an_edited_patient_column_fails_every_use_of_the_key(
    vault: Vault, db_url: str, ring: Keyring
) -> None:
    _relabel(db_url, "2.25.100", "PZZZ")
    fresh = Vault.open(db_url, ring)
    _expect("vault-key-tampered", lambda: fresh.open_record("2.25.100", "2.25.101"))
    _expect("vault-key-tampered", lambda: fresh.seal_records([_record("2.25.100", "2.25.102", "PZZZ")]))
    _expect("vault-key-tampered", lambda: fresh.lookup("2.25.101"))
    fresh.close()


def test_an_edited_study_column_is_detected_by_shred_study(
    vault: Vault, db_url: str, ring: Keyring
) -> None:
    _sql(db_url, sa.update(STUDY_KEYS).where(STUDY_KEYS.c.study == "2.25.110").values(study="2.25.119"))
    _expect("vault-key-tampered", lambda: vault.shred(study="2.25.110"))
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        query = sa.select(STUDY_KEYS.c.wrapped).where(STUDY_KEYS.c.study == "2.25.119")
        wrapped = conn.execute(query).scalar()
    engine.dispose()
    assert wrapped is None  # the key of study 2.25.110, under its edited name, is destroyed


def _make_legacy(db_url: str, ring: Keyring, study: str, patient: str) -> None:
    """Re-wrap a study's key as versions before this one did (study and key id only)."""
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        key_id, wrapped = conn.execute(
            sa.select(STUDY_KEYS.c.key_id, STUDY_KEYS.c.wrapped).where(STUDY_KEYS.c.study == study)
        ).one()
        data_key, _ = unwrap_row(ring, study, patient, key_id, bytes(wrapped))
        secret = ring.by_id(key_id).usable_secret()
        legacy = aead.wrap_key(secret, data_key, aead.wrapped_key_aad(study, key_id))
        conn.execute(sa.update(STUDY_KEYS).where(STUDY_KEYS.c.study == study).values(wrapped=legacy))
    engine.dispose()
    assert len(legacy) == LEGACY_WRAPPED_BYTES


def test_keys_of_earlier_versions_open_and_rewrap_binds_their_patient(
    vault: Vault, db_url: str, ring: Keyring
) -> None:
    _make_legacy(db_url, ring, "2.25.100", "PAAA")
    fresh = Vault.open(db_url, ring)
    assert fresh.legacy_key_rows() == 1
    assert fresh.open_record("2.25.100", "2.25.101").payload == b"originals of 2.25.101"
    assert fresh.rewrap() == 1  # under the current wrapping key already: re-wrapped to bind the patient
    assert fresh.legacy_key_rows() == 0
    fresh.close()
    _relabel(db_url, "2.25.100", "PZZZ")
    fresh = Vault.open(db_url, ring)
    _expect("vault-key-tampered", lambda: fresh.open_record("2.25.100", "2.25.101"))
    fresh.close()


def _retype(db_url: str, table: str, column: str, value: str) -> None:
    """Store ``value`` (SQL) in ``column``, changing the column's type on PostgreSQL (it has strict types)."""
    if db_url.startswith("postgresql"):
        kind = "integer" if value.isdigit() else "text"
        _sql(db_url, f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {kind} USING {value}")
    else:
        _sql(db_url, f"UPDATE {table} SET {column} = {value}")


@pytest.mark.parametrize("value", ["'not a blob'", "12345"], ids=["text", "integer"])
def test_a_record_stored_with_the_wrong_type_fails_closed(
    vault: Vault, db_url: str, ring: Keyring, value: str
) -> None:
    _retype(db_url, BOUND_RECORDS.name, "sealed", value)
    fresh = Vault.open(db_url, ring)
    _expect("vault-record-tampered", lambda: fresh.open_record("2.25.100", "2.25.101"))
    fresh.close()


@pytest.mark.parametrize(
    ("table", "column", "value", "reference"),
    [
        (UID_MAP.name, "sealed", "'text'", "vault-record-tampered"),
        (STUDY_KEYS.name, "wrapped", "'text'", "vault-key-tampered"),
        (STUDY_KEYS.name, "wrapped", "7", "vault-key-tampered"),
        (STUDY_KEYS.name, "patient", "7", "vault-key-tampered"),
        (BOUND_RECORDS.name, "binding", "7", "vault-record-tampered"),  # SQLite: the text '7' (mismatch)
    ],
)
def test_other_values_stored_with_the_wrong_type_fail_closed(
    vault: Vault, db_url: str, ring: Keyring, table: str, column: str, value: str, reference: str
) -> None:
    _retype(db_url, table, column, value)
    if column == "binding" and db_url.startswith("sqlite"):
        reference = "vault-record-mismatch"  # a TEXT column stores the integer as text: another binding
    fresh = Vault.open(db_url, ring)
    if table == UID_MAP.name:
        _expect(reference, lambda: fresh.lookup("2.25.101"))
    else:
        _expect(reference, lambda: fresh.open_record("2.25.100", "2.25.101", b"\x01" * 32))
    fresh.close()


def test_vault_shred_exits_4_on_an_edited_patient(run_cli: RunCli, key_file: Path, db_url: str) -> None:
    with Vault.open(db_url, load_keyring(key_file)) as store:
        store.seal_records([_record("2.25.100", "2.25.101", "PAAA"), _record("2.25.200", "2.25.201", "PBBB")])
    _relabel(db_url, "2.25.100", "PZZZ")
    result = run_cli("vault", "shred", "--vault", db_url, "--patient", "PAAA", "--key", key_file)
    assert result.returncode == 4, result.stderr
    assert result.stderr.startswith("error[vault-key-tampered]: shredded 1 data keys"), result.stderr
    result = run_cli("vault", "shred", "--vault", db_url, "--patient", "PBBB", "--key", key_file, "--json")
    assert result.returncode == 0 and '"shredded": 1' in result.stdout, result.stderr


def test_vault_shred_warns_about_keys_not_bound_to_their_patient(
    run_cli: RunCli, key_file: Path, db_url: str
) -> None:
    ring = load_keyring(key_file)
    with Vault.open(db_url, ring) as store:
        store.seal_records([_record("2.25.100", "2.25.101", "PAAA"), _record("2.25.200", "2.25.201", "PBBB")])
    _make_legacy(db_url, ring, "2.25.200", "PBBB")
    result = run_cli("vault", "shred", "--vault", db_url, "--patient", "PAAA", "--key", key_file)
    assert result.returncode == 0 and "1 data keys were wrapped before" in result.stderr, result.stderr
    assert run_cli("keys", "rewrap", "--vault", db_url, "--key", key_file).returncode == 0
    result = run_cli("vault", "shred", "--vault", db_url, "--patient", "PBBB", "--key", key_file)
    assert result.returncode == 0 and "wrapped before" not in result.stderr, result.stderr


def test_reid_exits_4_on_a_record_stored_as_text(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, db_url: str, tmp_path: Path
) -> None:
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "--vault", db_url)
    assert result.returncode == 0, result.stderr
    _retype(db_url, BOUND_RECORDS.name, "sealed", "'not a blob'")
    back = tmp_path / "back"
    result = run_cli("reid", tmp_path / "out", "--out", back, "--vault", db_url, "--key", key_file)
    assert result.returncode == 4, result.stderr
    assert result.stderr.startswith("error[vault-record-tampered]"), result.stderr
    assert not list(back.rglob("*.dcm"))

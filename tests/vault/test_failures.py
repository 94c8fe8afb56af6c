"""Database failures typed at the vault's edge; a busy vault waited for, a bounded time (issue 13, item 1).

Real SQLite files and a real PostgreSQL server: a lock held by another
connection (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``LOCK TABLE``), a file that
is no longer a database, a dropped table. Every failure is a
:class:`~dicomcloak.errors.VaultDatabaseError` (a ``SealError``: exit 4) with a
distinct reference and a message naming the driver's code, never its text.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dicomcloak.audit.failures import LOCK_SLICE, BusyWait, failure
from dicomcloak.errors import SealError, VaultDatabaseError
from dicomcloak.keys import Keyring, ProjectKey
from dicomcloak.vault import Vault, VaultRecord

WARNING = "warning: the vault database is busy"


def _record(number: int) -> VaultRecord:
    return VaultRecord("PAAA", "2.25.7", f"2.25.7.{number}", b"originals %d" % number)


@contextmanager
def _locked(url: str) -> Iterator[Callable[[], None]]:
    """Hold a lock the vault's writers need, from another connection; yields a function that releases it."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # released by a timer
        conn.execute("BEGIN IMMEDIATE")
        release = lambda: conn.execute("ROLLBACK")  # noqa: E731 - a one-line action
    else:
        conn = _pg_connect(url)
        conn.run("BEGIN")
        conn.run("LOCK TABLE dicomcloak_audit IN ACCESS EXCLUSIVE MODE")  # every sealing transaction audits
        release = lambda: conn.run("ROLLBACK")  # noqa: E731
    released = threading.Event()

    def release_once() -> None:
        if not released.is_set():
            released.set()
            release()

    try:
        yield release_once
    finally:
        release_once()
        conn.close()


def test_a_lock_held_past_the_wait_is_vault_busy(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    ring = Keyring.create(ProjectKey.generate())
    with Vault.open(db_url, ring, wait=3) as vault:
        vault.seal_records([_record(1)])
        with _locked(db_url):
            started = time.monotonic()
            with pytest.raises(VaultDatabaseError) as raised:
                vault.seal_records([_record(2)])
            waited = time.monotonic() - started
        assert raised.value.reference == "vault-busy" and isinstance(raised.value, SealError)
        assert "busy for 3 s" in raised.value.message and "--vault-wait" in raised.value.hint
        assert 3 <= waited <= 3 + LOCK_SLICE + 1  # bounded: the wait, and the last attempt's own wait
        assert capsys.readouterr().err.count(WARNING) == 1
        vault.seal_records([_record(2)])  # the lock is gone: the same vault works again
        assert vault.open_record("2.25.7", "2.25.7.2") is not None


def test_a_lock_released_within_the_wait_is_waited_for(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Held longer than one attempt waits in the database (LOCK_SLICE), shorter than the wait: sealed."""
    ring = Keyring.create(ProjectKey.generate())
    with Vault.open(db_url, ring, wait=60) as vault:
        vault.seal_records([_record(1)])
        with _locked(db_url) as release:
            timer = threading.Timer(LOCK_SLICE + 1.5, release)
            timer.start()
            try:
                vault.seal_records([_record(2), _record(3)])
            finally:
                timer.cancel()
                timer.join()  # the release may still be reading the server's reply
        assert capsys.readouterr().err.count(WARNING) == 1
        assert vault.open_record("2.25.7", "2.25.7.3") is not None
        assert [event["action"] for event in vault.audit.events()].count("seal") == 2  # once, not per attempt


def test_opening_a_locked_vault_waits_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    ring = Keyring.create(ProjectKey.generate())
    Vault.open(url, ring).close()
    with _locked(url), pytest.raises(VaultDatabaseError) as raised:
        Vault.open(url, ring, wait=0)
    assert raised.value.reference == "vault-busy"
    assert WARNING not in capsys.readouterr().err  # no wait, no retry, no warning


def test_a_file_that_is_no_longer_a_database_is_vault_broken(tmp_path: Path) -> None:
    path = tmp_path / "vault.db"
    ring = Keyring.create(ProjectKey.generate())
    with Vault.open(f"sqlite:///{path}", ring) as vault:
        vault.seal_records([_record(1)])
        sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
        with path.open("r+b") as handle:
            handle.write(os.urandom(100))  # the header: what a failing disk or a stray write leaves
        with pytest.raises(VaultDatabaseError) as raised:
            vault.open_record("2.25.7", "2.25.7.1")
    assert raised.value.reference == "vault-broken"
    assert raised.value.message.endswith("(SQLITE_NOTADB)")


def test_a_dropped_table_is_vault_broken(db_url: str) -> None:
    ring = Keyring.create(ProjectKey.generate())
    with Vault.open(db_url, ring) as vault:
        vault.seal_records([_record(1)])
        _drop_uid_map(db_url)
        with pytest.raises(VaultDatabaseError) as raised:
            vault.lookup("2.25.7.1")
    assert raised.value.reference == "vault-broken"
    assert raised.value.message.endswith(("(SQLITE_ERROR)", "(SQLSTATE 42P01)"))


def _drop_uid_map(url: str) -> None:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute("DROP TABLE dicomcloak_uid_map")
        conn.commit()
        conn.close()
        return
    conn = _pg_connect(url)
    conn.run("DROP TABLE dicomcloak_uid_map")
    conn.close()


def _pg_connect(url: str) -> Any:
    """Another connection to the throw-away server's database of ``url`` (pg8000's native API)."""
    import pg8000.native
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    return pg8000.native.Connection("postgres", unix_sock=parsed.query["unix_sock"], database=parsed.database)


@pytest.mark.parametrize(
    ("state", "reference"),
    [
        ("40001", "vault-busy"),  # serialization_failure
        ("40P01", "vault-busy"),  # deadlock_detected
        ("55P03", "vault-busy"),  # lock_not_available (lock_timeout)
        ("57P01", "vault-unreachable"),  # admin_shutdown
        ("08006", "vault-unreachable"),  # connection_failure
        ("53100", "vault-full"),  # disk_full
        ("XX001", "vault-broken"),  # data_corrupted
        ("42P01", "vault-broken"),  # undefined_table
    ],
)
def test_postgresql_states_are_classified_by_code_never_by_message(state: str, reference: str) -> None:
    """pg8000 raises the server's fields (SQLSTATE in ``C``); the message (``M``) may quote a value."""
    import sqlalchemy as sa
    from pg8000.exceptions import DatabaseError

    from dicomcloak.audit.failures import classify

    dialect = sa.create_engine("postgresql+pg8000://user@/db?unix_sock=/nowhere").dialect
    cause = DatabaseError({"S": "ERROR", "C": state, "M": 'value "Smithers^Waylon" is wrong'})
    kind, code = classify(dialect, cause, disconnected=False)
    error = failure(kind, code)
    assert (kind, code) == (reference, f"SQLSTATE {state}")
    assert "Smithers" not in str(error) and error.hint


def test_a_wait_of_zero_raises_the_first_busy_error() -> None:
    calls: list[int] = []

    def busy() -> None:
        calls.append(1)
        raise failure("vault-busy", "SQLITE_BUSY")

    with pytest.raises(VaultDatabaseError):
        BusyWait(0).run(busy)
    assert calls == [1]


def test_other_failures_are_not_retried() -> None:
    calls: list[int] = []

    def full() -> None:
        calls.append(1)
        raise failure("vault-full", "SQLITE_FULL")

    with pytest.raises(VaultDatabaseError) as raised:
        BusyWait(30).run(full)
    assert raised.value.reference == "vault-full" and calls == [1]

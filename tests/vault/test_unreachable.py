"""An unreachable vault or audit database is ``vault-unreachable`` (exit 3) with a hint, never internal-error.

Real PostgreSQL URLs: a TCP port where nothing listens, a unix socket that does
not exist, a server that was started and stopped, and, on a running throw-away
server, a database and a user that do not exist. The URL is never echoed (it
may hold a password).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import TYPE_CHECKING

import pytest

from dicomcloak.audit import AuditLog
from dicomcloak.errors import StoreError
from dicomcloak.keys import Keyring, ProjectKey
from dicomcloak.vault import Vault

if TYPE_CHECKING:
    from dicomcloak.testing.postgres import PostgresServer

RunCli = Callable[..., CompletedProcess[str]]
PASSWORD = "s3cret-pw"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def _refused_port() -> str:
    return f"postgresql+pg8000://dicomcloak:{PASSWORD}@127.0.0.1:{_free_port()}/vault"


def _no_socket(tmp_path: Path) -> str:
    return f"postgresql+pg8000://dicomcloak:{PASSWORD}@/vault?unix_sock={tmp_path / '.s.PGSQL.5432'}"


def _stopped_server() -> str:
    from dicomcloak.testing.postgres import find_binaries, postgres_server

    if find_binaries() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    with postgres_server() as server:
        url = server.create_database()
        Vault.open(url, Keyring.create(ProjectKey.generate())).close()  # it was reachable
    return url  # the server is stopped and its files deleted


def _unreachable(open_store: Callable[[], object]) -> StoreError:
    with pytest.raises(StoreError) as info:
        open_store()
    error = info.value
    assert error.reference == "vault-unreachable" and error.hint
    assert PASSWORD not in str(error)
    return error


@pytest.mark.parametrize("make_url", ["refused-port", "no-socket", "stopped-server"])
def test_a_dead_postgresql_is_vault_unreachable(tmp_path: Path, make_url: str) -> None:
    url = {
        "refused-port": _refused_port,
        "no-socket": lambda: _no_socket(tmp_path),
        "stopped-server": _stopped_server,
    }[make_url]()
    ring = Keyring.create(ProjectKey.generate())
    error = _unreachable(lambda: Vault.open(url, ring))
    assert "no server answered" in error.message
    _unreachable(lambda: AuditLog.open(url))
    _unreachable(lambda: Vault.open(f"sqlite:///{tmp_path / 'v.db'}", ring, audit_url=url))


def test_refused_database_and_user(postgres_server_session: PostgresServer) -> None:
    """The server's reason is named when pg8000 could read it (it sometimes meets the closed socket first)."""
    server = postgres_server_session
    ring = Keyring.create(ProjectKey.generate())
    missing_database = _unreachable(lambda: Vault.open(server.url("no_such_database"), ring))
    assert missing_database.message.endswith(("the database does not exist", "closed the connection"))
    stranger = f"postgresql+pg8000://stranger:{PASSWORD}@/postgres?unix_sock={server.socket}"
    refused_user = _unreachable(lambda: AuditLog.open(stranger)).message
    assert refused_user.endswith(("refused the user (invalid authorization)", "closed the connection"))


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("3D000", "the database does not exist"),
        ("28P01", "refused the password"),
        ("28000", "refused the user"),
    ],
)
def test_the_servers_reason_is_named(code: str, words: str) -> None:
    """pg8000 raises the server's error fields (SQLSTATE in ``C``); the message never carries ``M``."""
    from pg8000.exceptions import DatabaseError

    from dicomcloak.audit.db import _unreachable as unreachable

    cause = DatabaseError({"S": "FATAL", "C": code, "M": 'database "Smithers" does not exist'})
    error = unreachable("postgresql", cause)
    assert words in error.message and "Smithers" not in str(error)


def test_a_sqlite_path_that_is_no_database_file(tmp_path: Path) -> None:
    (tmp_path / "folder.db").mkdir()
    _unreachable(lambda: AuditLog.open(f"sqlite:///{tmp_path / 'folder.db'}"))


def test_the_commands_exit_3_with_the_reference(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    url = _refused_port()
    commands = [
        ("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "-j", "1", "--vault", url),
        ("deid", dicom_tree, "--out", tmp_path / "out2", "--key", key_file, "-j", "2", "--vault", url),
        ("reid", dicom_tree, "--out", tmp_path / "back", "--vault", url, "--key", key_file),
        ("audit", "verify", "--vault", url),
        ("vault", "shred", "--vault", url, "--study", "2.25.1", "--key", key_file),
        ("keys", "rewrap", "--vault", url, "--key", key_file),
    ]
    for command in commands:
        result = run_cli(*command)
        assert result.returncode == 3, (command[:2], result.stderr)
        assert result.stderr.startswith("error[vault-unreachable]: "), result.stderr
        assert PASSWORD not in result.stderr + result.stdout and "internal-error" not in result.stderr
    assert not list((tmp_path / "out").rglob("*.dcm"))

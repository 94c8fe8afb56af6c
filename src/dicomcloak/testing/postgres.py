"""A throw-away PostgreSQL server from the installed binaries, for tests and benchmarks.

``initdb`` and ``pg_ctl`` are taken from PATH or ``/usr/lib/postgresql/*/bin``
(Debian's ``postgresql`` package). The server listens on a unix socket in a
private temporary directory only (no TCP port, so parallel test workers never
collide), trusts local connections, runs with ``fsync=off`` (a throw-away
server needs no durability) and is stopped and deleted afterwards. As root,
PostgreSQL refuses to run, so the binaries run as the ``postgres`` user
(``runuser``).

Use :func:`postgres_server` as a context manager, or the pytest fixtures
``postgres_server_session`` / ``postgres_url`` registered by ``tests/conftest.py``.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "find_binaries", "postgres_server", "start_again", "stop_now"]

_PORT = 5432  # only names the socket file: TCP is off
_counter = itertools.count(1)


def find_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None if PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


@dataclass(frozen=True)
class PostgresServer:
    """A running server: its socket directory and an admin URL maker."""

    root: Path
    bin_dir: Path
    run_as: str | None

    @property
    def socket(self) -> Path:
        """The unix socket file (pg8000 connects to it with ``unix_sock``)."""
        return self.root / f".s.PGSQL.{_PORT}"

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql+pg8000`` URL for ``database`` over the unix socket."""
        return f"postgresql+pg8000://postgres@/{database}?unix_sock={self.socket}"

    def create_database(self, prefix: str = "t") -> str:
        """Create a fresh, empty database and return its URL."""
        import pg8000.native

        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        conn = pg8000.native.Connection("postgres", unix_sock=str(self.socket), database="postgres")
        try:
            conn.run(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)


def _run(server: PostgresServer, *args: str) -> None:
    command = [str(server.bin_dir / args[0]), *args[1:]]
    if server.run_as:
        command = ["runuser", "-u", server.run_as, "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throw-away server; stop it and delete its files on exit."""
    bin_dir = find_binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl) not found")
    root = Path(tempfile.mkdtemp(prefix="dicomcloak-pg-"))
    run_as = "postgres" if os.geteuid() == 0 else None
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(root, bin_dir, run_as)
    try:
        _start(server)
        yield server
    finally:
        _stop(server)
        shutil.rmtree(root, ignore_errors=True)


def stop_now(server: PostgresServer) -> None:
    """Stop a running server at once (``pg_ctl -m immediate``, as a crash would); its files stay."""
    _stop(server)


def start_again(server: PostgresServer) -> None:
    """Start a server stopped by :func:`stop_now` on its files (committed transactions are recovered)."""
    _launch(server)


def _start(server: PostgresServer) -> None:
    data = server.root / "data"
    _run(server, "initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
         "--no-locale", "--no-sync")
    _launch(server)


def _launch(server: PostgresServer) -> None:
    data = server.root / "data"
    options = f"-k {server.root} -c listen_addresses= -p {_PORT} -F"
    _run(server, "pg_ctl", "-D", str(data), "-o", options, "-l", str(server.root / "log"), "-w", "start")


def _stop(server: PostgresServer) -> None:
    data = server.root / "data"
    if (data / "postmaster.pid").exists():
        _run(server, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")

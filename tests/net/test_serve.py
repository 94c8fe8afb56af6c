"""``dicomcloak serve`` as a process (ready line, JSON logs, graceful stop), ``gateway passwd``, status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset

from dicomcloak.cli.gateway import health, render_status
from dicomcloak.net.identity import UsersFile
from dicomcloak.testing.dimse import associate, request_only
from dicomcloak.testing.gatewayconf import gateway_table

PATIENT_NAME = "Smithers^Waylon"
PATIENT_ID = "MRN-4471-XQ"

#: serve.run with the directory sink standing in for the gateway (net.gateway is merged separately).
SERVER = textwrap.dedent(
    """
    import sys, time
    from ipaddress import ip_network
    from pathlib import Path
    from dicomcloak.net.config import Caller, GatewayConfig, Limits, Listener
    from dicomcloak.net.serve import run
    from dicomcloak.testing.dimse import DirectorySink

    class Gateway(DirectorySink):
        def start(self): self.audit("gateway-started")
        def stop(self, timeout): print("gateway-stopped", self.stored, file=sys.stderr, flush=True)
        def status(self): return {"routes": {"out": {"forwarded": self.stored}}}
        def store(self, route, encoded, caller):
            time.sleep(float(sys.argv[2]))
            return super().store(route, encoded, caller)

    root = Path(sys.argv[1])
    listener = Listener(name="in", ae_title="DICOMCLOAK", port=0, route="out",
                        allow=(Caller("SENDER", ip_network("127.0.0.1/32")),))
    config = GatewayConfig(spool=root, quarantine=root, audit="sqlite://", listeners=(listener,), routes={},
                           limits=Limits(dimse_timeout=10))
    sys.exit(run(config, None, gateway_factory=lambda config, key: Gateway(root / "received")))
    """
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A running ``serve.run`` process (its store takes 0.5 s) and its listener's port."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp_path), "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["event"] == "ready"
        yield process, int(ready["ports"]["in"])
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_sigterm_lets_the_store_in_flight_finish(
    server: tuple[subprocess.Popen[str], int], tmp_path: Path, ct: Dataset
) -> None:
    process, port = server
    assoc = associate(port, timeout=10)
    statuses: list[int] = []
    sender = threading.Thread(target=lambda: statuses.append(int(assoc.send_c_store(ct).Status)))
    sender.start()
    time.sleep(0.2)  # the C-STORE is in the sink now
    process.send_signal(signal.SIGTERM)
    sender.join(10)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0
    assert statuses == [0x0000]
    assert len(list((tmp_path / "received" / "out").glob("*.dcm"))) == 1
    lines = [line for line in stderr.splitlines() if line.startswith("{")]
    events = [json.loads(line)["event"] for line in lines]
    assert {"listener-started", "association-accepted", "c-store", "signal", "stopping", "stopped"} <= set(
        events
    )
    assert "gateway-stopped 1" in stderr
    assert PATIENT_NAME not in stderr and PATIENT_ID not in stderr
    with pytest.raises(ConnectionRefusedError):
        request_only(port)


def test_sigint_stops_an_idle_gateway(server: tuple[subprocess.Popen[str], int]) -> None:
    process, port = server
    assert request_only(port, calling="INTRUDER")[0] == 0x03
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0
    rejected = [json.loads(line) for line in stderr.splitlines() if '"association-rejected"' in line]
    assert rejected[0]["reason"] == "calling-ae-not-allowed" and rejected[0]["calling_ae"] == "INTRUDER"


def test_passwd_reads_stdin_and_replaces(tmp_path: Path) -> None:
    users = tmp_path / "users"
    first = subprocess.run(
        [*_cli(), "gateway", "passwd", str(users), "alice"],
        input="first secret\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    assert "first secret" not in users.read_text()
    assert (users.stat().st_mode & 0o777) == 0o600
    for name, passcode in (("bob", "bobs secret\n"), ("alice", "second secret\n")):
        done = subprocess.run(
            [*_cli(), "gateway", "passwd", str(users), name],
            input=passcode,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in users.read_text().splitlines()] == ["bob", "alice"]
    table = UsersFile(users)
    assert table.verify(b"alice", b"second secret").ok
    assert not table.verify(b"alice", b"first secret").ok
    assert table.verify(b"bob", b"bobs secret").ok


@pytest.mark.parametrize(
    ("name", "passcode", "reference"), [("alice", "\n", "passcode-empty"), ("a:b", "x\n", "username-invalid")]
)
def test_passwd_refuses(tmp_path: Path, name: str, passcode: str, reference: str) -> None:
    done = subprocess.run(
        [*_cli(), "gateway", "passwd", str(tmp_path / "users"), name],
        input=passcode,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert reference in done.stderr
    assert not (tmp_path / "users").exists()


def test_status_health_and_table(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    assert health(path) == (None, False, None)
    report = {"routes": {"out": {"queued": 3, "forwarded": 10, "failed": 1, "quarantined": 2}}}
    path.write_text(json.dumps(report))
    read, up, age = health(path)
    assert (read, up) == (report, True) and age is not None
    table = render_status(read, up, age)
    assert "gateway up" in table
    assert table.splitlines()[-1].split() == ["out", "3", "10", "1", "2"]
    old = time.time() - 60
    os.utime(path, (old, old))
    assert health(path)[1] is False
    assert "DOWN" in render_status(*health(path))


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("dicomcloak")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dicomcloak.cli.app"]


def _checked_config(root: Path, key: Path, route: str) -> Path:
    path = root / "gateway.toml"
    path.write_text(gateway_table(key) + textwrap.dedent("""
        [[listener]]
        ae_title = "DICOMCLOAK"
        port = 11112
        route = "out"
        allow = [{ ae_title = "*", address = "127.0.0.1" }]
        """) + textwrap.dedent(route))
    return path


def test_check_reads_every_route_key_and_certificate_without_listening(
    tmp_path: Path, key_file: Path, run_cli: Any
) -> None:
    """``serve --check``: a good configuration is OK (nothing made); a garbage owner key exits 3, named."""
    good = _checked_config(tmp_path, key_file, """
        [[route]]
        name = "out"
        direction = "deidentify"
        pixels = "off"
        vault = "var/vault.db"
        destination = { ae_title = "ARCHIVE", host = "127.0.0.1", port = 11113 }
        """)
    done = run_cli("serve", "--config", good, "--check")
    assert (done.returncode, done.stdout.strip()) == (0, "OK"), done.stderr
    assert not (tmp_path / "var" / "vault.db").exists() and not (tmp_path / "var" / "spool").exists()
    (tmp_path / "owner.key.pem").write_text("not a key")
    (tmp_path / "owner.cert.pem").write_text("not a certificate")
    bad = _checked_config(tmp_path, key_file, """
        [[route]]
        name = "out"
        direction = "reidentify"
        owner_key = "owner.key.pem"
        destination = { ae_title = "PACS", host = "127.0.0.1", port = 11113 }
        """)
    done = run_cli("serve", "--config", bad, "--check")
    assert done.returncode == 3 and "OK" not in done.stdout
    assert "error[" in done.stderr and "not a key" not in done.stderr

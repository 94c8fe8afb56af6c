"""Real DICOM peers for the gateway's tests and benchmark: dcmtk's ``storescp`` and Orthanc, on free ports.

Each is started as a child process on loopback and stopped when its context
ends; nothing is mocked (docs/gateway.md, "Tests"). Orthanc gets a private
configuration in a temporary directory (no remote access, no authentication,
its HTTP API used only to count what it stored).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Orthanc", "StoreSCP", "free_port", "orthanc", "orthanc_binary", "storescp", "wait_port"]

_ORTHANC_PATHS = ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")


def free_port() -> int:
    """A TCP port nothing listens on now (bind to port 0, read it, close)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, process: subprocess.Popen[Any] | None = None) -> None:
    """Wait until something accepts connections on ``port`` (or ``process`` ended: RuntimeError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the peer exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@dataclass
class StoreSCP:
    """A running ``storescp``: where it writes, its AE title and port."""

    directory: Path
    ae_title: str
    port: int
    process: subprocess.Popen[bytes]

    def files(self) -> list[Path]:
        """Every file it stored so far (sorted)."""
        return sorted(path for path in self.directory.iterdir() if path.is_file())


@contextmanager
def storescp(
    directory: Path, ae_title: str = "ARCHIVE", port: int = 0, *, unique: bool = True
) -> Iterator[StoreSCP]:
    """dcmtk's ``storescp`` writing every received instance under ``directory``.

    ``unique``: a file per C-STORE (``+uf``), so an instance delivered twice shows as two files.
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = ["storescp", "--aetitle", ae_title, "--output-directory", str(directory), str(port)]
    if unique:
        args.insert(1, "+uf")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, process=process)
        yield StoreSCP(directory, ae_title, port, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def orthanc_binary() -> str | None:
    """The Orthanc server (Debian ``orthanc``), or None."""
    return shutil.which("Orthanc") or next((p for p in _ORTHANC_PATHS if Path(p).exists()), None)


@dataclass
class Orthanc:
    """A running Orthanc: its AE title, DICOM and HTTP ports."""

    ae_title: str
    port: int
    http_port: int
    process: subprocess.Popen[bytes]

    def get(self, path: str) -> Any:
        """GET on its REST API, decoded from JSON."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=30) as answer:
            return json.loads(answer.read())

    def post(self, path: str, body: bytes) -> Any:
        """POST on its REST API, decoded from JSON."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())


@contextmanager
def orthanc(
    directory: Path, ae_title: str = "ORTHANC", modalities: dict[str, tuple[str, str, int]] | None = None
) -> Iterator[Orthanc]:
    """Orthanc with its storage and index under ``directory``; ``modalities``: name -> (AE, host, port)."""
    binary = orthanc_binary()
    if binary is None:
        raise RuntimeError("Orthanc is not installed (Debian package orthanc)")
    directory.mkdir(parents=True, exist_ok=True)
    port, http_port = free_port(), free_port()
    config = {
        "Name": "dicomcloak-test",
        "StorageDirectory": str(directory / "storage"),
        "IndexDirectory": str(directory / "index"),
        "DicomAet": ae_title,
        "DicomPort": port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
        "DicomModalities": {name: list(peer) for name, peer in (modalities or {}).items()},
        "Plugins": [],
        "HttpDescribeErrors": True,
    }
    path = directory / "orthanc.json"
    path.write_text(json.dumps(config))
    log = (directory / "orthanc.log").open("wb")
    process = subprocess.Popen([binary, str(path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(http_port, 60, process)
        wait_port(port, 60, process)
        yield Orthanc(ae_title, port, http_port, process)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()

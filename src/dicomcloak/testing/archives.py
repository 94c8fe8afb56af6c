"""Real DICOM archives for the gateway's tests: dcmtk's ``storescp`` and Orthanc, on free localhost ports.

Each is a context manager that starts the server, waits until it accepts
connections (Orthanc: until its REST API answers), and stops it on leaving,
also after a failure. Nothing is downloaded: both are system packages.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OrthancServer", "Storescp", "free_port", "orthanc", "storescp", "wait_for_port"]

ORTHANC = "/usr/sbin/Orthanc"
#: dcmtk's storescp (pynetdicom installs a ``storescp`` of its own in the environment's bin/, first on PATH).
STORESCP = "/usr/bin/storescp"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now (bound to port 0, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port}") from None
            time.sleep(0.02)


@dataclass(frozen=True)
class Storescp:
    """A running ``storescp``: its AE title, port and the directory it stores into."""

    ae_title: str
    port: int
    directory: Path

    def files(self) -> list[Path]:
        """The instances received so far."""
        return sorted(path for path in self.directory.rglob("*") if path.is_file())


@contextmanager
def storescp(directory: Path, port: int | None = None, ae_title: str = "ARCHIVE") -> Iterator[Storescp]:
    """Run dcmtk's ``storescp`` accepting every transfer syntax (``+xa``), storing in ``directory``."""
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    command = [STORESCP, "--output-directory", str(directory), "-aet", ae_title, "+xa", "+uf", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield Storescp(ae_title, port, directory)
    finally:
        _stop(process, 5)


@dataclass(frozen=True)
class OrthancServer:
    """A running Orthanc: its DICOM AE title and port, and its REST API's base URL."""

    ae_title: str
    port: int
    url: str

    def get(self, path: str) -> object:
        """GET ``path`` of the REST API, decoded from JSON."""
        with urllib.request.urlopen(self.url + path, timeout=5) as answer:
            return json.loads(answer.read())

    def post(self, path: str, body: bytes) -> object:
        """POST ``body`` to ``path`` of the REST API, decoded from JSON."""
        request = urllib.request.Request(self.url + path, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def instances(self) -> list[str]:
        """The ids of the instances Orthanc holds."""
        found = self.get("/instances")
        assert isinstance(found, list)
        return [str(item) for item in found]

    def file(self, instance: str) -> bytes:
        """The stored DICOM file of an instance."""
        with urllib.request.urlopen(f"{self.url}/instances/{instance}/file", timeout=5) as answer:
            return bytes(answer.read())


@contextmanager
def orthanc(directory: Path, ae_title: str = "ORTHANC") -> Iterator[OrthancServer]:
    """Run Orthanc with its storage in ``directory``, DICOM and HTTP on free ports, no remote access."""
    directory.mkdir(parents=True, exist_ok=True)
    dicom_port, http_port = free_port(), free_port()
    config = {
        "Name": "dicomcloak-test",
        "DicomAet": ae_title,
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "StorageDirectory": str(directory / "storage"),
        "IndexDirectory": str(directory / "index"),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "UnknownSopClassAccepted": True,
        # Any caller may query and retrieve (C-GET): the gateway calls with its own AE title.
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "Plugins": [],
    }
    path = directory / "orthanc.json"
    path.write_text(json.dumps(config))
    log = (directory / "orthanc.log").open("wb")
    process = subprocess.Popen([ORTHANC, str(path)], stdout=log, stderr=subprocess.STDOUT)
    server = OrthancServer(ae_title, dicom_port, f"http://127.0.0.1:{http_port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                server.get("/system")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Orthanc did not start (see orthanc.log)") from None
                time.sleep(0.1)
        wait_for_port(dicom_port)
        yield server
    finally:
        _stop(process, 10)
        log.close()


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

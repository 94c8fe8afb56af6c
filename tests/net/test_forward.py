"""The forwarder (net/forward.py) against a real pynetdicom storage SCP answering chosen statuses."""

from __future__ import annotations

import gc
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import CTImageStorage, MRImageStorage

from dicomcloak.audit import AuditLog
from dicomcloak.net.config import Forwarding, Limits, Peer
from dicomcloak.net.events import GatewayAudit
from dicomcloak.net.forward import MAX_ATTEMPTS, Forwarder
from dicomcloak.net.spool import RouteSpool
from dicomcloak.net.status import RouteCounters
from dicomcloak.testing.archives import free_port

LIMITS = Limits(acse_timeout=5, dimse_timeout=5, network_timeout=5)


class Archive:
    """A pynetdicom storage SCP that answers the statuses queued in ``answers`` (then success)."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.received: list[tuple[int, str]] = []  # (association id, SOP Class UID)
        self.lock = threading.Lock()
        self.port = free_port()
        ae = AE(ae_title="ARCHIVE")
        for sop in (CTImageStorage, MRImageStorage):
            ae.add_supported_context(sop, ALL_TRANSFER_SYNTAXES)
        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self.handle)]
        )

    def handle(self, event: evt.Event) -> int:
        with self.lock:
            status = self.answers.pop(0) if self.answers else 0x0000
            if status in (0x0000, 0xB000):
                self.received.append((id(event.assoc), str(event.request.AffectedSOPClassUID)))
            return status


@pytest.fixture
def archive_factory() -> Iterator[Callable[[list[int]], Archive]]:
    archives: list[Archive] = []

    def make(answers: list[int]) -> Archive:
        archives.append(Archive(answers))
        return archives[-1]

    yield make
    for archive in archives:
        archive.server.shutdown()


@pytest.fixture
def spool(tmp_path: Path) -> RouteSpool:
    route = RouteSpool(tmp_path / "spool", "out")
    route.prepare()
    return route


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[GatewayAudit]:
    log = GatewayAudit(f"sqlite:///{tmp_path / 'audit.db'}", interval=0.01)
    yield log
    log.close()


def spooled(spool: RouteSpool, *names: str) -> list[Path]:
    """Copy pydicom's test files into the outbound queue, as the gateway would have written them."""
    paths = []
    for index, name in enumerate(names):
        target = spool.outbound / "p" / f"{index}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(get_testdata_file(name), target)
        spool.added(target.stat().st_size)
        paths.append(target)
    return paths


def forwarder(spool: RouteSpool, audit: GatewayAudit, port: int, **forwarding: float) -> Forwarder:
    counters = RouteCounters()
    settings = Forwarding(**{"retry_initial": 0.05, "retry_max": 0.1, **forwarding})  # type: ignore[arg-type]
    return Forwarder(
        "out", Peer("ARCHIVE", "127.0.0.1", port), spool, counters, audit,
        calling_ae="DICOMCLOAK", forwarding=settings, limits=LIMITS,
    )


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def test_two_sop_classes_and_syntaxes_go_in_one_association(
    spool: RouteSpool, audit: GatewayAudit, archive_factory: Callable[[list[int]], Archive]
) -> None:
    archive = archive_factory([0xB000])  # a warning is a delivery (PS3.4 B.2.3)
    spooled(spool, "CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm")
    sender = forwarder(spool, audit, archive.port)
    sender.start()
    try:
        wait_until(lambda: spool.usage().files == 0)
    finally:
        sender.stop(5)
    assert len(archive.received) == 3 and len({assoc for assoc, _ in archive.received}) == 1
    assert {sop for _, sop in archive.received} == {CTImageStorage, MRImageStorage}
    assert not spool.pending()


def test_an_error_status_is_retried_then_the_file_is_set_aside(
    tmp_path: Path, spool: RouteSpool, audit: GatewayAudit, archive_factory: Callable[[list[int]], Archive]
) -> None:
    archive = archive_factory([0xC000] * MAX_ATTEMPTS)
    (path,) = spooled(spool, "CT_small.dcm")
    sender = forwarder(spool, audit, archive.port)
    sender.start()
    try:
        wait_until(lambda: (spool.failed / path.name).exists())
    finally:
        sender.stop(5)
    assert not path.exists() and spool.usage().files == 0 and archive.received == []
    audit.flush()
    failed = [e for e in audit.log.events() if e["action"] == "forward-failed"]
    assert [e["facts"]["status"] for e in failed] == ["status-0xC000"]


def test_a_refusal_keeps_the_file_and_backs_off_until_accepted(
    spool: RouteSpool, audit: GatewayAudit, archive_factory: Callable[[list[int]], Archive]
) -> None:
    archive = archive_factory([0xA700, 0xA700, 0xA700, 0xA700])  # more refusals than error attempts
    (path,) = spooled(spool, "CT_small.dcm")
    sender = forwarder(spool, audit, archive.port)
    sender.start()
    try:
        wait_until(lambda: not path.exists())
    finally:
        sender.stop(5)
    assert len(archive.received) == 1 and not archive.answers
    assert not list(spool.failed.iterdir())


def test_a_store_wakes_the_forwarder_at_once(
    spool: RouteSpool, audit: GatewayAudit, archive_factory: Callable[[list[int]], Archive]
) -> None:
    archive = archive_factory([])
    sender = forwarder(spool, audit, archive.port, retry_initial=60, retry_max=60)
    sender.start()
    try:
        time.sleep(0.2)  # asleep on an empty spool
        spooled(spool, "CT_small.dcm")
        started = time.monotonic()
        sender.wake()
        wait_until(lambda: spool.usage().files == 0, timeout=5)
        assert time.monotonic() - started < 2
    finally:
        sender.stop(5)
    assert len(archive.received) == 1
    log = AuditLog.open(f"sqlite:///{spool.base.parent.parent / 'audit.db'}")
    try:
        audit.flush()
        forwards = [e["facts"] for e in log.events() if e["action"] == "forward"]
    finally:
        log.close()
    assert forwards == [{"route": "out", "count": 1, "destination": "ARCHIVE"}]


def _tls_files(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed server certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([loopback]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.cert.pem", directory / f"{name}.key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_to_a_trusted_destination_delivers_and_to_an_untrusted_one_keeps_the_file(
    tmp_path: Path, spool: RouteSpool, audit: GatewayAudit
) -> None:
    import ssl

    from dicomcloak.net.config import ClientTls

    server_cert, server_key = _tls_files(tmp_path, "archive")
    stranger_cert, _ = _tls_files(tmp_path, "stranger")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_cert, server_key)
    port = free_port()
    received: list[str] = []
    ae = AE(ae_title="ARCHIVE")
    ae.add_supported_context(CTImageStorage, ALL_TRANSFER_SYNTAXES)

    def handle(event: evt.Event) -> int:
        received.append(str(event.request.AffectedSOPClassUID))
        return 0x0000

    server = ae.start_server(
        ("127.0.0.1", port), block=False, ssl_context=context, evt_handlers=[(evt.EVT_C_STORE, handle)]
    )
    try:
        (path,) = spooled(spool, "CT_small.dcm")
        for ca, delivered in ((stranger_cert, False), (server_cert, True)):
            counters = RouteCounters()
            sender = Forwarder(
                "out", Peer("ARCHIVE", "127.0.0.1", port, ClientTls(ca)), spool, counters, audit,
                calling_ae="DICOMCLOAK", forwarding=Forwarding(retry_initial=0.05, retry_max=0.1),
                limits=LIMITS,
            )
            sender.start()
            try:
                if delivered:
                    wait_until(lambda: not path.exists())
                else:
                    wait_until(lambda c=counters: c.last_error != "")
                    assert path.exists() and counters.destination_up is False
            finally:
                sender.stop(5)
            # pynetdicom leaves the socket of a failed TLS handshake to the collector: collect it now.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()
    finally:
        server.shutdown()
    assert received == [CTImageStorage]

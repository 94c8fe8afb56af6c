"""The gateway's core with real peers: routes, durable spool, forwarding, idempotence, audit, status.

Instances go into :meth:`Gateway.store` as the listener hands them over (the
Part 10 bytes), and come out at a real dcmtk ``storescp`` or Orthanc.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicomcloak.audit import AuditLog
from dicomcloak.errors import ConfigError
from dicomcloak.keys import load_key_file
from dicomcloak.net.config import DeidRoute, Forwarding, GatewayConfig, Limits, Peer, ReidRoute, Route
from dicomcloak.net.gateway import Gateway
from dicomcloak.net.sink import OUT_OF_RESOURCES, PROCESSING_FAILURE, REFUSED_QUARANTINED, SUCCESS
from dicomcloak.net.spool import RouteSpool
from dicomcloak.testing.archives import free_port, orthanc, storescp

PATIENT_NAME = "Smithers^Waylon"
PATIENT_ID = "MRN-4471-XQ"
FAST = Forwarding(retry_initial=0.05, retry_max=0.2, per_association=50)
LIMITS = Limits(workers=2, acse_timeout=5, dimse_timeout=5, network_timeout=5)


def instance(index: int, *, study: str = "", sop: str = "", number: int = 0) -> bytes:
    """A small CT with planted PHI, as a sender would send it (Part 10 bytes)."""
    ds = dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.StudyInstanceUID = study or generate_uid(entropy_srcs=["study", str(index // 4)])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series", str(index // 2)])
    ds.SOPInstanceUID = sop or generate_uid(entropy_srcs=["sop", str(index)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = number or index + 1
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


@pytest.fixture
def make_gateway(tmp_path: Path, key_file: Path) -> Iterator[Callable[..., Gateway]]:
    """Start gateways on ``tmp_path``'s spool; every one still running is stopped at the end."""
    running: list[Gateway] = []

    def make(*routes: Route, limits: Limits = LIMITS, start: bool = True) -> Gateway:
        config = GatewayConfig(
            spool=tmp_path / "spool", quarantine=tmp_path / "quarantine",
            audit=f"sqlite:///{tmp_path / 'audit.db'}", listeners=(),
            routes={route.name: route for route in routes}, key_file=key_file, limits=limits, forward=FAST,
        )
        gateway = Gateway(config, load_key_file(key_file))
        if start:
            gateway.start()
            running.append(gateway)
        return gateway

    yield make
    for gateway in running:
        if gateway.audit_log is not None:
            gateway.stop(timeout=5)


def deid(port: int, **fields: Any) -> DeidRoute:
    return DeidRoute("out", Peer("ARCHIVE", "127.0.0.1", port), **fields)


def test_a_study_arrives_deidentified_and_consistent(
    tmp_path: Path, make_gateway: Callable[..., Gateway]
) -> None:
    originals = [instance(i, study="1.2.826.0.1.3680043.99.1") for i in range(4)]
    with storescp(tmp_path / "archive") as archive:
        gateway = make_gateway(deid(archive.port))
        answers = [gateway.store("out", data, "SENDER") for data in originals]
        assert all(answer.status == SUCCESS for answer in answers)
        wait_until(lambda: len(archive.files()) == 4)
    received = [path.read_bytes() for path in archive.files()]
    for original in originals:
        ds = dcmread(BytesIO(original))
        for value in (PATIENT_NAME, PATIENT_ID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
            assert all(value.encode() not in data for data in received)
    studies = {dcmread(path).StudyInstanceUID for path in archive.files()}
    assert len(studies) == 1
    wait_until(lambda: gateway.status()["routes"]["out"]["forwarded"] == 4)  # storescp wrote before answering
    status = gateway.status()["routes"]["out"]
    assert status["forwarded"] == 4 and status["queued"] == 0 and status["destination_up"] is True


def test_vault_sealed_then_reidentified_restores_every_element(
    tmp_path: Path, make_gateway: Callable[..., Gateway]
) -> None:
    vault = f"sqlite:///{tmp_path / 'vault.db'}"
    originals = [instance(i) for i in range(3)]
    with storescp(tmp_path / "offsite") as offsite, storescp(tmp_path / "hospital", ae_title="PACS") as pacs:
        out = deid(offsite.port, vault=vault)
        back = ReidRoute("back", Peer("PACS", "127.0.0.1", pacs.port), vault=vault)
        gateway = make_gateway(out, back)
        assert all(gateway.store("out", data, "SENDER").status == SUCCESS for data in originals)
        wait_until(lambda: len(offsite.files()) == 3)
        for path in offsite.files():
            assert gateway.store("back", path.read_bytes(), "ARCHIVE").status == SUCCESS
        wait_until(lambda: len(pacs.files()) == 3)
        restored = {dcmread(path).SOPInstanceUID: dcmread(path) for path in pacs.files()}
        wait_until(lambda: gateway.status()["routes"]["back"]["forwarded"] == 3)
        names = sorted(path.name for path in (tmp_path / "spool" / "back" / "outbound").glob("*.dcm"))
        assert names == []  # delivered and removed
        # Something that was never de-identified by us cannot be restored: fail closed.
        stranger = gateway.store("back", instance(99), "ARCHIVE")
        assert stranger.status == PROCESSING_FAILURE
    for data in originals:
        original = dcmread(BytesIO(data))
        back_again = restored[original.SOPInstanceUID]
        for element in original:
            if element.tag.group == 0xFFFC:  # Data Set Trailing Padding: not content (PS3.10 7.2), dropped
                continue
            assert back_again[element.tag].value == element.value, element.tag


def test_an_instance_reidentified_twice_before_it_leaves_is_queued_and_sent_once(
    tmp_path: Path, make_gateway: Callable[..., Gateway]
) -> None:
    """A re-identifying route's spool file is named after the restored UID: a second copy replaces it."""
    vault = f"sqlite:///{tmp_path / 'vault.db'}"
    port = free_port()
    with storescp(tmp_path / "offsite") as offsite:
        back = ReidRoute("back", Peer("PACS", "127.0.0.1", port), vault=vault)
        gateway = make_gateway(deid(offsite.port, vault=vault), back)
        assert gateway.store("out", instance(0), "SENDER").status == SUCCESS
        wait_until(lambda: len(offsite.files()) == 1)
        sealed = offsite.files()[0].read_bytes()
    for _ in range(3):  # the destination is down: it waits
        assert gateway.store("back", sealed, "ARCHIVE").status == SUCCESS
    assert gateway.status()["routes"]["back"]["queued"] == 1
    with storescp(tmp_path / "hospital", port=port, ae_title="PACS") as pacs:
        wait_until(lambda: gateway.status()["routes"]["back"]["queued"] == 0)
        wait_until(lambda: len(pacs.files()) == 1)
        time.sleep(0.3)
        assert len(pacs.files()) == 1


def test_destination_down_queues_then_delivers_and_a_restart_picks_the_spool_up(
    tmp_path: Path, make_gateway: Callable[..., Gateway]
) -> None:
    port = free_port()
    gateway = make_gateway(deid(port))
    for index in range(3):
        assert gateway.store("out", instance(index), "SENDER").status == SUCCESS
    wait_until(lambda: gateway.status()["routes"]["out"]["destination_up"] is False)
    status = gateway.status()["routes"]["out"]
    assert status["queued"] == 3 and status["queued_bytes"] > 0
    assert status["last_error"] == "association-failed"
    gateway.stop(timeout=5)
    saved = json.loads((tmp_path / "spool" / "status.json").read_text())
    assert saved["routes"]["out"]["queued"] == 3
    with storescp(tmp_path / "archive", port=port) as archive:
        again = make_gateway(deid(port))
        assert again.status()["routes"]["out"]["queued"] == 3
        assert again.store("out", instance(3), "SENDER").status == SUCCESS
        wait_until(lambda: len(archive.files()) == 4)
        wait_until(lambda: again.status()["routes"]["out"]["forwarded"] == 4)
        again.stop(timeout=5)
    carried = json.loads((tmp_path / "spool" / "status.json").read_text())["routes"]["out"]
    assert carried["forwarded"] == 4 and carried["queued"] == 0


def test_identical_resend_is_one_delivery_and_other_content_is_a_uid_conflict_across_a_restart(
    tmp_path: Path, make_gateway: Callable[..., Gateway]
) -> None:
    study, sop = "1.2.826.0.1.3680043.99.7", "1.2.826.0.1.3680043.99.7.1"
    first = instance(0, study=study, sop=sop, number=1)
    with storescp(tmp_path / "archive") as archive:
        gateway = make_gateway(deid(archive.port))
        assert gateway.store("out", first, "SENDER").status == SUCCESS
        again = gateway.store("out", first, "SENDER")
        assert again.status == SUCCESS and again.reason == "duplicate-instance"
        wait_until(lambda: gateway.status()["routes"]["out"]["forwarded"] == 1)
        gateway.stop(timeout=5)
        restarted = make_gateway(deid(archive.port))
        # After the restart the first input is gone: its digest in the claim decides.
        assert restarted.store("out", first, "SENDER").reason == "duplicate-instance"
        other = restarted.store("out", instance(0, study=study, sop=sop, number=2), "SENDER")
        assert (other.status, other.reason) == (REFUSED_QUARANTINED, "uid-conflict")
        time.sleep(0.3)
        assert len(archive.files()) == 1
        status = restarted.status()["routes"]["out"]
        assert status["duplicates"] == 1 and status["quarantined"] == 1
    reasons = list((tmp_path / "quarantine" / "out").rglob("*.reason.json"))
    assert [json.loads(path.read_text())["reason"] for path in reasons] == ["uid-conflict"]


def test_bad_bytes_are_quarantined_with_their_reason(
    tmp_path: Path, make_gateway: Callable[..., Gateway]
) -> None:
    gateway = make_gateway(deid(free_port()))
    answer = gateway.store("out", b"\0" * 128 + b"DICM" + b"\xff" * 64, "SENDER")
    assert answer.status == REFUSED_QUARANTINED and answer.reason
    copies = list((tmp_path / "quarantine" / "out").rglob("*.dcm"))
    assert len(copies) == 1 and copies[0].read_bytes().startswith(b"\0" * 128 + b"DICM")
    reason = json.loads(copies[0].with_name(copies[0].name + ".reason.json").read_text())
    assert reason["reason"] == answer.reason
    assert not list((tmp_path / "spool" / "out" / "incoming").iterdir())
    assert gateway.status()["routes"]["out"]["quarantined"] == 1


def test_back_pressure_answers_out_of_resources(make_gateway: Callable[..., Gateway]) -> None:
    limits = Limits(workers=1, spool_max_files=2)
    gateway = make_gateway(deid(free_port()), limits=limits)
    assert [gateway.store("out", instance(i), "SENDER").status for i in range(2)] == [SUCCESS, SUCCESS]
    assert not gateway.accepting("out")
    assert gateway.store("out", instance(2), "SENDER").status == OUT_OF_RESOURCES
    assert gateway.status()["routes"]["out"]["queued"] == 2


def test_audit_verifies_and_holds_no_original_value(
    tmp_path: Path, make_gateway: Callable[..., Gateway]
) -> None:
    originals = [instance(i) for i in range(3)]
    with storescp(tmp_path / "archive") as archive:
        gateway = make_gateway(deid(archive.port))
        for data in originals:
            gateway.store("out", data, "SENDER")
        gateway.store("out", b"not dicom at all", "SENDER")
        wait_until(lambda: len(archive.files()) == 3)
        wait_until(lambda: gateway.status()["routes"]["out"]["forwarded"] == 3)
        gateway.stop(timeout=5)
    log = AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        log.verify()
        events = log.events()
    finally:
        log.close()
    actions = [event["action"] for event in events]
    assert actions[0] == "gateway-start" and actions[-1] == "gateway-stop"
    assert actions.count("store") == 4 and "quarantine" in actions and "forward" in actions
    assert sum(e["facts"]["count"] for e in events if e["action"] == "forward") == 3
    text = json.dumps(events)
    for data in originals:
        ds = dcmread(BytesIO(data))
        for value in (PATIENT_NAME, PATIENT_ID, ds.StudyInstanceUID, ds.SOPInstanceUID):
            assert value not in text
    written = {e["facts"].get("sop") for e in events if e["action"] == "store"} - {None}
    assert written == {dcmread(path).SOPInstanceUID for path in archive.files()}  # pseudonyms only


def test_status_file_is_written_every_second(tmp_path: Path, make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(deid(free_port()))
    gateway.store("out", instance(0), "SENDER")
    path = tmp_path / "spool" / "status.json"
    wait_until(lambda: json.loads(path.read_text())["routes"]["out"]["queued"] == 1, timeout=3)
    document = json.loads(path.read_text())
    assert document["schema"] == "dicomcloak/gateway-status/1" and document["pid"] > 0
    assert set(document["routes"]["out"]) == {
        "queued", "queued_bytes", "forwarded", "failed", "quarantined", "duplicates", "destination_up",
        "last_error", "confirmed_in_doubt", "resent_in_doubt",
    }
    assert path.stat().st_mode & 0o077 == 0
    assert (tmp_path / "spool" / "out" / "outbound").stat().st_mode & 0o777 == 0o700


def test_orthanc_receives_the_deidentified_study(
    tmp_path: Path, make_gateway: Callable[..., Gateway]
) -> None:
    with orthanc(tmp_path / "orthanc") as server:
        route = DeidRoute("out", Peer(server.ae_title, "127.0.0.1", server.port))
        gateway = make_gateway(route)
        for index in range(3):
            assert gateway.store("out", instance(index), "SENDER").status == SUCCESS
        wait_until(lambda: len(server.instances()) == 3)
        stored = server.file(server.instances()[0])
    assert PATIENT_NAME.encode() not in stored and PATIENT_ID.encode() not in stored


@pytest.mark.parametrize("vault", [False, True])
def test_concurrent_stores_share_the_pool_and_resends_stay_single(
    tmp_path: Path, make_gateway: Callable[..., Gateway], vault: bool
) -> None:
    """pynetdicom runs each association on its own thread: 6 senders at once, each sending twice."""
    originals = [instance(i) for i in range(12)]
    with storescp(tmp_path / "archive") as archive:
        url = f"sqlite:///{tmp_path / 'vault.db'}" if vault else None
        gateway = make_gateway(deid(archive.port, vault=url))
        answers: list[int] = []

        def send(part: list[bytes]) -> None:
            for data in part + part:
                answers.append(gateway.store("out", data, "SENDER").status)

        threads = [threading.Thread(target=send, args=(originals[i::6],)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [SUCCESS] * 24, [hex(a) for a in answers]
        wait_until(lambda: gateway.status()["routes"]["out"]["forwarded"] == 12)
        assert gateway.status()["routes"]["out"]["duplicates"] == 12
    assert len(archive.files()) == 12
    assert not [p for p in (tmp_path / "spool" / "out" / "claims").iterdir() if p.name.endswith(".tmp")]


def test_stop_refuses_new_stores_and_keeps_the_queue(
    tmp_path: Path, make_gateway: Callable[..., Gateway]
) -> None:
    gateway = make_gateway(deid(free_port()))
    assert gateway.store("out", instance(0), "SENDER").status == SUCCESS
    gateway.stop(timeout=5)
    answer = gateway.store("out", instance(1), "SENDER")
    assert (answer.status, answer.reason) == (OUT_OF_RESOURCES, "stopping")
    assert RouteSpool(tmp_path / "spool", "out").scan().files == 1


def test_embedded_seals_round_trip_and_the_pixel_stage_runs_in_the_gateway(
    tmp_path: Path, make_gateway: Callable[..., Gateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dicomcloak.keys.cms import make_owner
    from dicomcloak.keys.sealing import make_sealer

    keys = tmp_path / "owner"
    keys.mkdir()
    key_pem, cert_pem = make_owner(passphrase=b"a long enough passphrase")
    sealer_key, sealer_cert = make_sealer()
    for name, pem in (("owner.key.pem", key_pem), ("owner.cert.pem", cert_pem),
                      ("sealer.key.pem", sealer_key), ("sealer.cert.pem", sealer_cert)):
        (keys / name).write_bytes(pem)
    monkeypatch.setenv("OWNER_PASSPHRASE", "a long enough passphrase")
    original = instance(0)
    with storescp(tmp_path / "offsite") as offsite, storescp(tmp_path / "hospital", ae_title="PACS") as pacs:
        out = deid(offsite.port, recipients=(keys / "owner.cert.pem",), sealer_key=keys / "sealer.key.pem",
                   pixels="auto")
        back = ReidRoute(
            "back", Peer("PACS", "127.0.0.1", pacs.port), owner_key=keys / "owner.key.pem",
            owner_key_passphrase_env="OWNER_PASSPHRASE", trusted_sealers=(keys / "sealer.cert.pem",),
        )
        gateway = make_gateway(out, back, limits=Limits(workers=1))
        assert gateway.store("out", original, "SENDER").status == SUCCESS
        wait_until(lambda: len(offsite.files()) == 1)
        sealed = offsite.files()[0].read_bytes()
        assert PATIENT_NAME.encode() not in sealed
        assert gateway.store("back", sealed, "ARCHIVE").status == SUCCESS
        wait_until(lambda: len(pacs.files()) == 1)
        restored = dcmread(pacs.files()[0])
    assert restored.PatientName == PATIENT_NAME and restored.PatientID == PATIENT_ID
    assert restored.SOPInstanceUID == dcmread(BytesIO(original)).SOPInstanceUID


def test_one_gateway_per_spool(make_gateway: Callable[..., Gateway]) -> None:
    make_gateway(deid(free_port()))
    second = make_gateway(deid(free_port()), start=False)
    with pytest.raises(ConfigError) as raised:
        second.start()
    assert raised.value.reference == "spool-in-use"


def test_pynetdicom_never_logs_identifiers(tmp_path: Path, make_gateway: Callable[..., Gateway]) -> None:
    """Forwarding quiets pynetdicom before it talks (net.quiet), whatever was set before."""
    import logging

    from pynetdicom import _config

    _config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = True
    logging.getLogger("pynetdicom").setLevel(logging.NOTSET)
    with storescp(tmp_path / "archive") as archive:
        gateway = make_gateway(deid(archive.port))
        assert gateway.store("out", instance(0), "SENDER").status == SUCCESS
        wait_until(lambda: len(archive.files()) == 1)
    assert _config.LOG_REQUEST_IDENTIFIERS is False and _config.LOG_RESPONSE_IDENTIFIERS is False
    assert logging.getLogger("pynetdicom").level >= logging.WARNING

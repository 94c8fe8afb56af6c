"""The listener with real requestors (pynetdicom, dcmtk): C-ECHO, C-STORE, limits, back-pressure."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom import uid as uids

from dicomcloak.net.config import Limits
from dicomcloak.net.contexts import listener_contexts, readable_syntaxes
from dicomcloak.testing.dimse import DirectorySink, associate, request_only

PATIENT_NAME = "Smithers^Waylon"
PATIENT_ID = "MRN-4471-XQ"
#: dcmtk's tools (pynetdicom installs its own echoscu and storescu into the venv's bin).
DCMTK = "/usr/bin:/usr/local/bin"
dcmtk = pytest.mark.skipif(shutil.which("storescu", path=DCMTK) is None, reason="dcmtk is not installed")


def tool(name: str) -> str:
    """The path of a dcmtk tool."""
    return str(shutil.which(name, path=DCMTK))


def test_allowed_caller_echoes_and_stores(start, make_listener, sink: DirectorySink, ct: Dataset) -> None:
    port = start(make_listener()).ports["in"]
    assoc = associate(port)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assert assoc.send_c_store(ct).Status == 0x0000
    assoc.release()
    assert sink.stored == 1
    received = dcmread(next((sink.root / "out").glob("*.dcm")))
    assert received.SOPInstanceUID == ct.SOPInstanceUID
    assert received.PatientID == PATIENT_ID  # the listener hands the sink the instance as sent
    assert sink.actions("c-store")[0]["status"] == "0x0000"
    assert sink.actions("association-accepted")[0]["calling_ae"] == "SENDER"


@dcmtk
def test_dcmtk_storescu_and_echoscu(start, make_listener, sink: DirectorySink, ct_file: Path) -> None:
    port = str(start(make_listener()).ports["in"])
    echo = subprocess.run(
        [tool("echoscu"), "-aet", "SENDER", "-aec", "DICOMCLOAK", "127.0.0.1", port],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert echo.returncode == 0, echo.stderr
    store = subprocess.run(
        [tool("storescu"), "-aet", "SENDER", "-aec", "DICOMCLOAK", "127.0.0.1", port, str(ct_file)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert store.returncode == 0, store.stderr
    assert sink.stored == 1


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmd.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "JPEG-LL.dcm"])
def test_compressed_instances_accepted_as_sent(start, make_listener, sink: DirectorySink, name: str) -> None:
    """Each compressed syntax a decoder here reads is accepted as is (no conversion by the sender)."""
    from pydicom.data import get_testdata_file
    from pynetdicom import AE

    ds = dcmread(str(get_testdata_file(name)))
    port = start(make_listener()).ports["in"]
    ae = AE(ae_title="SENDER")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="DICOMCLOAK")
    assert assoc.is_established
    assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()
    received = dcmread(next((sink.root / "out").glob("*.dcm")))
    assert received.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID


def test_syntaxes_are_the_readable_ones() -> None:
    syntaxes = readable_syntaxes()
    assert uids.ImplicitVRLittleEndian in syntaxes and uids.ExplicitVRLittleEndian in syntaxes
    assert {uids.JPEGBaseline8Bit, uids.JPEG2000Lossless, uids.RLELossless} <= set(syntaxes)
    assert "1.2.840.10008.1.2.4.100" not in syntaxes  # MPEG2: no decoder, refused at negotiation


def test_listener_without_route_offers_no_storage(
    start, make_listener, sink: DirectorySink, ct: Dataset
) -> None:
    contexts = listener_contexts(make_listener(route=None))
    assert [cx.abstract_syntax for cx in contexts] == [uids.UID("1.2.840.10008.1.1")]
    port = start(make_listener(route=None)).ports["in"]
    assoc = associate(port)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    with pytest.raises(ValueError, match="No presentation context"):
        assoc.send_c_store(ct)
    assoc.release()
    assert sink.stored == 0


def test_full_spool_refuses_associations_then_stores(
    start, make_listener, sink: DirectorySink, ct: Dataset
) -> None:
    """Back-pressure: transient A-ASSOCIATE-RJ before, 0xA700 on an association already open."""
    port = start(make_listener()).ports["in"]
    assoc = associate(port)
    sink.accept = False
    assert assoc.send_c_store(ct).Status == 0xA700
    assoc.release()
    assert request_only(port) == (0x03, (0x02, 0x03, 0x02))  # transient, local-limit-exceeded
    assert sink.actions("association-rejected")[-1]["reason"] == "spool-full"
    sink.accept = True
    assoc = associate(port)
    assert assoc.send_c_store(ct).Status == 0x0000
    assoc.release()
    assert sink.stored == 1


def test_max_associations(start, make_listener, sink: DirectorySink) -> None:
    port = start(make_listener(), limits=Limits(max_associations=2, network_timeout=5)).ports["in"]
    first, second = associate(port), associate(port)
    assert first.is_established and second.is_established
    assert request_only(port) == (0x03, (0x02, 0x03, 0x02))
    assert sink.actions("association-rejected")[-1]["reason"] == "too-many-associations"
    first.release()
    time.sleep(0.2)
    third = associate(port)
    assert third.is_established
    second.release()
    third.release()


def test_idle_association_closed_after_network_timeout(start, make_listener, sink: DirectorySink) -> None:
    port = start(make_listener(), limits=Limits(network_timeout=0.5)).ports["in"]
    assoc = associate(port, timeout=30)
    assert assoc.is_established
    deadline = time.monotonic() + 5
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not assoc.is_established
    assert assoc.is_aborted
    assert time.monotonic() < deadline


def test_stop_lets_in_flight_store_finish(start, make_listener, tmp_path: Path, ct: Dataset) -> None:
    """A C-STORE being processed when stop() is called completes and is answered with success."""

    class SlowSink(DirectorySink):
        def store(self, route: str, encoded: bytes, caller: str):  # type: ignore[no-untyped-def]
            time.sleep(0.5)
            return super().store(route, encoded, caller)

    from dicomcloak.net.config import GatewayConfig
    from dicomcloak.net.listener import start_listeners

    slow = SlowSink(tmp_path / "slow")
    config = GatewayConfig(
        spool=tmp_path, quarantine=tmp_path, audit="sqlite://", listeners=(make_listener(),), routes={}
    )
    handle = start_listeners(config, slow)
    port = handle.ports["in"]
    assoc = associate(port)
    statuses: list[int] = []
    sender = threading.Thread(target=lambda: statuses.append(int(assoc.send_c_store(ct).Status)))
    sender.start()
    time.sleep(0.2)
    handle.stop(timeout=5)
    sender.join(5)
    assert statuses == [0x0000]
    assert slow.stored == 1
    with pytest.raises(ConnectionRefusedError):  # nothing listens any more
        request_only(port)


def test_no_phi_in_logs(
    start, make_listener, sink: DirectorySink, ct: Dataset, caplog: pytest.LogCaptureFixture
) -> None:
    """Everything logged at DEBUG, pynetdicom's too, while a C-STORE runs: no name, no ID."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("pynetdicom").setLevel(logging.DEBUG)
    try:
        port = start(make_listener()).ports["in"]
        assoc = associate(port)
        assert assoc.send_c_store(ct).Status == 0x0000
        assoc.release()
    finally:
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    text = caplog.text + repr([record.__dict__ for record in caplog.records])
    assert "c-store" in text
    for value in (PATIENT_NAME, PATIENT_ID, "Smithers", "Waylon"):
        assert value not in text
    assert all(PATIENT_ID not in repr(facts) for _, facts in sink.events)


def test_port_in_use_is_a_config_error(start, make_listener) -> None:
    from dicomcloak.errors import ConfigError

    port = start(make_listener(name="first")).ports["first"]
    with pytest.raises(ConfigError) as caught:
        start(make_listener(name="second", port=port))
    assert caught.value.reference == "listener-bind-failed"


def test_maximum_pdu_length_is_announced(start, make_listener) -> None:
    """PS3.8 D.1: the A-ASSOCIATE-AC carries the listener's maximum PDU length (limits.max_pdu)."""
    port = start(make_listener(), limits=Limits(max_pdu=32_768, network_timeout=5)).ports["in"]
    assoc = associate(port)
    assert assoc.is_established
    assert assoc.acceptor.maximum_length == 32_768
    assoc.release()

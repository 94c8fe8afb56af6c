"""Query/retrieve through the gateway against a real Orthanc that holds only ``deid`` outputs.

The hospital side is dcmtk (findscu, movescu, getscu, storescp) or pynetdicom
as a real client; the gateway is a pynetdicom AE with :func:`query_handlers`;
the remote is Orthanc 1.10 loaded with the outputs of ``dicomcloak deid
--vault`` (2 patients x 2 studies x 2 instances). Every identifier the gateway
sends is captured by the service's ``on_forward`` seam and must hold no original.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # made at import
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from dicomcloak.api import Reidentifier
from dicomcloak.keys.keyfile import load_keyring
from dicomcloak.keys.pseudonyms import Pseudonymizer
from dicomcloak.net.config import Peer
from dicomcloak.net.qr import QUERY_NOT_TRANSLATABLE_STATUS, QueryService, query_contexts, query_handlers
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Option
from dicomcloak.testing.archives import OrthancServer, free_port, orthanc, storescp
from dicomcloak.testing.restored import compare_trees
from dicomcloak.vault import Vault

pytestmark = [
    pytest.mark.external,
    pytest.mark.skipif(
        not Path("/usr/sbin/Orthanc").exists() or shutil.which("storescp", path="/usr/bin") is None,
        reason="Orthanc and dcmtk are needed",
    ),
]

GATEWAY_AE, DEST_AE, HOSPITAL_AE = "DICOMCLOAK", "DEST", "HOSPITAL"
OPTIONS = frozenset({Option.RETAIN_LONG_MODIFIED_DATES})  # dates searchable (shifted per patient)
DCMTK = Path("/usr/bin")  # dcmtk's tools, not pynetdicom's apps of the same names in the venv


@dataclass(frozen=True)
class Study:
    patient_id: str
    patient_name: str
    accession: str
    date: str
    time: str
    uid: str


PATIENTS = [("HOSP-1001", "Doe^Jane"), ("HOSP-2002", "Roe^Richard")]
# A late study time moves the date by a day more than the shift's whole days (the widened range).
TIMES = [("20190315", "231500"), ("20200620", "081000")]


def _write(path: Path, study: Study, index: int) -> None:
    ds = dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.PatientID, ds.PatientName, ds.AccessionNumber = study.patient_id, study.patient_name, study.accession
    ds.StudyDate, ds.StudyTime, ds.StudyInstanceUID = study.date, study.time, study.uid
    ds.SeriesInstanceUID = f"{study.uid}.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{study.uid}.1.{index + 1}"
    del ds[0xFFFCFFFC]  # Data Set Trailing Padding: structural, dropped by sanitize (CDR)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _make_originals(root: Path) -> list[Study]:
    studies = []
    for p, (patient_id, name) in enumerate(PATIENTS):
        for s, (date, tm) in enumerate(TIMES):
            uid = f"1.2.826.0.1.3680043.10.999.{p + 1}.{s + 1}"
            studies.append(Study(patient_id, name, f"ACC{p + 1}{s + 1}7", date, tm, uid))
            for i in range(2):
                _write(root / f"p{p}s{s}i{i}.dcm", studies[-1], i)
    return studies


#: A study whose second instance was sealed in another vault: the gateway cannot restore it.
HALF_SEALED = Study("HOSP-3003", "Poe^Edgar", "ACC3117", "20210101", "101010",
                    "1.2.826.0.1.3680043.10.999.3.1")


def _deid(originals: Path, out: Path, key: Path, vault_url: str) -> None:
    script = Path(sys.executable).with_name("dicomcloak")
    command = [str(script), "deid", str(originals), "--out", str(out), "--key", str(key),
               "--vault", vault_url, "-o", "retain-long-modified-dates", "-j", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]


@dataclass
class World:
    originals: Path
    studies: list[Study]
    orthanc: OrthancServer
    gateway_port: int
    dest_port: int
    sent: list[tuple[str, Dataset]] = field(default_factory=list)
    services: list[QueryService] = field(default_factory=list)
    audits: list[tuple[str, dict[str, object]]] = field(default_factory=list)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Originals, their ``deid`` outputs in Orthanc, and the gateway's Q/R SCP in front of it."""
    from dicomcloak.keys import ProjectKey, write_key_file

    root = tmp_path_factory.mktemp("qr")
    (root / "originals").mkdir()
    studies = _make_originals(root / "originals")
    key = root / "project.key"
    write_key_file(key, ProjectKey.generate())
    vault_url = f"sqlite:///{root / 'vault.db'}"
    _deid(root / "originals", root / "deid", key, vault_url)
    _write(root / "half" / "sealed" / "i0.dcm", HALF_SEALED, 0)
    _write(root / "half" / "elsewhere" / "i1.dcm", HALF_SEALED, 1)
    _deid(root / "half" / "sealed", root / "deid-half-sealed", key, vault_url)
    _deid(root / "half" / "elsewhere", root / "deid-half-elsewhere", key, f"sqlite:///{root / 'other.db'}")
    ring = load_keyring(key)
    with orthanc(root / "orthanc") as archive, Vault.open(vault_url, ring) as vault:
        for path in sorted(root.glob("deid*/**/*.dcm")):
            archive.post("/instances", path.read_bytes())
        dest_port = free_port()
        world = World(root / "originals", studies, archive, 0, dest_port)
        service = QueryService(
            Peer("ORTHANC", "127.0.0.1", archive.port), Pseudonymizer(ring.project),
            Policy(options=OPTIONS), vault, Reidentifier(vault=vault), Policy(options=OPTIONS),
            (Peer(DEST_AE, "127.0.0.1", dest_port),),
            GATEWAY_AE, audit=lambda action, **facts: world.audits.append((action, facts)),
            on_forward=lambda operation, identifier: world.sent.append((operation, identifier)),
            timeout=30,
        )
        world.services.append(service)
        ae = AE(GATEWAY_AE)
        for cx in query_contexts():
            ae.add_supported_context(cx.abstract_syntax, cx.transfer_syntax, scu_role=cx.scu_role,
                                     scp_role=cx.scp_role)
        server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=query_handlers(service))
        world.gateway_port = int(server.server_address[1])
        try:
            yield world
        finally:
            server.shutdown()


@pytest.fixture
def destination(world: World, tmp_path: Path) -> Iterator[Path]:
    """dcmtk's storescp as the hospital's C-MOVE destination, writing into a fresh folder."""
    with storescp(tmp_path / "received", port=world.dest_port, ae_title=DEST_AE) as received:
        yield received.directory


def _dcmtk(world: World, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    root = [] if "-P" in args else ["-S"]  # Study Root unless Patient Root is asked for
    command = [str(DCMTK / tool), *root, "-aet", HOSPITAL_AE, "-aec", GATEWAY_AE, *args, "127.0.0.1",
               str(world.gateway_port)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _originals_in(world: World) -> list[bytes]:
    """Every identifying original of the test data, as it would appear encoded in an identifier."""
    values = set()
    for study in world.studies:
        values |= {study.patient_id, study.accession, study.uid, study.patient_name.split("^")[0]}
    return [value.encode() for value in values]


def _encoded(identifier: Dataset) -> bytes:
    encoded = encode(identifier, False, True)  # as it goes on the wire (Explicit VR Little Endian)
    assert encoded is not None
    return encoded


def _assert_only_pseudonyms_sent(world: World) -> None:
    assert world.sent
    for _, identifier in world.sent:
        encoded = _encoded(identifier)
        assert not [value for value in _originals_in(world) if value in encoded]


def _restored(originals: Path, folder: Path) -> tuple[int, int, list[str]]:
    """compare_trees over what dcmtk wrote (it names files after the SOP Instance UID, without a suffix)."""
    for path in folder.iterdir():
        if path.suffix != ".dcm":
            path.rename(path.with_name(path.name + ".dcm"))
    return compare_trees(originals, folder)


def _answers(folder: Path) -> list[Dataset]:
    return [dcmread(path) for path in sorted(folder.glob("rsp*.dcm"))]


def test_find_by_original_patient_id_answers_with_originals(world: World, tmp_path: Path) -> None:
    world.sent.clear()
    patient = world.studies[0]
    result = _dcmtk(world, "findscu", "-X", "-od", str(tmp_path), "-k", "QueryRetrieveLevel=STUDY",
                    "-k", f"PatientID={patient.patient_id}", "-k", "StudyInstanceUID", "-k", "PatientName",
                    "-k", "AccessionNumber", "-k", "StudyDate", "-k", "RetrieveAETitle")
    assert result.returncode == 0, result.stderr
    answers = _answers(tmp_path)
    mine = {s.uid: s for s in world.studies if s.patient_id == patient.patient_id}
    assert sorted(str(a.StudyInstanceUID) for a in answers) == sorted(mine)
    for answer in answers:
        study = mine[str(answer.StudyInstanceUID)]
        assert (answer.PatientID, str(answer.PatientName)) == (study.patient_id, study.patient_name)
        assert (answer.AccessionNumber, answer.StudyDate) == (study.accession, study.date)
        assert answer.RetrieveAETitle == GATEWAY_AE  # a C-MOVE comes through the gateway
        assert "StudyTime" not in answer  # asked by the gateway to shift the date back, not by the caller
    _assert_only_pseudonyms_sent(world)
    # Orthanc holds the pseudonyms only: the original Patient ID finds nothing there.
    assert world.orthanc.post("/tools/find", json.dumps(
        {"Level": "Patient", "Query": {"PatientID": patient.patient_id}}).encode()) == []


def test_find_by_date_range_and_accession(world: World, tmp_path: Path) -> None:
    world.sent.clear()
    late = world.studies[0]  # 23:15: shifted, it lands a day later than the shift's whole days
    result = _dcmtk(world, "findscu", "-X", "-od", str(tmp_path), "-k", "QueryRetrieveLevel=STUDY",
                    "-k", f"PatientID={late.patient_id}", "-k", f"StudyDate={late.date}-{late.date}",
                    "-k", "StudyInstanceUID", "-k", "StudyTime")
    assert result.returncode == 0, result.stderr
    answers = _answers(tmp_path)
    found = [(a.StudyInstanceUID, a.StudyDate, a.StudyTime) for a in answers]
    assert found == [(late.uid, late.date, late.time)]
    other = world.studies[3]
    by_accession = tmp_path / "acc"
    by_accession.mkdir()
    _dcmtk(world, "findscu", "-X", "-od", str(by_accession), "-k", "QueryRetrieveLevel=STUDY",
           "-k", f"AccessionNumber={other.accession}", "-k", "StudyInstanceUID", "-k", "PatientID")
    found_by_accession = [(a.StudyInstanceUID, a.PatientID) for a in _answers(by_accession)]
    assert found_by_accession == [(other.uid, other.patient_id)]
    _assert_only_pseudonyms_sent(world)


def _client(world: World, model: str) -> tuple[AE, Association]:
    ae = AE(HOSPITAL_AE)
    ae.add_requested_context(model)
    assoc = ae.associate("127.0.0.1", world.gateway_port, ae_title=GATEWAY_AE)
    assert assoc.is_established
    return ae, assoc


def test_patient_name_wildcard_is_refused_and_nothing_is_sent(world: World) -> None:
    world.sent.clear()
    _, assoc = _client(world, StudyRootQueryRetrieveInformationModelFind)
    query = Dataset()
    query.QueryRetrieveLevel, query.PatientName, query.StudyInstanceUID = "STUDY", "Doe*", ""
    try:
        responses = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    finally:
        assoc.release()
    assert len(responses) == 1
    status, identifier = responses[0]
    assert identifier is None
    assert status.Status == QUERY_NOT_TRANSLATABLE_STATUS
    assert status.ErrorComment == "query-not-translatable: PatientName"
    assert world.sent == []
    facts = {"operation": "find", "reference": "query-not-translatable", "keyword": "PatientName",
             "status": "0xC100"}
    assert ("qr-refused", facts) in world.audits
    result = _dcmtk(world, "findscu", "-v", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=Smi*")
    assert "Received Final Find Response (Failed: UnableToProcess)" in result.stderr
    assert world.sent == []


def test_move_by_original_study_uid_restores_exactly(world: World, destination: Path) -> None:
    world.sent.clear()
    study = world.studies[1]
    result = _dcmtk(world, "movescu", "-aem", DEST_AE, "-k", "QueryRetrieveLevel=STUDY",
                    "-k", f"StudyInstanceUID={study.uid}")
    assert result.returncode == 0, result.stderr
    received = sorted(destination.iterdir())
    assert len(received) == 2
    assert {str(dcmread(path).StudyInstanceUID) for path in received} == {study.uid}
    assert _restored(world.originals, destination) == (2, 2, [])
    _assert_only_pseudonyms_sent(world)
    assert world.audits[-1] == ("qr-move", {"level": "STUDY", "destination": DEST_AE, "retrieved": 2,
                                            "restored": 2, "failed": 0, "reasons": {}})


def test_get_by_original_patient_id_restores_exactly(world: World, tmp_path: Path) -> None:
    world.sent.clear()
    patient = world.studies[2]
    result = _dcmtk(world, "getscu", "-P", "-od", str(tmp_path), "-k", "QueryRetrieveLevel=PATIENT",
                    "-k", f"PatientID={patient.patient_id}")  # Patient Root: the patient's unique key
    assert result.returncode == 0, result.stderr
    received = sorted(tmp_path.glob("*"))
    assert len(received) == 4  # both studies of the patient
    assert {dcmread(path).PatientID for path in received} == {patient.patient_id}
    assert _restored(world.originals, tmp_path) == (4, 4, [])
    _assert_only_pseudonyms_sent(world)


def test_unknown_move_destination_is_refused(world: World) -> None:
    world.sent.clear()
    _, assoc = _client(world, StudyRootQueryRetrieveInformationModelMove)
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", world.studies[0].uid
    try:
        responses = list(assoc.send_c_move(query, "NOBODY", StudyRootQueryRetrieveInformationModelMove))
    finally:
        assoc.release()
    assert [status.Status for status, _ in responses] == [0xA801]
    assert world.sent == []


def test_get_refused_query_names_the_key(world: World) -> None:
    world.sent.clear()
    ae = AE(HOSPITAL_AE)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")  # CT Image Storage
    assoc = ae.associate("127.0.0.1", world.gateway_port, ae_title=GATEWAY_AE)
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel, query.PatientID, query.PatientBirthDate = "STUDY", "HOSP-1001", "19700101"
    try:
        responses = list(assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet))
    finally:
        assoc.release()
    status = responses[-1][0]
    assert (status.Status, status.ErrorComment) == (0xC100, "query-not-translatable: PatientBirthDate")
    assert world.sent == []


def test_an_instance_that_cannot_be_restored_is_a_failed_sub_operation(
    world: World, destination: Path
) -> None:
    ae = AE(HOSPITAL_AE)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate("127.0.0.1", world.gateway_port, ae_title=GATEWAY_AE)
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", HALF_SEALED.uid
    try:
        responses = list(assoc.send_c_move(query, DEST_AE, StudyRootQueryRetrieveInformationModelMove))
    finally:
        assoc.release()
    final = responses[-1][0]
    assert final.Status == 0xB000  # sub-operations complete, one or more failures (PS3.4 C.4.2.1.5)
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (1, 1)
    received = list(destination.iterdir())
    assert len(received) == 1  # the other was never sent, pseudonymous or partly restored
    restored = dcmread(received[0])
    assert (restored.PatientID, restored.SOPInstanceUID) == (HALF_SEALED.patient_id, f"{HALF_SEALED.uid}.1.1")
    facts = {"level": "STUDY", "destination": DEST_AE, "retrieved": 2, "restored": 1, "failed": 1,
             "reasons": {"vault-record-missing": 1}}
    assert world.audits[-1] == ("qr-move", facts)


# pynetdicom 3.0.4 leaks the socket of a refused TCP connection: transport.py _shutdown_socket calls
# shutdown() on the unconnected socket, which raises before close() is reached.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_unreachable_remote_is_a_clear_failure(world: World) -> None:
    service = world.services[0]
    down = QueryService(
        Peer("ORTHANC", "127.0.0.1", free_port()), service.pseudonymizer, service.policy, service.vault,
        service.reidentifier, service.reid_policy, (), GATEWAY_AE, timeout=5,
    )
    query = Dataset()
    query.QueryRetrieveLevel, query.PatientID, query.StudyInstanceUID = "STUDY", "HOSP-1001", ""
    [(status, identifier)] = list(down.find(query, str(StudyRootQueryRetrieveInformationModelFind)))
    assert identifier is None
    assert (status.Status, status.ErrorComment) == (0xC110, "remote-unavailable")
    steps = list(down.get(query, str(StudyRootQueryRetrieveInformationModelGet)))
    assert steps[0] == 1 and steps[1][0].Status == 0xC110  # one failed sub-operation, then the failure


def test_series_and_image_levels_and_the_patient_root(world: World, tmp_path: Path) -> None:
    world.sent.clear()
    study = world.studies[3]
    images = tmp_path / "images"
    images.mkdir()
    _dcmtk(world, "findscu", "-X", "-od", str(images), "-k", "QueryRetrieveLevel=IMAGE",
           "-k", f"StudyInstanceUID={study.uid}", "-k", f"SeriesInstanceUID={study.uid}.1",
           "-k", "SOPInstanceUID", "-k", "SOPClassUID")
    found = sorted((str(a.SOPInstanceUID), str(a.SOPClassUID)) for a in _answers(images))
    assert found == [(f"{study.uid}.1.{i}", "1.2.840.10008.5.1.4.1.1.2") for i in (1, 2)]
    patients = tmp_path / "patients"
    patients.mkdir()
    _dcmtk(world, "findscu", "-P", "-X", "-od", str(patients), "-k", "QueryRetrieveLevel=PATIENT",
           "-k", f"PatientID={study.patient_id}", "-k", "PatientName")
    assert [(a.PatientID, str(a.PatientName)) for a in _answers(patients)] == [
        (study.patient_id, study.patient_name)
    ]
    _assert_only_pseudonyms_sent(world)


def test_a_retrieve_by_shifted_date_is_refused(world: World) -> None:
    world.sent.clear()
    query = Dataset()
    query.QueryRetrieveLevel, query.PatientID, query.StudyDate = "STUDY", "HOSP-1001", "20190315"
    steps = list(world.services[0].get(query, str(StudyRootQueryRetrieveInformationModelGet)))
    assert steps[0] == 1
    assert (steps[1][0].Status, steps[1][0].ErrorComment) == (0xC100, "query-not-translatable: StudyDate")
    assert world.sent == []

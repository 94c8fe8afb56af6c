"""The gateway end to end, as an operator runs it: ``dicomcloak serve`` between dcmtk and real archives.

Everything is real: the ``dicomcloak serve`` process, dcmtk's ``storescu`` and
``storescp``, Orthanc, the synthetic PHI corpus and its leak checker
(docs/gateway.md, "How it is tested"). Ports are free loopback ports.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from dicomcloak.testing.archives import free_port, orthanc, storescp
from dicomcloak.testing.corpus import build_corpus
from dicomcloak.testing.gatewayconf import gateway_table
from dicomcloak.testing.leakcheck import evaluate

#: dcmtk's tools: pynetdicom installs apps of the same names in the environment's bin/, first on PATH.
STORESCU = "/usr/bin/storescu"
pytestmark = pytest.mark.skipif(not Path(STORESCU).exists(), reason="needs dcmtk (Debian dcmtk)")

_ACKED = re.compile(r"Received Store Response \(Success\)")
_DICOMCLOAK = str(Path(sys.executable).with_name("dicomcloak"))


def write_config(root: Path, key: Path, routes: dict[str, tuple[int, str, int]], **forward: float) -> Path:
    """A gateway.toml: per route a listener (port) from 127.0.0.1 and a destination (AE title, port)."""
    lines = [
        gateway_table(key), "[forward]",
        *(f"{name} = {value}" for name, value in {"retry_initial": 0.2, "retry_max": 1.0, **forward}.items()),
    ]
    for name, (port, ae_title, destination) in routes.items():
        lines += [
            "", "[[listener]]", f'ae_title = "{name.upper()[:16]}"', f"port = {port}", f'route = "{name}"',
            'allow = [{ ae_title = "*", address = "127.0.0.1" }]',
            "", "[[route]]", f'name = "{name}"', 'direction = "deidentify"', 'pixels = "off"',
            f'destination = {{ ae_title = "{ae_title}", host = "127.0.0.1", port = {destination} }}',
        ]
    path = root / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Serve:
    """A ``dicomcloak serve`` process: started, killed, stopped, asked for its status."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Serve:
        with (self.config.parent / "serve.log").open("ab") as log:
            self.process = subprocess.Popen(
                [_DICOMCLOAK, "serve", "--config", str(self.config)], stdout=subprocess.PIPE, stderr=log
            )
        assert self.process.stdout is not None
        ready = json.loads(self.process.stdout.readline() or b"{}")  # the ready line: it listens
        assert ready.get("event") == "ready", "serve did not start (see serve.log)"
        return self

    def kill(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()

    def stop(self) -> int:
        assert self.process is not None and self.process.stdout is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(60)
        self.process.stdout.close()
        return code

    def routes(self) -> dict[str, Any]:
        """Per-route counts from ``dicomcloak gateway status --json``."""
        done = subprocess.run(
            [_DICOMCLOAK, "gateway", "status", "--config", str(self.config), "--json"],
            capture_output=True, text=True, check=False,
        )
        report = json.loads(done.stdout or "{}").get("status") or {}
        return dict(report.get("routes", {}))


@pytest.fixture
def serve() -> Iterator[Callable[[Path], Serve]]:
    started: list[Serve] = []

    def make(config: Path) -> Serve:
        started.append(Serve(config))
        return started[-1].start()

    yield make
    for gateway in started:
        if gateway.process is not None and gateway.process.poll() is None:
            gateway.kill()


def send(port: int, paths: list[Path], called: str) -> int:
    """dcmtk ``storescu`` from the hospital side: how many instances the gateway acknowledged (success).

    ``-xs``: JPEG Lossless is proposed too (the corpus has such a file); the gateway accepts it.
    """
    done = subprocess.run(
        [STORESCU, "-v", "-xs", "-aet", "MODALITY", "-aec", called, "127.0.0.1", str(port), *map(str, paths)],
        capture_output=True, text=True, check=False, timeout=120,
    )
    return len(_ACKED.findall(done.stdout + done.stderr))


def wait_until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def audited(root: Path) -> Counter[str]:
    """Events per action in the gateway's audit log (its chain verified first)."""
    from dicomcloak.audit import AuditLog

    log = AuditLog.open(f"sqlite:///{root / 'var' / 'audit.db'}")
    try:
        log.verify()
        return Counter(str(event["action"]) for event in log.events())
    finally:
        log.close()


def sop_uids(files: list[Path]) -> list[str]:
    return [str(dcmread(path, stop_before_pixels=True).SOPInstanceUID) for path in files]


def _original_ids(corpus: Path) -> set[str]:
    paths = (corpus / "files").rglob("*.dcm")
    return {str(dcmread(path, stop_before_pixels=True).PatientID) for path in paths}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic PHI corpus with its answer key (dicomcloak.testing.corpus): 3 patients' studies."""
    return build_corpus(tmp_path_factory.mktemp("corpus"), 24, seed=15)


def test_a_study_through_deidentify_routes_reaches_storescp_and_orthanc_clean(
    tmp_path: Path, key_file: Path, corpus: Path, serve: Callable[[Path], Serve]
) -> None:
    """storescu -> gateway -> storescp and Orthanc: every instance arrives de-identified, no leak."""
    files = sorted((corpus / "files").rglob("*.dcm"))
    with storescp(tmp_path / "archive") as archive, orthanc(tmp_path / "orthanc") as pacs:
        ports = {"to-archive": free_port(), "to-orthanc": free_port()}
        config = write_config(
            tmp_path, key_file,
            {"to-archive": (ports["to-archive"], "ARCHIVE", archive.port),
             "to-orthanc": (ports["to-orthanc"], pacs.ae_title, pacs.port)},
        )
        gateway = serve(config)
        assert send(ports["to-archive"], files, "TO-ARCHIVE") == len(files)
        assert send(ports["to-orthanc"], files, "TO-ORTHANC") == len(files)
        wait_until(lambda: len(archive.files()) == len(files) and len(pacs.instances()) == len(files))
        wait_until(lambda: all(r.get("queued") == 0 for r in gateway.routes().values()))
        routes = gateway.routes()
        assert gateway.stop() == 0
        in_orthanc = [dcmread(BytesIO(pacs.file(i)), stop_before_pixels=True) for i in pacs.instances()]
    assert {name: routes[name]["forwarded"] for name in ports} == dict.fromkeys(ports, len(files))
    # storescp: the leak checker over what arrived (every PHI string of the answer key, every UID).
    received = tmp_path / "received"
    received.mkdir()
    for index, path in enumerate(archive.files()):
        shutil.copy(path, received / f"{index:03d}.dcm")
    found = evaluate(corpus, received)
    assert (found["n_output_files"], found["missing_outputs"]) == (len(files), 0)
    assert found["parse_fail"] == 0
    assert (found["phi_leaked"], found["files_with_original_uid"]) == (0, 0)
    studies = found["study_uid_consistency"]
    assert studies["split_groups"] == studies["merged_groups"] == 0
    assert found["series_uid_consistency"]["split_groups"] == 0
    assert set(found["refs"]) == {"ok"}
    # Orthanc: the same instances (same keyed UIDs as storescp got: one key, one domain).
    orthanc_uids = sorted(str(ds.SOPInstanceUID) for ds in in_orthanc)
    assert sorted(sop_uids(sorted(received.glob("*.dcm")))) == orthanc_uids
    assert not {str(ds.PatientID) for ds in in_orthanc} & {str(p) for p in _original_ids(corpus)}


def _kill_after_each_success(
    tmp_path: Path, key_file: Path, files: list[Path], destination: tuple[str, int],
    serve: Callable[[Path], Serve],
) -> Serve:
    """Start the gateway, send one instance, ``kill -9`` it as soon as storescu has its success; repeat.

    Then start it once more (the restart picks the spool up) and wait until its queue is empty.
    """
    port = free_port()
    config = write_config(tmp_path, key_file, {"out": (port, *destination)})
    acknowledged = 0
    for path in files:
        gateway = serve(config)
        acknowledged += send(port, [path], "OUT")
        gateway.kill()
    assert acknowledged == len(files)
    gateway = serve(config)
    wait_until(lambda: gateway.routes().get("out", {}).get("queued") == 0)
    return gateway


def test_kill_9_right_after_success_loses_and_duplicates_nothing(
    tmp_path: Path, key_file: Path, corpus: Path, serve: Callable[[Path], Serve]
) -> None:
    """kill -9 right after each success, 20 times, Orthanc the destination: all delivered, none twice.

    An instance in doubt (stored by Orthanc, the gateway killed before it removed its copy) is found
    there by C-FIND and not sent again.
    """
    files = sorted((corpus / "files").rglob("*.dcm"))[:20]
    with orthanc(tmp_path / "orthanc") as pacs:
        gateway = _kill_after_each_success(tmp_path, key_file, files, (pacs.ae_title, pacs.port), serve)
        wait_until(lambda: len(pacs.instances()) == len(files))
        assert gateway.stop() == 0
        held = [dcmread(BytesIO(pacs.file(i)), stop_before_pixels=True) for i in pacs.instances()]
    assert len({str(ds.SOPInstanceUID) for ds in held}) == len(files)
    events = audited(tmp_path)  # the audit trail survives kill -9 (counters in status.json may not)
    assert events["store"] == len(files) and events["forward-in-doubt"] == 0


def test_kill_9_with_a_destination_that_cannot_answer_c_find_reports_every_second_delivery(
    tmp_path: Path, key_file: Path, corpus: Path, serve: Callable[[Path], Serve]
) -> None:
    """storescp (no C-FIND): nothing lost; each second delivery is one the gateway audited as in doubt."""
    files = sorted((corpus / "files").rglob("*.dcm"))[:10]
    with storescp(tmp_path / "archive") as archive:  # unique file names: a second delivery shows
        gateway = _kill_after_each_success(tmp_path, key_file, files, ("ARCHIVE", archive.port), serve)
        wait_until(lambda: len(archive.files()) >= len(files))
        assert gateway.stop() == 0
        delivered = sop_uids(archive.files())
    assert len(set(delivered)) == len(files)
    assert len(delivered) - len(files) <= audited(tmp_path)["forward-in-doubt"]


def test_a_destination_down_keeps_instances_in_the_spool_until_it_is_back(
    tmp_path: Path, key_file: Path, corpus: Path, serve: Callable[[Path], Serve]
) -> None:
    """Destination down: acknowledged, queued (gateway status says so), delivered once it comes back."""
    files = sorted((corpus / "files").rglob("*.dcm"))[:6]
    port, destination = free_port(), free_port()
    config = write_config(tmp_path, key_file, {"out": (port, "ARCHIVE", destination)})
    gateway = serve(config)
    assert send(port, files, "OUT") == len(files)
    wait_until(lambda: gateway.routes().get("out", {}).get("queued") == len(files))
    time.sleep(1.0)
    assert gateway.routes()["out"]["queued"] == len(files)  # still waiting, nothing lost
    with storescp(tmp_path / "archive", port=destination) as archive:
        wait_until(lambda: len(archive.files()) == len(files))
        wait_until(lambda: gateway.routes()["out"]["queued"] == 0)
    assert gateway.stop() == 0
    assert len(set(sop_uids(archive.files()))) == len(files)


def _round_trip_config(root: Path, key: Path, port: int, pacs: Any, hospital: Any) -> Path:
    """De-identify to Orthanc (sealing to a vault); query and retrieve back through the same listener."""
    text = gateway_table(key) + f"""
[[listener]]
ae_title = "DICOMCLOAK"
port = {port}
route = "to-orthanc"
query = "orthanc-qr"
allow = [{{ ae_title = "*", address = "127.0.0.1" }}]

[[route]]
name = "to-orthanc"
direction = "deidentify"
pixels = "off"
vault = "var/vault.db"
destination = {{ ae_title = "{pacs.ae_title}", host = "127.0.0.1", port = {pacs.port} }}

[[route]]
name = "from-orthanc"
direction = "reidentify"
vault = "var/vault.db"
destination = {{ ae_title = "HOSPITAL", host = "127.0.0.1", port = {hospital.port} }}

[[query]]
name = "orthanc-qr"
remote = {{ ae_title = "{pacs.ae_title}", host = "127.0.0.1", port = {pacs.port} }}
deidentify = "to-orthanc"
reidentify = "from-orthanc"
destinations = [{{ ae_title = "HOSPITAL", host = "127.0.0.1", port = {hospital.port} }}]
"""
    path = root / "gateway.toml"
    path.write_text(text)
    return path


def _compressed(path: Path) -> bool:
    return bool(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID.is_compressed)


def _dcmtk(tool: str, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    calls = ["-aet", "HOSPITAL", "-aec", "DICOMCLOAK"]
    command = [f"/usr/bin/{tool}", "-S", *calls, *args, "127.0.0.1", str(port)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_round_trip_through_orthanc_restores_the_original_identity_exactly(
    tmp_path: Path, key_file: Path, corpus: Path, serve: Callable[[Path], Serve]
) -> None:
    """deidentify -> Orthanc; findscu by the original Patient ID and movescu back through the gateway."""
    from dicomcloak.testing.restored import compare_trees

    # One is JPEG Lossless: the gateway offers Orthanc every syntax per SOP class for the C-GET, so it comes
    # back as stored, matching the vault record bound to the encoding de-identification wrote.
    files = sorted((corpus / "files").rglob("*.dcm"))
    assert any(_compressed(path) for path in files)
    first = dcmread(files[0], stop_before_pixels=True)
    patient_id, study_uid = str(first.PatientID), str(first.StudyInstanceUID)
    study = [p for p in files if str(dcmread(p, stop_before_pixels=True).StudyInstanceUID) == study_uid]
    originals = tmp_path / "originals"
    originals.mkdir()
    for index, path in enumerate(study):
        expected = dcmread(path)
        # Data Set Trailing Padding is not content (PS3.10 7.2): sanitize (CDR) drops it, nothing restores it.
        expected.pop(0xFFFCFFFC, None)
        expected.save_as(originals / f"{index:03d}.dcm")
    port = free_port()
    hospital_dir = tmp_path / "hospital"
    with orthanc(tmp_path / "orthanc") as pacs, storescp(hospital_dir, ae_title="HOSPITAL") as hospital:
        gateway = serve(_round_trip_config(tmp_path, key_file, port, pacs, hospital))
        assert send(port, files, "DICOMCLOAK") == len(files)
        wait_until(lambda: len(pacs.instances()) == len(files))
        answers = tmp_path / "answers"
        answers.mkdir()
        found = _dcmtk("findscu", port, "-X", "-od", str(answers), "-k", "QueryRetrieveLevel=STUDY",
                       "-k", f"PatientID={patient_id}", "-k", "StudyInstanceUID", "-k", "AccessionNumber")
        assert found.returncode == 0, found.stderr
        answered = [dcmread(path) for path in sorted(answers.glob("rsp*.dcm"))]
        assert study_uid in {str(answer.StudyInstanceUID) for answer in answered}
        assert {str(answer.PatientID) for answer in answered} == {patient_id}
        moved = _dcmtk("movescu", port, "-aem", "HOSPITAL", "-k", "QueryRetrieveLevel=STUDY",
                       "-k", f"StudyInstanceUID={study_uid}")
        assert moved.returncode == 0, moved.stderr
        wait_until(lambda: len(hospital.files()) == len(study))
        assert gateway.stop() == 0
        held = [dcmread(BytesIO(pacs.file(i)), stop_before_pixels=True) for i in pacs.instances()]
        held_ids = {str(ds.PatientID) for ds in held}
        held_studies = {str(ds.StudyInstanceUID) for ds in held}
    # Orthanc never saw the original identity; the hospital got it back exactly.
    assert patient_id not in held_ids and study_uid not in held_studies
    restored = tmp_path / "restored"
    restored.mkdir()
    for index, path in enumerate(hospital.files()):
        shutil.copy(path, restored / f"{index:03d}.dcm")
    matched, total, problems = compare_trees(originals, restored)
    assert (matched, total, problems) == (len(study), len(study), [])

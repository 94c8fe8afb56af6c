"""``reid --jobs`` and ``reid --patient/--study``: the real CLI on real sealed files.

--jobs 2 restores byte for byte what --jobs 1 restores, embedded and vault,
with as many audit events; a selection restores exactly the files of the
patients and studies named, counts the others ``not-selected`` and opens
nothing of theirs in the vault.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicomcloak.audit import AuditLog

RunCli = Callable[..., CompletedProcess[str]]

#: 3 patients x 2 studies x 2 instances; each patient's original ID is planted in its file names too.
PATIENTS = ("MRN-1001-AA", "MRN-2002-BB", "MRN-3003-CC")


def _write(path: Path, patient: str, study: int, index: int) -> None:
    ds = dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.PatientID = patient
    ds.PatientName = f"Doe^{patient}"
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["study", patient, str(study)])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series", patient, str(study)])
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["sop", patient, str(study), str(index)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = index + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _patients_tree(root: Path) -> Path:
    for patient in PATIENTS:
        for study in range(2):
            for index in range(2):
                _write(root / patient / f"study{study}" / f"{index}.dcm", patient, study, index)
    return root


@pytest.fixture
def owner(run_cli: RunCli, tmp_path: Path) -> Path:
    for command in (("keys", "cert", "--no-passphrase"), ("keys", "sealer")):
        result = run_cli(*command, "--out-dir", tmp_path / "owner")
        assert result.returncode == 0, result.stderr
    return tmp_path / "owner"


def _ok(result: CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.dcm"))}


def _events(url: str) -> list[dict[str, Any]]:
    log = AuditLog.open(url)
    try:
        log.verify()
        return log.events()
    finally:
        log.close()


def test_jobs_two_restores_what_jobs_one_restores_byte_for_byte(
    run_cli: RunCli, instance_factory: Callable[..., Path], key_file: Path, owner: Path, tmp_path: Path
) -> None:
    for index in range(60):  # 15 studies of one patient, every third image 256 x 256
        side = 256 if index % 3 == 2 else 0
        instance_factory(tmp_path / "in" / f"s{index // 4}" / f"{index}.dcm", index, side=side)
    vault = f"sqlite:///{tmp_path / 'vault.db'}"
    sealing = ("--recipient", owner / "owner.cert.pem", "--sealer-key", owner / "sealer.key.pem")
    _ok(run_cli("deid", tmp_path / "in", "--out", tmp_path / "out", "--key", key_file, "--vault", vault,
                *sealing, "--layout", "mirror", "--json"))
    modes = {
        "vault": ("--vault", vault, "--key", key_file),
        "embedded": ("--private-key", owner / "owner.key.pem", "--trusted-sealer", owner / "sealer.cert.pem"),
    }
    for mode, args in modes.items():
        restored, events = {}, {}
        for jobs in ("1", "2"):
            back = tmp_path / f"{mode}-{jobs}"
            audit = vault if mode == "vault" else f"sqlite:///{back}.run/audit.db"
            before = len(_events(audit)) if mode == "vault" else 0
            summary = _ok(run_cli("reid", tmp_path / "out", "--out", back, *args, "--jobs", jobs, "--json"))
            assert (summary["written"], summary["jobs"], summary["modes"]) == (60, int(jobs), {mode: 60})
            restored[jobs] = _files(back)
            run_events = _events(audit)[before:]
            events[jobs] = sorted(event["action"] for event in run_events)
            assert [e["facts"]["jobs"] for e in run_events if e["action"] == "reidentify"] == [int(jobs)]
        assert len(restored["1"]) == 60 and restored["2"] == restored["1"], mode
        assert events["2"] == events["1"], mode
        if mode == "vault":  # every restore audited: one open-record per file, and the run's event
            assert events["1"].count("open-record") == 60 and events["1"].count("reidentify") == 1
    first = dcmread(tmp_path / "vault-2" / "s0" / "0.dcm")
    assert first.PatientID == "MRN-4471-XQ" and "EncryptedAttributesSequence" not in first


def _lookup(run_cli: RunCli, vault: str, key: Path, patient_id: str) -> str:
    args = ("--vault", vault, "--key", key, "--patient-id", patient_id, "--json")
    doc = _ok(run_cli("vault", "lookup", *args))
    (found,) = doc["pseudonyms"]
    pseudonym: str = found["pseudonym"]
    return pseudonym


def _headers(root: Path) -> set[tuple[str, str]]:
    """(Patient ID, Study Instance UID) of each file under ``root``."""
    headers = (dcmread(path, stop_before_pixels=True) for path in root.rglob("*.dcm"))
    return {(str(ds.PatientID), str(ds.StudyInstanceUID)) for ds in headers}


def test_patient_and_study_select_exactly_their_files(
    run_cli: RunCli, key_file: Path, tmp_path: Path
) -> None:
    _patients_tree(tmp_path / "in")
    vault = f"sqlite:///{tmp_path / 'vault.db'}"
    _ok(run_cli("deid", tmp_path / "in", "--out", tmp_path / "out", "--key", key_file, "--vault", vault,
                "--json"))
    pseudonyms = {patient: _lookup(run_cli, vault, key_file, patient) for patient in PATIENTS}
    deidentified = _headers(tmp_path / "out")
    assert {patient for patient, _ in deidentified} == set(pseudonyms.values())
    study = sorted(s for p, s in deidentified if p == pseudonyms[PATIENTS[2]])[0]
    original_study = _original_study(vault, key_file, study)
    originals = sorted((tmp_path / "in").rglob("*.dcm"))
    assert len(originals) == 12 and len(_headers(tmp_path / "in")) == 6

    cases: list[tuple[tuple[str, ...], Callable[[str, str], bool]]] = [
        (("--patient", pseudonyms[PATIENTS[1]]), lambda patient, _: patient == PATIENTS[1]),
        (("--study", study), lambda _, uid: uid == original_study),
        (("--patient", pseudonyms[PATIENTS[0]], "--study", study),
         lambda patient, uid: patient == PATIENTS[0] or uid == original_study),
        (("--patient", PATIENTS[0]), lambda *_: False),  # an original ID is no pseudonym: nothing selected
    ]
    for number, (selection, wanted) in enumerate(cases):
        back = tmp_path / f"back{number}"
        before = len(_events(vault))
        summary = _ok(run_cli("reid", tmp_path / "out", "--out", back, "--vault", vault, "--key", key_file,
                              "--jobs", "2", "--json", *selection))
        expected = [p for p in originals if wanted(*_header(p))]
        assert _sops(back.rglob("*.dcm")) == _sops(expected), selection
        assert summary["written"] == len(expected) and summary["not_selected"] == 12 - len(expected)
        assert summary["skipped"] == 12 - len(expected) and summary["quarantined"] == 0
        actions = [event["action"] for event in _events(vault)[before:]]
        assert actions.count("open-record") == len(expected), selection  # nothing of the others opened
        report = json.loads((Path(f"{back}.run") / "latest" / "report.json").read_text())
        assert {e["reason"] for e in report["not_written"]} <= {"not-selected"}
        assert len(report["not_written"]) == 12 - len(expected)
    assert len({len([p for p in originals if wanted(*_header(p))]) for _, wanted in cases}) == 4


def _header(path: Path) -> tuple[str, str]:
    ds = dcmread(path, stop_before_pixels=True)
    return str(ds.PatientID), str(ds.StudyInstanceUID)


def _sops(paths: Iterable[Path]) -> set[str]:
    return {str(dcmread(path, stop_before_pixels=True).SOPInstanceUID) for path in paths}


def _original_study(vault: str, key: Path, study: str) -> str:
    """The original Study Instance UID of a pseudonymous one, from the vault's map (the owner's view)."""
    from dicomcloak.keys import load_keyring
    from dicomcloak.vault import Vault

    with Vault.open(vault, load_keyring(key)) as store:
        original = store.lookup(study)
    assert original is not None
    return original

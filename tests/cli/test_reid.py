"""``deid --recipient/--vault`` then ``reid``: the real CLI on real files, restores exactly, fails closed.

Covers the issue's acceptance for the command line: embedded, vault (SQLite and
PostgreSQL) and both; wrong private key, wrong master key, flipped bit, missing,
swapped and shredded records (each a distinct error, exit 4, nothing written);
rotation; a SEG-like object re-identified through the vault's pseudonym map.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomcloak.audit import AuditLog
from dicomcloak.testing.hostile import with_preamble
from dicomcloak.testing.restored import differences

RunCli = Callable[..., CompletedProcess[str]]
PATIENT_NAME = "Smithers^Waylon"  # planted by tests/conftest.py
PATIENT_ID = "MRN-4471-XQ"

SEAL_EXIT = 4

def _sealing(owner: Path) -> list[str | Path]:
    """deid's embedded sealing: to the owner's certificate, signed by the sealer key beside it."""
    return ["--recipient", owner / "owner.cert.pem", "--sealer-key", owner / "sealer.key.pem"]


def _owning(owner: Path) -> list[str | Path]:
    """reid's embedded mode: the owner's private key, trusting the sealer beside it."""
    return ["--private-key", owner / "owner.key.pem", "--trusted-sealer", owner / "sealer.cert.pem"]



def _by_sop(root: Path) -> dict[str, Path]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in sorted(root.rglob("*.dcm"))}


def _assert_restored(inputs: Path, restored: Path, count: int) -> None:
    originals, backs = _by_sop(inputs), _by_sop(restored)
    assert len(backs) == count and set(backs) <= set(originals)
    for sop, path in backs.items():
        back = dcmread(path)
        assert differences(dcmread(originals[sop]), back) == [], path.name
        assert back.PatientName == PATIENT_NAME and back.PatientID == PATIENT_ID
        assert "EncryptedAttributesSequence" not in back and "DeidentificationMethod" not in back


def _verified_events(database: Path) -> list[dict[str, Any]]:
    """The events of a SQLite audit log, after checking its hash chain."""
    log = AuditLog.open(f"sqlite:///{database}")
    try:
        log.verify()
        return log.events()
    finally:
        log.close()


@pytest.fixture
def owner(run_cli: RunCli, tmp_path: Path) -> Path:
    # The owner's key pair, and the sealer key it trusts, side by side.
    result = run_cli("keys", "cert", "--out-dir", tmp_path / "owner", "--no-passphrase")
    assert result.returncode == 0, result.stderr
    result = run_cli("keys", "sealer", "--out-dir", tmp_path / "owner")
    assert result.returncode == 0, result.stderr
    return tmp_path / "owner"


def _deid(run_cli: RunCli, inputs: Path, out: Path, key: Path, *extra: str | Path) -> None:
    result = run_cli("deid", inputs, "--out", out, "--key", key, "-j", "1", "--json", *extra)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["written"] == len(list(inputs.rglob("*.dcm")))


def test_keys_cert_writes_an_owner_key_pair(owner: Path) -> None:
    assert (owner / "owner.key.pem").stat().st_mode & 0o777 == 0o600
    assert b"BEGIN CERTIFICATE" in (owner / "owner.cert.pem").read_bytes()


def test_embedded_round_trip(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, owner: Path, tmp_path: Path
) -> None:
    _deid(run_cli, dicom_tree, tmp_path / "out", key_file, *_sealing(owner))
    for path in (tmp_path / "out").rglob("*.dcm"):
        assert PATIENT_NAME.encode() not in path.read_bytes()
        assert "EncryptedAttributesSequence" in dcmread(path)
    audit = f"sqlite:///{tmp_path / 'audit.db'}"
    result = run_cli("reid", tmp_path / "out", "--out", tmp_path / "back", *_owning(owner),
                     "--json", "--audit", audit)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["schema"] == "dicomcloak/reid-summary/1" and summary["modes"] == {"embedded": 6}
    _assert_restored(dicom_tree, tmp_path / "back", 6)
    verify = run_cli("audit", "verify", "--vault", audit, "--json")
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["events"] == 1
    report = (tmp_path / "back.run" / "latest" / "report.json").read_text()
    assert PATIENT_NAME not in report and PATIENT_ID not in report


def test_vault_and_embedded_round_trip(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, owner: Path, tmp_path: Path, db_url: str
) -> None:
    _deid(run_cli, dicom_tree, tmp_path / "out", key_file, "--vault", db_url,
          *_sealing(owner))
    _assert_one_seal_event_without_values(db_url)
    for mode in (["--vault", db_url, "--key", key_file], _owning(owner)):
        back = tmp_path / f"back-{mode[0][2:]}"
        result = run_cli("reid", tmp_path / "out", "--out", back, *mode)
        assert result.returncode == 0, result.stderr
        _assert_restored(dicom_tree, back, 6)
    verify = run_cli("audit", "verify", "--vault", db_url)
    assert verify.returncode == 0, verify.stderr


def _assert_one_seal_event_without_values(url: str) -> None:
    """One audit event for the run's single group of six files: counts and pseudonyms, never values."""
    from dicomcloak.audit import AuditLog

    log = AuditLog.open(url)
    try:
        events = log.events()
    finally:
        log.close()
    seals = [event for event in events if event["action"] == "seal"]
    assert len(seals) == 1 and seals[0]["facts"]["records"] == 6
    text = json.dumps(events, default=str)
    assert PATIENT_NAME not in text and PATIENT_ID not in text


def test_wrong_private_key_fails_closed(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, owner: Path, tmp_path: Path
) -> None:
    _deid(run_cli, dicom_tree, tmp_path / "out", key_file, *_sealing(owner))
    other = tmp_path / "other"
    assert run_cli("keys", "cert", "--out-dir", other, "--no-passphrase").returncode == 0
    result = run_cli(
        "reid", tmp_path / "out", "--out", tmp_path / "back", "--private-key", other / "owner.key.pem"
    )
    assert result.returncode == SEAL_EXIT and "seal-wrong-key" in result.stderr
    assert not list((tmp_path / "back").rglob("*.dcm"))
    # The refused attempt is audited in the run directory's own log (no --audit given): code, no values.
    events = _verified_events(tmp_path / "back.run" / "audit.db")
    assert [(event["action"], event["facts"]["reference"]) for event in events] == [
        ("reidentify-refused", "seal-wrong-key")
    ]


def test_embedded_reid_is_audited_in_the_run_directory_by_default(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, owner: Path, tmp_path: Path
) -> None:
    _deid(run_cli, dicom_tree, tmp_path / "out", key_file, *_sealing(owner))
    result = run_cli("reid", tmp_path / "out", "--out", tmp_path / "back", *_owning(owner))
    assert result.returncode == 0, result.stderr
    log = f"sqlite:///{tmp_path / 'back.run' / 'audit.db'}"
    verify = run_cli("audit", "verify", "--vault", log, "--json")
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["events"] == 1


def test_flipped_bit_in_the_ciphertext_fails_closed(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, owner: Path, tmp_path: Path
) -> None:
    _deid(run_cli, dicom_tree, tmp_path / "out", key_file, *_sealing(owner))
    target = sorted((tmp_path / "out").rglob("*.dcm"))[0]
    ds = dcmread(target)
    content = bytearray(ds.EncryptedAttributesSequence[0].EncryptedContent)
    content[len(content) - 40] ^= 0x01  # inside the encrypted content
    ds.EncryptedAttributesSequence[0].EncryptedContent = bytes(content)
    ds.save_as(target)
    result = run_cli("reid", target, "--out", tmp_path / "back", *_owning(owner))
    assert result.returncode == SEAL_EXIT and "seal-tampered" in result.stderr
    assert not list((tmp_path / "back").rglob("*.dcm"))


def test_vault_failures_are_distinct_and_write_nothing(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    vault = tmp_path / "vault.db"
    _deid(run_cli, dicom_tree, tmp_path / "out", key_file, "--vault", f"sqlite:///{vault}")
    outputs = sorted((tmp_path / "out").rglob("*.dcm"))

    def reid(target: Path, url: str, key: Path) -> str:
        back = tmp_path / "back"
        result = run_cli("reid", target, "--out", back, "--vault", url, "--key", key)
        assert result.returncode == SEAL_EXIT, result.stderr
        assert not list(back.rglob("*.dcm"))
        return result.stderr

    other_key = tmp_path / "other.key"
    assert run_cli("keys", "init", "--out", other_key).returncode == 0
    assert "wrong-master-key" in reid(outputs[0], f"sqlite:///{vault}", other_key)
    assert "vault-record-missing" in reid(outputs[0], f"sqlite:///{tmp_path / 'empty.db'}", key_file)
    with sqlite3.connect(vault) as db:  # swap two instances' sealed records
        query = "SELECT study, instance, sealed FROM dicomcloak_bound_records ORDER BY instance"
        rows = db.execute(query).fetchall()
        (s1, i1, b1), (s2, i2, b2) = rows[0], rows[1]
        update = "UPDATE dicomcloak_bound_records SET sealed=? WHERE study=? AND instance=?"
        db.execute(update, (b2, s1, i1))
        db.execute(update, (b1, s2, i2))
    swapped = next(p for p in outputs if str(dcmread(p).SOPInstanceUID) == i1)
    assert "vault-record-tampered" in reid(swapped, f"sqlite:///{vault}", key_file)
    study = str(dcmread(outputs[-1]).StudyInstanceUID)
    shred = run_cli("vault", "shred", "--vault", f"sqlite:///{vault}", "--study", study, "--key", key_file)
    assert shred.returncode == 0, shred.stderr
    assert "vault-key-shredded" in reid(outputs[-1], f"sqlite:///{vault}", key_file)


def test_rotation_keeps_records_and_pseudonyms(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    _deid(run_cli, dicom_tree, tmp_path / "out", key_file, "--vault", url)
    before = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.dcm"))
    old = json.loads(key_file.read_text())
    old_ids = [k["id"] for k in old.get("wrapping_keys", [])]
    assert run_cli("keys", "rotate", "--key", key_file).returncode == 0
    assert run_cli("keys", "rewrap", "--vault", url, "--key", key_file).returncode == 0
    for key_id in old_ids:
        retired = run_cli("keys", "retire", key_id, "--vault", url, "--key", key_file)
        assert retired.returncode == 0, retired.stderr
    result = run_cli("reid", tmp_path / "out", "--out", tmp_path / "back", "--vault", url, "--key", key_file)
    assert result.returncode == 0, result.stderr
    _assert_restored(dicom_tree, tmp_path / "back", 6)
    _deid(run_cli, dicom_tree, tmp_path / "again", key_file)
    assert sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*.dcm")) == before


def _seg_like(deidentified: Dataset) -> Dataset:
    """A third party's object on de-identified data: references only, nested at several depths."""
    seg = Dataset()
    seg.file_meta = FileMetaDataset()
    seg.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    seg.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    seg.SOPInstanceUID = generate_uid()
    seg.file_meta.MediaStorageSOPClassUID = seg.SOPClassUID
    seg.file_meta.MediaStorageSOPInstanceUID = seg.SOPInstanceUID
    seg.PatientName = deidentified.PatientName
    seg.PatientID = deidentified.PatientID
    seg.StudyInstanceUID = deidentified.StudyInstanceUID
    seg.SeriesInstanceUID = generate_uid()
    seg.FrameOfReferenceUID = deidentified.FrameOfReferenceUID
    instance = Dataset()
    instance.ReferencedSOPClassUID = deidentified.SOPClassUID
    instance.ReferencedSOPInstanceUID = deidentified.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = deidentified.SeriesInstanceUID
    series.ReferencedInstanceSequence = Sequence([instance])
    seg.ReferencedSeriesSequence = Sequence([series])
    return seg


def test_a_seg_like_object_is_reidentified_through_the_vault(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path, db_url: str
) -> None:
    _deid(run_cli, dicom_tree, tmp_path / "out", key_file, "--vault", db_url)
    deidentified = dcmread(sorted((tmp_path / "out").rglob("*.dcm"))[0])
    # InstanceNumber is kept by the Basic Profile: it finds the input this output came from.
    original = next(dcmread(p) for p in dicom_tree.rglob("*.dcm")
                    if dcmread(p).InstanceNumber == deidentified.InstanceNumber)
    seg = _seg_like(deidentified)
    (tmp_path / "seg").mkdir()
    seg.save_as(tmp_path / "seg" / "seg.dcm", enforce_file_format=True)
    back_dir = tmp_path / "back"
    result = run_cli("reid", tmp_path / "seg", "--out", back_dir, "--vault", db_url, "--key", key_file)
    assert result.returncode == 0, result.stderr
    back = dcmread(next((tmp_path / "back").rglob("*.dcm")))
    assert back.StudyInstanceUID == original.StudyInstanceUID
    assert back.FrameOfReferenceUID == original.FrameOfReferenceUID
    assert back.PatientID == original.PatientID and back.PatientName == original.PatientName
    series = back.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == original.SeriesInstanceUID
    assert series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    assert back.SOPInstanceUID == seg.SOPInstanceUID  # its own identity is not the vault's


def test_an_unknown_object_fails_closed(
    run_cli: RunCli, key_file: Path, tmp_path: Path, instance_factory: Callable[..., Path]
) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    seg = _seg_like(dcmread(instance_factory(tmp_path / "lone" / "x.dcm", 99)))
    (tmp_path / "seg").mkdir()
    seg.save_as(tmp_path / "seg" / "seg.dcm", enforce_file_format=True)
    result = run_cli("reid", tmp_path / "seg", "--out", tmp_path / "back", "--vault", url, "--key", key_file)
    assert result.returncode == SEAL_EXIT and "vault-nothing-mapped" in result.stderr


def test_reid_needs_exactly_one_mode(run_cli: RunCli, dicom_tree: Path, tmp_path: Path) -> None:
    result = run_cli("reid", dicom_tree, "--out", tmp_path / "back")
    assert result.returncode == 2 and "reid-mode" in result.stderr


def test_deid_never_writes_unsealed_outputs(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    other = tmp_path / "other.key"
    assert run_cli("keys", "init", "--out", other).returncode == 0
    _deid(run_cli, dicom_tree, tmp_path / "first", other, "--vault", url)  # the vault now belongs to "other"
    for jobs in ("1", "2"):
        out = tmp_path / f"out-{jobs}"
        result = run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--vault", url, "-j", jobs)
        assert result.returncode == SEAL_EXIT and "wrong-master-key" in result.stderr
        assert not list(out.rglob("*.dcm"))


def test_reid_sanitizes_what_comes_back(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, owner: Path, tmp_path: Path
) -> None:
    """Returned files are untrusted: an executable preamble is quarantined (a preamble is outside the
    binding digest: the others restore); a file whose header changed after de-identification (a
    private payload added) is refused as a seal made for another object, nothing written for it."""
    _deid(run_cli, dicom_tree, tmp_path / "out", key_file, *_sealing(owner))
    first, *rest = sorted((tmp_path / "out").rglob("*.dcm"))
    first.write_bytes(with_preamble("pe", first.read_bytes()))
    result = run_cli("reid", tmp_path / "out", "--out", tmp_path / "back", *_owning(owner), "--json")
    assert result.returncode == 1, result.stderr  # finished, with a quarantined input
    summary = json.loads(result.stdout)
    assert summary["reasons"] == {"preamble-executable": 1}
    assert summary["written"] == len(rest)
    _assert_restored(dicom_tree, tmp_path / "back", len(rest))
    ds = dcmread(rest[0])
    ds.private_block(0x0099, "PAYLOAD", create=True).add_new(0x01, "OB", b"\x7fELF" + bytes(64))
    ds.save_as(rest[0])
    result = run_cli("reid", rest[0], "--out", tmp_path / "back2", *_owning(owner))
    assert result.returncode == SEAL_EXIT and "seal-mismatch" in result.stderr
    assert not list((tmp_path / "back2").rglob("*.dcm"))


def test_embedded_only_deid_is_audited_in_the_run_directory(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, owner: Path, tmp_path: Path
) -> None:
    """No vault to audit each group in: one seal event per run, counts only, in RUN_DIR/audit.db."""
    _deid(run_cli, dicom_tree, tmp_path / "out", key_file, *_sealing(owner))
    events = _verified_events(tmp_path / "out.run" / "audit.db")
    assert [event["action"] for event in events] == ["seal"]
    sealer = events[0]["facts"]["sealer"]  # who sealed: the sealer key's fingerprint, 16 hex digits
    assert len(sealer) == 16 and int(sealer, 16) >= 0
    facts = {"mode": "embedded", "recipients": 1, "files": 6, "sealed": 6, "quarantined": 0, "sealer": sealer}
    assert events[0]["facts"] == facts
    assert PATIENT_NAME not in str(events) and PATIENT_ID not in str(events)

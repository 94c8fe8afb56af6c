"""Issue 13 item 2 on the real command line: spliced and forged embedded seals are refused (exit 4).

The attacks: the Encrypted Attributes Sequence of patient A's de-identified
file copied into patient B's (``reid`` restored B as A, exit 0); a seal made
by anyone holding the owner's public certificate, for a made-up identity,
spliced into a victim's file (``reid`` restored the made-up identity).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset

RunCli = Callable[..., CompletedProcess[str]]
SEAL_EXIT = 4
EAS = 0x04000500


@pytest.fixture
def owner(run_cli: RunCli, tmp_path: Path) -> Path:
    for command in (("cert", "--no-passphrase"), ("sealer",)):
        result = run_cli("keys", *command, "--out-dir", tmp_path / "owner")
        assert result.returncode == 0, result.stderr
    return tmp_path / "owner"


def _deid_one(
    run_cli: RunCli, factory: Callable[..., Path], tmp_path: Path, key: Path, owner: Path, name: str
) -> Path:
    """One instance of patient ``name`` de-identified with embedded sealing (sealer key from the
    environment); its output."""
    path = factory(tmp_path / name / "in" / "img.dcm", len(name))
    ds = dcmread(path)
    ds.PatientName, ds.PatientID = name, f"ID-{name[:5]}"
    ds.save_as(path, enforce_file_format=True)
    env = {"DICOMCLOAK_SEALER_KEY": str(owner / "sealer.key.pem")}
    out = tmp_path / name / "out"
    result = run_cli("deid", path.parent, "--out", out, "--key", key, "-j", "1", "--recipient",
                     owner / "owner.cert.pem", env=env)
    assert result.returncode == 0, result.stderr
    (output,) = out.rglob("*.dcm")
    return output


def _owning(owner: Path) -> list[str | Path]:
    return ["--private-key", owner / "owner.key.pem", "--trusted-sealer", owner / "sealer.cert.pem"]


def _splice(target: Path, element: object) -> None:
    """Put ``element`` as (0400,0500) in ``target``, changing no other byte (dicomcloak's encoder)."""
    ds = read_dataset(target.read_bytes())
    before = encode_dataset(ds)
    assert before == target.read_bytes()  # the encoder writes an output back byte for byte
    ds[EAS] = element
    target.write_bytes(encode_dataset(ds))


def test_a_seal_copied_into_another_patients_file_is_refused(
    run_cli: RunCli, instance_factory: Callable[..., Path], key_file: Path, owner: Path, tmp_path: Path
) -> None:
    alpha = _deid_one(run_cli, instance_factory, tmp_path, key_file, owner, "Alpha^Ann")
    bravo = _deid_one(run_cli, instance_factory, tmp_path, key_file, owner, "Bravo^Bob")
    result = run_cli("reid", bravo, "--out", tmp_path / "bravo-back", *_owning(owner))
    assert result.returncode == 0, result.stderr
    (restored,) = (tmp_path / "bravo-back").rglob("*.dcm")
    assert dcmread(restored).PatientName == "Bravo^Bob"
    _splice(bravo, read_dataset(alpha.read_bytes())[EAS])
    for trust in (_owning(owner), ["--private-key", owner / "owner.key.pem", "--accept-unverified"]):
        back = tmp_path / "back"
        result = run_cli("reid", bravo, "--out", back, *trust)
        assert result.returncode == SEAL_EXIT, result.stderr
        assert result.stderr.startswith("error[seal-mismatch]"), result.stderr
        assert not list(back.rglob("*.dcm"))


def _forge(victim: Path, owner: Path, name: str, signer_pem: bytes | None) -> None:
    """An attacker's seal: a made-up identity sealed to the owner's public certificate, bound to the
    victim's public SOP Instance UID and binding digest, spliced into the victim's file."""
    from dicomcloak.api import Deidentifier, Sealer
    from dicomcloak.io.binding import binding_digest
    from dicomcloak.keys import ProjectKey
    from dicomcloak.keys.cms import load_certificate
    from dicomcloak.keys.sealing import load_sealer_key
    from dicomcloak.policy.model import Policy

    written = read_dataset(victim.read_bytes())
    made_up: Dataset = dcmread(victim)
    made_up.PatientName, made_up.PatientID = name, "FAKE-0001"
    made_up = read_dataset(encode_dataset(made_up))
    outcome = Deidentifier(Policy(), ProjectKey.generate(ephemeral=True)).deidentify(made_up)
    signer = None if signer_pem is None else load_sealer_key(signer_pem, "attacker")
    sealer = Sealer([load_certificate((owner / "owner.cert.pem").read_bytes(), "c")], signer=signer)
    sealed = sealer.capture(made_up, outcome)
    _splice(victim, sealer.seal_element(sealed, str(written.SOPInstanceUID), binding_digest(written)))


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed-by-an-untrusted-key"])
def test_a_forged_seal_is_refused_by_default(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, owner: Path, tmp_path: Path, signed: bool
) -> None:
    env = {"DICOMCLOAK_SEALER_KEY": str(owner / "sealer.key.pem")}
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "-j", "1",
                     "--recipient", owner / "owner.cert.pem", env=env)
    assert result.returncode == 0, result.stderr
    victim = sorted((tmp_path / "out").rglob("*.dcm"))[0]
    attacker = tmp_path / "attacker"
    assert run_cli("keys", "sealer", "--out-dir", attacker).returncode == 0
    _forge(victim, owner, "Made^Up", (attacker / "sealer.key.pem").read_bytes() if signed else None)
    result = run_cli("reid", victim, "--out", tmp_path / "back", *_owning(owner))
    assert result.returncode == SEAL_EXIT, result.stderr
    assert result.stderr.startswith("error[seal-unverified]"), result.stderr
    assert not list((tmp_path / "back").rglob("*.dcm"))
    # --accept-unverified restores what anyone could have made, and says so in the summary
    result = run_cli("reid", victim, "--out", tmp_path / "back2", "--private-key", owner / "owner.key.pem",
                     "--accept-unverified", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["unverified"], summary["unbound"], summary["sealers"]) == (1, 0, {})
    (restored,) = (tmp_path / "back2").rglob("*.dcm")
    assert dcmread(restored).PatientName == "Made^Up"


def test_the_reid_summary_names_who_sealed(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, owner: Path, tmp_path: Path
) -> None:
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "-j", "1",
                     "--recipient", owner / "owner.cert.pem", "--sealer-key", owner / "sealer.key.pem")
    assert result.returncode == 0, result.stderr
    result = run_cli("reid", tmp_path / "out", "--out", tmp_path / "back", *_owning(owner), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    ((sealer, count),) = summary["sealers"].items()
    assert count == 6 and len(sealer) == 16 and (summary["unverified"], summary["unbound"]) == (0, 0)
    result = run_cli("reid", tmp_path / "out", "--out", tmp_path / "back2", *_owning(owner))
    assert f"signed by           {sealer}: 6" in result.stdout


def test_recipient_without_a_sealer_key_is_a_usage_error(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, owner: Path, tmp_path: Path
) -> None:
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file,
                     "--recipient", owner / "owner.cert.pem")
    assert result.returncode == 2 and result.stderr.startswith("error[sealer-key-required]"), result.stderr
    assert "keys sealer" in result.stderr and not (tmp_path / "out").exists()
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file,
                     "--recipient", owner / "owner.cert.pem", "--sealer-key", owner / "sealer.cert.pem")
    assert result.returncode == 3 and result.stderr.startswith("error[sealer-key-invalid]"), result.stderr
    assert not (tmp_path / "out").exists()


def test_keys_sealer_writes_a_private_key_and_a_certificate(run_cli: RunCli, owner: Path) -> None:
    assert (owner / "sealer.key.pem").stat().st_mode & 0o777 == 0o600
    assert (owner / "sealer.cert.pem").stat().st_mode & 0o777 == 0o644
    assert b"BEGIN CERTIFICATE" in (owner / "sealer.cert.pem").read_bytes()
    again = run_cli("keys", "sealer", "--out-dir", owner)
    assert again.returncode == 2 and "cert-exists" in again.stderr
    assert os.access(owner / "sealer.key.pem", os.R_OK)

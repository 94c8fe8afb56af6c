"""``dicomcloak reid`` (sanitize, then restore) gives back cleaned images byte for byte, syntax included.

The de-identified, cleaned and sealed files are made through the API (the
pixel stage is wired into ``deid`` separately); re-identification is the real
command line, embedded (``--private-key``) and vault (``--vault``, SQLite and
PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from pydicom import dcmread

from dicomcloak.api import Deidentifier, Sealer
from dicomcloak.cli.vault import load_keyring_from
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset_bound
from dicomcloak.keys import load_key_file
from dicomcloak.keys.cms import load_certificate
from dicomcloak.keys.sealing import load_sealer_key
from dicomcloak.pixels.frames import mark_cleaned
from dicomcloak.policy.model import Policy
from dicomcloak.testing.pixelcases import draw_box, path_of
from dicomcloak.testing.restored import differences
from dicomcloak.vault import Vault, VaultRecord

RunCli = Callable[..., CompletedProcess[str]]
#: Native (regions in a vault), JPEG baseline written native (30 frames), JPEG 2000 re-encoded.
NAMES = ("US1_UNCR.dcm", "examples_ybr_color.dcm", "US1_J2KR.dcm")


def _deidentify(key_file: Path, out: Path, sealer: Sealer) -> list[VaultRecord]:
    deid = Deidentifier(Policy(), load_key_file(key_file))
    records = []
    for name in NAMES:
        source = read_dataset(path_of(name).read_bytes())
        outcome = deid.deidentify(source)
        draw_box(outcome.dataset)
        mark_cleaned(outcome.dataset)
        sealed = sealer.seal(source, outcome, pixels=True)
        parts, binding = encode_dataset_bound(outcome.dataset)
        (out / name).write_bytes(b"".join(parts))
        records.append(VaultRecord("PAT", outcome.study_uid, outcome.sop_instance_uid, sealed.payload,
                                   sealed.uid_pairs, binding))
    return records


def _assert_restored(back: Path) -> None:
    for name in NAMES:
        original, restored = dcmread(path_of(name)), dcmread(back / name)
        assert restored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID, name
        assert restored.PixelData == original.PixelData, name
        assert differences(original, restored) == [], name


def test_reid_with_the_private_key(run_cli: RunCli, key_file: Path, tmp_path: Path) -> None:
    assert run_cli("keys", "cert", "--out-dir", tmp_path / "owner", "--no-passphrase").returncode == 0
    assert run_cli("keys", "sealer", "--out-dir", tmp_path / "sealer").returncode == 0
    certificate = load_certificate((tmp_path / "owner" / "owner.cert.pem").read_bytes(), "cert")
    signer = load_sealer_key((tmp_path / "sealer" / "sealer.key.pem").read_bytes(), "sealer.key.pem")
    (tmp_path / "out").mkdir()
    _deidentify(key_file, tmp_path / "out", Sealer([certificate], signer=signer))
    result = run_cli("reid", tmp_path / "out", "--out", tmp_path / "back", "--private-key",
                     tmp_path / "owner" / "owner.key.pem", "--trusted-sealer",
                     tmp_path / "sealer" / "sealer.cert.pem", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["modes"] == {"embedded": len(NAMES)}
    _assert_restored(tmp_path / "back")


@pytest.mark.slow
def test_reid_from_the_vault(run_cli: RunCli, key_file: Path, tmp_path: Path, db_url: str) -> None:
    (tmp_path / "out").mkdir()
    records = _deidentify(key_file, tmp_path / "out", Sealer(vault=True))
    with Vault.open(db_url, load_keyring_from(key_file)) as vault:
        vault.seal_records(records)
    result = run_cli("reid", tmp_path / "out", "--out", tmp_path / "back", "--vault", db_url, "--key",
                     key_file, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["modes"] == {"vault": len(NAMES)}
    _assert_restored(tmp_path / "back")

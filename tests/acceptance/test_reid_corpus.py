"""Acceptance (issue 4): reid(deid(x)) equals x on the synthetic corpus, embedded, vault (SQLite and
PostgreSQL) and both, through the real CLI with worker processes (sealing on their commit threads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomcloak.testing.restored import differences

from .conftest import Shared, run_cli  # type: ignore[import-not-found]

pytestmark = [pytest.mark.acceptance, pytest.mark.slow]

def _sealing(owner: Path) -> list[str | Path]:
    """deid's embedded sealing: to the owner's certificate, signed by the sealer key beside it."""
    return ["--recipient", owner / "owner.cert.pem", "--sealer-key", owner / "sealer.key.pem"]


def _owning(owner: Path) -> list[str | Path]:
    """reid's embedded mode: the owner's private key, trusting the sealer beside it."""
    return ["--private-key", owner / "owner.key.pem", "--trusted-sealer", owner / "sealer.cert.pem"]



def _owner(shared: Shared) -> Path:
    def build(target: Path) -> None:
        result = run_cli("keys", "cert", "--out-dir", target, "--no-passphrase")
        assert result.returncode == 0, result.stderr
        result = run_cli("keys", "sealer", "--out-dir", target)
        assert result.returncode == 0, result.stderr

    return shared.get("owner", build)


def _originals(corpus: Path) -> dict[str, Path]:
    paths = (corpus / "files").rglob("*.dcm")
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in paths}


def _deid_reid(
    shared: Shared, tmp_path: Path, deid_args: list[str | Path], reid_args: list[str | Path]
) -> None:
    key = shared.key("key-a")
    out, back = tmp_path / "out", tmp_path / "back"
    result = run_cli("deid", shared.corpus / "files", "--out", out, "--key", key, "--jobs", "2", "--json",
                     *deid_args)
    assert result.returncode in (0, 1), result.stderr
    summary = json.loads(result.stdout)
    assert summary["written"] >= 100
    restored = run_cli("reid", out, "--out", back, "--json", *reid_args)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["written"] == summary["written"]
    originals = _originals(shared.corpus)
    checked = 0
    for path in sorted(back.rglob("*.dcm")):
        ds = dcmread(path)
        assert differences(dcmread(originals[str(ds.SOPInstanceUID)]), ds) == [], path.name
        checked += 1
    assert checked == summary["written"]


def test_embedded(shared: Shared, tmp_path: Path) -> None:
    owner = _owner(shared)
    _deid_reid(shared, tmp_path, _sealing(owner), _owning(owner))


def test_vault_and_both(shared: Shared, tmp_path: Path, db_url: str) -> None:
    owner = _owner(shared)
    key = shared.key("key-a")
    _deid_reid(shared, tmp_path / "vault", ["--vault", db_url], ["--vault", db_url, "--key", key])
    both = ["--vault", db_url, *_sealing(owner)]
    _deid_reid(shared, tmp_path / "both-embedded", both, _owning(owner))
    _deid_reid(shared, tmp_path / "both-vault", both, ["--vault", db_url, "--key", key])

"""Errors of the environment (a run directory that is a file, an output that is a file) are typed, exit 3.

Never ``internal-error``: each names the directory the operator chose and how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

RunCli = Callable[..., CompletedProcess[str]]

def _sealing(owner: Path) -> list[str | Path]:
    """deid's embedded sealing: to the owner's certificate, signed by the sealer key beside it."""
    return ["--recipient", owner / "owner.cert.pem", "--sealer-key", owner / "sealer.key.pem"]


def _owning(owner: Path) -> list[str | Path]:
    """reid's embedded mode: the owner's private key, trusting the sealer beside it."""
    return ["--private-key", owner / "owner.key.pem", "--trusted-sealer", owner / "sealer.cert.pem"]



@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("a file where a directory must go")
    return path


def _commands(tree: Path, key: Path, owner: Path, tmp_path: Path, run_dir: Path) -> list[tuple[object, ...]]:
    vault = f"sqlite:///{tmp_path / 'vault.db'}"
    return [
        ("deid", tree, "--out", tmp_path / "o1", "--key", key, "-j", "1", "--run-dir", run_dir),
        ("deid", tree, "--out", tmp_path / "o2", "--key", key, "-j", "2", "--run-dir", run_dir),
        ("deid", tree, "--out", tmp_path / "o3", "--key", key, "--run-dir", run_dir,
         *_sealing(owner)),
        ("sanitize", tree, "--out", tmp_path / "o4", "--run-dir", run_dir),
        ("reid", tree, "--out", tmp_path / "o5", *_owning(owner),
         "--run-dir", run_dir),
        ("reid", tree, "--out", tmp_path / "o6", "--vault", vault, "--key", key, "--run-dir", run_dir),
    ]


@pytest.mark.parametrize("where", ["the run dir", "inside the run dir"])
def test_a_run_dir_that_is_a_file(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path, blocker: Path, where: str
) -> None:
    owner = tmp_path / "owner"
    assert run_cli("keys", "cert", "--out-dir", owner, "--no-passphrase").returncode == 0
    assert run_cli("keys", "sealer", "--out-dir", owner).returncode == 0
    run_dir = blocker if where == "the run dir" else blocker / "run"
    for command in _commands(dicom_tree, key_file, owner, tmp_path, run_dir):
        result = run_cli(*command)
        assert result.returncode == 3, (command[0], result.stderr)
        assert result.stderr.startswith("error[output-unwritable]: "), result.stderr
        assert str(run_dir) in result.stderr and "--run-dir" in result.stderr
    assert not list(tmp_path.glob("o[0-9]"))  # refused before any output directory was made


def test_an_output_that_is_a_file(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path, blocker: Path
) -> None:
    for command in (
        ("deid", dicom_tree, "--out", blocker, "--key", key_file),
        ("sanitize", dicom_tree, "--out", blocker),
        ("reid", dicom_tree, "--out", blocker, "--vault", f"sqlite:///{tmp_path / 'v.db'}",
         "--key", key_file),
    ):
        result = run_cli(*command)
        assert result.returncode == 3, (command[0], result.stderr)
        assert result.stderr.startswith("error[output-unwritable]: "), result.stderr
        # Refused before a run was recorded: fixing the path and running again is not "made differently".
        assert not (tmp_path / "a-file.run" / "runs").exists()

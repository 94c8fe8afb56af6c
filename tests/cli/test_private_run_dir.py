"""The run directory and the quarantine hold originals: private whatever the umask; names stay inside them.

Issue 13, item 5. Run with umask 000 (the worst an operator's shell can have),
every directory dicomcloak makes in the run directory and the quarantine is
0700 and every file 0600. A quarantined input's reason file names the copy by
its path relative to the quarantine (where the original, and its name, are
anyway), never by the input's absolute path; the report, the events, the run
record and the terminal name no input at all (input names often hold patient
names).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CLI = Path(sys.executable).with_name("dicomcloak")
NAME_IN_PATH = "DOE_JOHN_MRN1234567"


def _run_with_umask(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"}
    return subprocess.run(
        [str(CLI), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
        check=False, preexec_fn=lambda: os.umask(0),
    )


def _modes(root: Path) -> dict[str, str]:
    paths = [root, *root.rglob("*")]
    return {p.relative_to(root).as_posix(): f"{p.stat().st_mode & 0o777:04o}" for p in paths if p.exists()}


@pytest.fixture
def inputs(tmp_path: Path, instance_factory: Callable[..., Path]) -> Path:
    """Two good instances and one that is not DICOM, in folders named as a PACS export names them."""
    root = tmp_path / "in"
    for index in range(2):
        instance_factory(root / NAME_IN_PATH / f"img{index}.dcm", index)
    (root / NAME_IN_PATH / "scan of DOE JOHN.dcm").write_bytes(b"not a DICOM file at all")
    return root


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_run_dir_and_quarantine_are_private_with_umask_000(
    inputs: Path, key_file: Path, tmp_path: Path, jobs: str
) -> None:
    result = _run_with_umask("deid", inputs, "--out", "out", "--key", key_file, "--jobs", jobs, cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # one input quarantined
    modes = _modes(tmp_path / "out.run")
    assert "quarantine/in/DOE_JOHN_MRN1234567/scan of DOE JOHN.dcm.reason.json" in modes
    directories = {path: mode for path, mode in modes.items() if (tmp_path / "out.run" / path).is_dir()}
    files = {path: mode for path, mode in modes.items() if path not in directories}
    assert set(directories.values()) == {"0700"}, directories
    assert set(files.values()) == {"0600"}, files
    assert ".dicomcloak-tmp" not in " ".join(modes)  # the staging directories went with the run


def test_embedded_sealing_makes_its_run_dir_private_too(
    inputs: Path, key_file: Path, tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    assert run_cli("keys", "cert", "--out-dir", tmp_path / "owner", "--no-passphrase").returncode == 0
    assert run_cli("keys", "sealer", "--out-dir", tmp_path / "owner").returncode == 0
    result = _run_with_umask("deid", inputs, "--out", "out", "--key", key_file, "--jobs", "1",
                             "--recipient", tmp_path / "owner" / "owner.cert.pem",
                             "--sealer-key", tmp_path / "owner" / "sealer.key.pem", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    modes = _modes(tmp_path / "out.run")
    assert modes["."] == "0700" and modes["audit.db"] == "0600"


def test_names_stay_inside_the_quarantine(inputs: Path, key_file: Path, tmp_path: Path) -> None:
    result = _run_with_umask("deid", inputs, "--out", "out", "--key", key_file, "--jobs", "2", "--json",
                             cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    quarantine = tmp_path / "out.run" / "quarantine"
    (reason_file,) = quarantine.rglob("*.reason.json")
    reason = json.loads(reason_file.read_text())
    copy = reason_file.with_name(reason_file.name.removesuffix(".reason.json"))
    assert reason["input"] == copy.relative_to(quarantine).as_posix()
    assert reason["reason"] == "not-dicom"
    assert str(tmp_path) not in reason_file.read_text()  # never the input's absolute path
    outside = result.stdout + result.stderr
    for path in (tmp_path / "out.run").rglob("*"):
        if path.is_file() and quarantine not in path.parents and path.suffix != ".db":
            outside += path.read_text("utf-8")
    assert NAME_IN_PATH not in outside and "DOE" not in outside
    report = json.loads((tmp_path / "out.run" / "latest" / "report.json").read_text())
    (entry,) = report["not_written"]
    assert entry["status"] == "quarantined" and isinstance(entry["index"], int)


def test_the_reason_names_the_copy_even_when_the_name_was_defused(
    key_file: Path, tmp_path: Path, instance_factory: Callable[..., Path]
) -> None:
    root = tmp_path / "in"
    instance_factory(root / "good.dcm", 0)
    (root / "DOE\tJOHN.dcm").write_bytes(b"not a DICOM file at all")  # a control character: defused
    result = _run_with_umask("deid", root, "--out", "out", "--key", key_file, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    quarantine = tmp_path / "out.run" / "quarantine"
    (reason_file,) = quarantine.rglob("*.reason.json")
    copy = reason_file.with_name(reason_file.name.removesuffix(".reason.json"))
    assert copy.is_file() and "\t" not in copy.name
    assert json.loads(reason_file.read_text())["input"] == copy.relative_to(quarantine).as_posix()

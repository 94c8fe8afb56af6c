"""``dicomcloak keys init``: mode 0600, prints the id never the secret, refuses to overwrite."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

RunCli = Callable[..., CompletedProcess[str]]


def test_keys_init_writes_0600_and_prints_only_the_id(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "k" / "project.key"
    result = run_cli("keys", "init", "--out", path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert f"key id: {doc['key_id']}" in result.stdout
    assert doc["secret"] not in result.stdout + result.stderr


def test_keys_init_refuses_to_overwrite(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "project.key"
    assert run_cli("keys", "init", "--out", path).returncode == 0
    before = path.read_bytes()
    result = run_cli("keys", "init", "--out", path)
    assert result.returncode == 2
    assert "error[key-file-exists]" in result.stderr
    assert path.read_bytes() == before

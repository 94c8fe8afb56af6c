"""``dicomcloak policy explain`` and ``dicomcloak verify`` through the real console script."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

RunCli = Callable[..., CompletedProcess[str]]


def test_policy_explain_text_and_json(run_cli: RunCli) -> None:
    text = run_cli("policy", "explain")
    assert text.returncode == 0, text.stderr
    assert "(0010,0010)" in text.stdout
    as_json = run_cli("policy", "explain", "--option", "retain-uids", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)


def test_policy_explain_bad_file_exits_2(run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml\n")
    result = run_cli("policy", "explain", "--policy", bad)
    assert result.returncode == 2
    assert result.stderr.startswith("error[")


def test_verify_clean_output_exits_0(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--jobs", "1").returncode == 0
    result = run_cli("verify", dicom_tree, out, "--key", key_file)
    assert result.returncode == 0, result.stdout + result.stderr
    as_json = run_cli("verify", dicom_tree, out, "--key", key_file, "--json")
    assert json.loads(as_json.stdout)


def test_verify_finds_leak_exits_1(run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path) -> None:
    # The originals themselves, offered as "output", leak everything.
    result = run_cli("verify", dicom_tree, dicom_tree, "--key", key_file)
    assert result.returncode == 1, result.stdout + result.stderr


def test_verify_works_with_the_address_space_capped_far_below_the_read_limit(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    """``ulimit -v`` (shared clusters, strict overcommit): reading once asked for the whole 4 GiB limit."""
    out = tmp_path / "out"
    assert run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--jobs", "1").returncode == 0
    result = run_cli("verify", dicom_tree, out, "--key", key_file, address_space=3 << 30)
    assert result.returncode == 0, result.stdout + result.stderr

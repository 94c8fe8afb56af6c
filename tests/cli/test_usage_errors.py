"""Click's usage errors print as ours: one ``error[usage]`` line and a hint, exit 2; help still works."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

RunCli = Callable[..., CompletedProcess[str]]


@pytest.mark.parametrize(
    ("args", "message", "command"),
    [
        (("deid", "in", "--out", "o", "--bogus"), "No such option: --bogus", "dicomcloak deid"),
        (("deid", "--out", "o"), "Missing argument 'INPUT...' (or --from-list FILE)", "dicomcloak deid"),
        (("deid", "x", "--out", "o", "--layout", "up"), "Invalid value for '--layout'", "dicomcloak deid"),
        (("deid", "in", "--out", "o", "--jobs", "0"), "Invalid value for '--jobs'", "dicomcloak deid"),
        (("sanitize", "in"), "Missing option '--out'.", "dicomcloak sanitize"),
        (("policy", "explain", "-o", "keep-all"), "'keep-all' is not one of", "dicomcloak policy explain"),
        (("keys", "init"), "Missing option '--out'.", "dicomcloak keys init"),
        (("vault", "shred"), "Missing option '--vault'.", "dicomcloak vault shred"),
        (("frobnicate",), "No such command 'frobnicate'.", "dicomcloak"),
        (("--bogus",), "No such option: --bogus", "dicomcloak"),
    ],
)
def test_usage_errors_are_one_line_and_a_hint(
    run_cli: RunCli, args: tuple[str, ...], message: str, command: str
) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    first, hint = result.stderr.splitlines()
    assert first.startswith("error[usage]: ") and message in first
    assert hint == f"  hint: see '{command} --help'"


def test_help_still_prints_help(run_cli: RunCli) -> None:
    for args in (("--help",), ("deid", "--help"), ("policy", "explain", "--help")):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout and "error[" not in result.stdout + result.stderr
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("dicomcloak ")


def test_a_group_without_a_command_prints_its_help(run_cli: RunCli) -> None:
    for args in ((), ("keys",), ("policy",)):
        result = run_cli(*args)
        assert result.returncode == 2
        assert "Usage:" in result.stdout + result.stderr and "error[" not in result.stderr


def test_our_own_usage_errors_keep_their_reference(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("deid", tmp_path / "absent", "--out", tmp_path / "out", "--ephemeral-key")
    assert result.returncode == 2 and result.stderr.startswith("error[input-missing]: ")

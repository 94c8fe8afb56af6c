"""The one error-to-exit-code map, tested class by class, and how a command's other exceptions end."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import typer

from dicomcloak.cli._common import DEBUG_ENV, ExitCode, exit_code_for, handles_errors, output_reader_gone
from dicomcloak.errors import (
    ConfigError,
    DicomcloakError,
    InputError,
    KeyError_,
    MalformedError,
    OutputError,
    SealError,
    StoreError,
    UsageError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("x"), 2),
        (ConfigError("x"), 2),
        (KeyError_("x", reference="key-required"), 3),
        (OutputError("x"), 3),
        (StoreError("x"), 3),
        (InputError("x"), 3),
        (MalformedError("x"), 3),
        (DicomcloakError("x"), 3),
        (SealError("x", reference="vault-record-tampered"), 4),
    ],
)
def test_exit_code_for(error: DicomcloakError, code: int) -> None:
    assert exit_code_for(error) == code


def test_exit_code_values_are_the_documented_ones() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 130, 141]


def _raises(error: BaseException) -> Callable[[], None]:
    @handles_errors
    def command() -> None:
        raise error

    return command


def test_a_bug_is_reported_by_its_type_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    with pytest.raises(typer.Exit) as stopped:
        _raises(ValueError("Smithers^Waylon 1961-02-03"))()
    assert stopped.value.exit_code == ExitCode.FATAL
    err = capsys.readouterr().err
    assert "error[internal-error]: unexpected ValueError" in err
    assert "Smithers" not in err and "1961" not in err


def test_the_debug_variable_lets_the_bug_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(ValueError, match="planted"):
        _raises(ValueError("planted"))()


def test_a_broken_pipe_elsewhere_than_stdout_is_a_bug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a gone reader of standard output means 141; pytest's captured stdout has a reader."""
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    assert not output_reader_gone()
    with pytest.raises(typer.Exit) as stopped:
        _raises(BrokenPipeError(32, "Broken pipe"))()
    assert stopped.value.exit_code == ExitCode.FATAL
    assert "unexpected BrokenPipeError" in capsys.readouterr().err


def test_an_interrupt_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as stopped:
        _raises(KeyboardInterrupt())()
    assert stopped.value.exit_code == ExitCode.INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"

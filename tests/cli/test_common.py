"""The one error-to-exit-code map, tested class by class."""

from __future__ import annotations

import pytest

from dicomcloak.cli._common import ExitCode, exit_code_for
from dicomcloak.errors import (
    ConfigError,
    DicomcloakError,
    InputError,
    KeyError_,
    MalformedError,
    OutputError,
    SealError,
    UsageError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("x"), 2),
        (ConfigError("x"), 2),
        (KeyError_("x", reference="key-required"), 3),
        (OutputError("x"), 3),
        (InputError("x"), 3),
        (MalformedError("x"), 3),
        (DicomcloakError("x"), 3),
        (SealError("x", reference="vault-record-tampered"), 4),
    ],
)
def test_exit_code_for(error: DicomcloakError, code: int) -> None:
    assert exit_code_for(error) == code


def test_exit_code_values_are_the_documented_ones() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 130]

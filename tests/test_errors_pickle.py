"""Errors keep their reference code and hint across process boundaries (pool workers pickle them)."""

from __future__ import annotations

import pickle

import pytest

from dicomcloak import errors

ALL = [getattr(errors, name) for name in errors.__all__]


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_error_round_trips_through_pickle(cls: type[errors.DicomcloakError]) -> None:
    error = cls("the record failed its check", reference="vault-record-tampered", hint="restore a backup")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is cls
    assert (back.reference, back.message, back.hint) == ("vault-record-tampered", error.message, error.hint)
    assert str(back) == str(error)


def test_default_reference_survives_pickle() -> None:
    back = pickle.loads(pickle.dumps(errors.SealError("no record")))
    assert back.reference == errors.SealError.default_reference

"""D on Person Identification Code Sequence: one dummy code item, never the person's code; restored."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomcloak.api import Deidentifier, Sealer
from dicomcloak.engine.deidentify import DUMMY_CODE_VALUE, DUMMY_CODING_SCHEME
from dicomcloak.engine.originals import decode_modified
from dicomcloak.engine.reidentify import restore
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.policy.model import Policy
from dicomcloak.testing.restored import differences

from .conftest import load

STAFF_CODE, SCHEME, MEANING = "EMP-998877", "HOSP-HR", "Jane Smith, RT"


def _person_code() -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = STAFF_CODE, SCHEME, MEANING
    return code


def _with_codes() -> Dataset:
    """pydicom's CT_small with the person's code at the top level and inside an SR-like content item."""
    source = load("CT_small.dcm")
    source.PersonIdentificationCodeSequence = Sequence([_person_code(), _person_code()])
    content = Dataset()
    content.PersonIdentificationCodeSequence = Sequence([_person_code()])
    source.ContentSequence = Sequence([content])
    return read_dataset(_encoded(source))


def _encoded(ds: Dataset) -> bytes:
    from dicomcloak.io.encode import encode_file

    return encode_file(ds)


@pytest.fixture
def deidentifier() -> Deidentifier:
    return Deidentifier(Policy(), ProjectKey(bytes(range(32))), "tests")


def test_the_code_of_a_person_becomes_one_dummy_code(deidentifier: Deidentifier) -> None:
    outcome = deidentifier.deidentify(_with_codes())
    out = read_dataset(encode_dataset(outcome.dataset))
    nested = out.ContentSequence[0].PersonIdentificationCodeSequence
    for sequence in (out.PersonIdentificationCodeSequence, nested):
        assert len(sequence) == 1
        item = sequence[0]
        assert (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning) == (
            DUMMY_CODE_VALUE, DUMMY_CODING_SCHEME, DUMMY_CODE_VALUE,
        )
    text = encode_dataset(outcome.dataset)
    assert all(value.encode() not in text for value in (STAFF_CODE, SCHEME, MEANING))
    assert any(change.path == (0x00401101,) and change.action == "D" for change in outcome.changes)


def test_the_codes_are_sealed_and_restored_exactly(deidentifier: Deidentifier) -> None:
    source = _with_codes()
    outcome = deidentifier.deidentify(source)
    sealed = Sealer(vault=True).seal(source, outcome)
    restored = restore(read_dataset(encode_dataset(outcome.dataset)), decode_modified(sealed.payload))
    assert differences(source, read_dataset(encode_dataset(restored.dataset))) == []

"""Sealing shortcuts equal the general path: the engine's pairs, the directly encoded originals.

The engine records each pair as it makes the pseudonym (``Outcome.replaced``,
what the vault's map gets); :func:`dicomcloak.engine.uidmap.replaced_pairs`
reads them back at the paths the Outcome names. Both must agree, value for
value and in order, on every bundled pydicom file and on the synthetic corpus
(UIDs in nested sequences, keyed identifiers, patient names in Latin-1).
:func:`~dicomcloak.engine.originals.capture_encoded` must give the bytes of
the captured item encoded by ``encode_modified``.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue

from dicomcloak.api import Deidentifier, Sealer
from dicomcloak.engine.originals import capture, capture_encoded, encode_modified
from dicomcloak.engine.uidmap import map_key, replaced_pairs
from dicomcloak.errors import DicomcloakError
from dicomcloak.io.reader import read_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.policy.model import Policy
from dicomcloak.testing.corpus import build_corpus

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
DEID = Deidentifier(Policy(), ProjectKey(bytes(range(32))), "tests")


def _check(data: bytes) -> tuple[tuple[str, str], ...] | None:
    try:
        source = read_dataset(data)
        outcome = DEID.deidentify(source)
    except DicomcloakError:
        return None
    read_back = replaced_pairs(source, outcome.dataset, outcome.changes)
    assert outcome.replaced == read_back
    assert Sealer(vault=True).seal(source, outcome).uid_pairs == read_back
    return read_back


def test_bundled_files_pairs_equal_read_back() -> None:
    checked = [_check(path.read_bytes()) for path in sorted(TEST_FILES.rglob("*.dcm"))]
    pairs = [p for p in checked if p is not None]
    assert len(pairs) >= 60
    assert sum(len(p) for p in pairs) > 100  # replaced UIDs throughout


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("pairs") / "c", 40, seed=5) / "files"


def test_corpus_pairs_equal_read_back(corpus: Path) -> None:
    actions = set()
    for path in sorted(corpus.rglob("*.dcm")):
        pairs = _check(path.read_bytes())
        assert pairs
        actions |= {"U" if ":" not in key else "P" for key, _ in pairs}
        source = read_dataset(path.read_bytes())
        patient_id = str(source.PatientID)
        if patient_id:
            # The patient pseudonym maps back to the Patient ID as the input holds it.
            key = map_key(0x00100020, DEID.deidentify(source).patient_pseudonym, "")
            assert dict(pairs)[key] == patient_id
    assert actions == {"U", "P"}


def test_plain_sealer_carries_no_pairs(corpus: Path) -> None:
    source = read_dataset(next(corpus.rglob("*.dcm")).read_bytes())
    assert Sealer().seal(source, DEID.deidentify(source)).uid_pairs == ()


def _capture_matches(data: bytes, extra: tuple[int, ...] = ()) -> bool | None:
    try:
        source = read_dataset(data)
        changes = DEID.deidentify(source).changes
    except DicomcloakError:
        return None
    item = capture(source, changes, extra)
    assert capture_encoded(source, changes, extra) == (encode_modified(item), len(item._dict))
    return all(isinstance(elem, RawDataElement) for elem in item._dict.values())


def test_capture_encoded_equals_the_encoded_item_on_bundled_files() -> None:
    # Explicit VR LE inputs take the direct copy; implicit VR, big endian and undefined lengths the item.
    kinds = {_capture_matches(path.read_bytes()) for path in sorted(TEST_FILES.rglob("*.dcm"))}
    assert {True, False} <= kinds


def test_capture_encoded_equals_the_encoded_item_on_the_corpus(corpus: Path) -> None:
    for path in sorted(corpus.rglob("*.dcm")):
        assert _capture_matches(path.read_bytes(), (0x7FE00010,)) is not None


TRICKY = [
    b"DOE^JOHN",
    b"DOE^JOHN ",
    b"  DOE^JOHN\x00",
    b"DOE^JOHN==",
    b"DOE^JOHN=",
    b"DOE==JD",
    b"DOE^JOHN=\x00",
    b"=",
    b"==",
    b"A\\B ",
    b"A \\ B\\",
    b"\\DOE=",
    b"M\xdcLLER^J\xd6RG",
    b"O'NEIL^ANN-MARIE^^DR.^",
    b"ID 007  ",
    b"x\x00y ",
    b"",
]


# Default repertoire, ISO_IR 100, ISO 2022 IR 87 (not single-byte: pydicom decodes it).
@pytest.mark.parametrize("charset", ["iso8859", "latin_1", ["iso8859", "iso2022_jp"]])
@pytest.mark.parametrize("vr", ["PN", "LO", "SH"])
def test_original_texts_equal_pydicom(vr: str, charset: str | list[str]) -> None:
    # The fast decoding of the vault map's originals must give what pydicom's converters give.
    from pydicom.dataelem import convert_raw_data_element
    from pydicom.tag import BaseTag

    from dicomcloak.engine.uidmap import original_texts
    from dicomcloak.raw import new_dataset

    ds = new_dataset({}, False, True, charset)  # as read: the Python codecs of (0008,0005)
    for value in TRICKY:
        raw = RawDataElement(BaseTag(0x00100010), vr, len(value), value, 0, False, True, True, False)
        decoded = convert_raw_data_element(raw, encoding=ds.original_character_set, ds=ds).value
        values = decoded if isinstance(decoded, MultiValue | list) else [decoded]
        assert original_texts(raw, ds) == ["" if v is None else str(v) for v in values], value

"""The fast element reader yields exactly what pydicom's generator yields."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom import dcmread
from pydicom.filereader import data_element_generator

from dicomcloak.raw.elements import read_elements

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _cases() -> list[tuple[Path, int, bool, bool]]:
    """Every bundled Part 10 file: where its data set starts and how it is encoded."""
    cases = []
    for path in sorted(TEST_FILES.rglob("*.dcm")):
        try:
            ds = dcmread(path, stop_before_pixels=True)
            start = ds.file_meta.get("FileMetaInformationGroupLength")
            syntax = ds.file_meta.TransferSyntaxUID
        except Exception:  # files pydicom cannot read are the reader tests
            continue
        if start is None or syntax.is_deflated or not syntax.is_transfer_syntax:
            continue
        cases.append((path, 132 + 12 + int(start), syntax.is_implicit_VR, syntax.is_little_endian))
    return cases


CASES = _cases()


def test_the_bundled_files_cover_every_encoding() -> None:
    kinds = {(implicit, little) for _, _, implicit, little in CASES}
    assert kinds == {(True, True), (False, True), (False, False)}
    assert len(CASES) > 60


@pytest.mark.parametrize(("path", "start", "implicit", "little"), CASES, ids=lambda v: getattr(v, "name", ""))
def test_equals_pydicom_generator(path: Path, start: int, implicit: bool, little: bool) -> None:
    data = path.read_bytes()
    expected_fp = BytesIO(data)
    expected_fp.seek(start)
    expected = {elem.tag: elem for elem in data_element_generator(expected_fp, implicit, little)}
    fp = BytesIO(data)
    fp.seek(start)
    elements, end, _ = read_elements(data, fp, implicit, little)
    assert list(elements) == list(expected)
    for tag, elem in elements.items():
        theirs = expected[tag]
        if hasattr(theirs, "value_tell"):  # raw: compare every field
            assert tuple(elem) == tuple(theirs), tag
        else:  # an undefined-length sequence, parsed by pydicom in both cases
            assert elem.VR == theirs.VR and elem.value == theirs.value, tag
    # A value cut short: pydicom stops at the end of the data, the fast path says where it should end.
    assert end == expected_fp.tell() or (end > len(data) == expected_fp.tell())


@pytest.mark.parametrize("cut", [1, 7, 8, 9, 100, 1001])
def test_a_cut_value_ends_beyond_the_data(cut: int) -> None:
    path, start, implicit, little = next(c for c in CASES if c[0].name == "CT_small.dcm")
    data = path.read_bytes()[:-cut]
    fp = BytesIO(data)
    fp.seek(start)
    _, end, last = read_elements(data, fp, implicit, little)
    assert end > len(data) or end < len(data) or (last is not None and len(last.value) < last.length)

"""Sequences opened by dicomcloak.raw.read_items equal pydicom's, on every bundled file; fast constructors."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom import Dataset, dcmread
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.tag import BaseTag

from dicomcloak.raw import new_dataset, new_file_dataset, new_file_meta, read_items

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _raw_sequences(ds: Dataset) -> list[tuple[RawDataElement, Dataset]]:
    """Every raw defined-length sequence at any depth, with the dataset holding it."""
    found = []
    for tag in list(ds._dict):
        elem = ds._dict[tag]
        vr = elem.VR
        if isinstance(elem, RawDataElement) and vr == "SQ" and elem.length != 0xFFFFFFFF:
            found.append((elem, ds))
        if vr == "SQ" or (vr is None and ds[tag].VR == "SQ"):
            for item in ds[tag].value:
                found.extend(_raw_sequences(item))
    return found


def _cases() -> list[tuple[Path, Any]]:
    cases = []
    for path in sorted(TEST_FILES.rglob("*.dcm")):
        try:
            ds = dcmread(path, stop_before_pixels=True)
            sequences = _raw_sequences(ds)
        except Exception:  # files pydicom cannot read are the reader tests
            continue
        if sequences:
            cases.append(path)
    return cases


CASES = _cases()


def _same(ours: Dataset, theirs: Dataset) -> None:
    assert list(ours._dict) == list(theirs._dict)
    for tag, elem in ours._dict.items():
        other = theirs._dict[tag]
        assert tuple(elem) == tuple(other), tag
    assert ours.original_encoding == theirs.original_encoding
    assert ours.original_character_set == theirs.original_character_set
    assert ours.is_undefined_length_sequence_item == theirs.is_undefined_length_sequence_item


def test_many_bundled_files_have_raw_sequences() -> None:
    assert len(CASES) > 20


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_items_equal_pydicom(path: Path) -> None:
    ds = dcmread(path, stop_before_pixels=True)
    opened = 0
    for elem, holder in _raw_sequences(ds):
        implicit, little = holder.original_encoding
        ours = read_items(elem.value, bool(implicit), bool(little), holder.original_character_set)
        theirs = convert_raw_data_element(elem, encoding=holder.original_character_set, ds=holder).value
        if ours is None:
            continue  # left to pydicom: nothing to compare
        opened += 1
        assert len(ours) == len(theirs)
        for mine, item in zip(ours, theirs, strict=True):
            _same(mine, item)
    if ds.file_meta.TransferSyntaxUID.is_little_endian:
        assert opened > 0


def test_a_cut_or_foreign_value_is_left_to_pydicom() -> None:
    item = b"\xfe\xff\x00\xe0" + (18).to_bytes(4, "little") + b"\x10\x00\x10\x00PN\x0a\x00Doe^John  "
    assert read_items(item, False, True, "iso8859") is not None
    assert read_items(item[:-3], False, True, "iso8859") is None  # item longer than the value
    assert read_items(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", False, True, "iso8859") is None
    assert read_items(item, False, False, "iso8859") is None  # big endian: pydicom's


def test_new_dataset_matches_pydicom_construction() -> None:
    expected = Dataset()
    expected.set_original_encoding(False, True, ["iso8859"])
    ours = new_dataset({}, False, True, ["iso8859"], parent="iso8859")
    expected._parent_encoding = "iso8859"
    assert set(vars(ours)) == set(vars(expected))
    assert {k: v for k, v in vars(ours).items() if k != "_dict"} == {
        k: v for k, v in vars(expected).items() if k != "_dict"
    }


def test_new_file_meta_matches_pydicom_construction() -> None:
    elements = {BaseTag(0x00020010): RawDataElement(BaseTag(0x00020010), "UI", 2, b"1\x00", 0, False, True)}
    ours, expected = new_file_meta(dict(elements)), FileMetaDataset(dict(elements))
    assert vars(ours) == vars(expected)
    assert isinstance(ours, FileMetaDataset)


def test_new_file_dataset_matches_pydicom_construction() -> None:
    meta = FileMetaDataset()
    expected = FileDataset(BytesIO(b"\x00"), {}, b"\x00" * 128, meta, False, True)
    expected.buffer = None
    ours = new_file_dataset({}, b"\x00" * 128, meta, False, True)
    assert vars(ours) == vars(expected)
    assert ours.file_meta is meta and ours.original_encoding == (False, True)

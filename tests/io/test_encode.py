"""encode_file / encode_dataset against pydicom's own writer, on pydicom's bundled files (no mocks)."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import warnings
import zlib
from io import BytesIO
from itertools import pairwise
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom import dcmread, dcmwrite
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from dicomcloak.errors import ProcessingError
from dicomcloak.io.encode import encode_dataset, encode_file

DATA = Path(pydicom.__file__).parent / "data"
DCMDUMP = shutil.which("dcmdump")


def _read(source: Path | bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(BytesIO(source) if isinstance(source, bytes) else source)


def _pydicom_bytes(ds: Dataset) -> bytes:
    buffer = BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _corpus() -> list[Path]:
    """Every bundled file pydicom reads, with a Transfer Syntax UID in its file meta."""
    found = []
    for path in sorted((DATA / "test_files").rglob("*")) + sorted((DATA / "charset_files").rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = _read(path)
        except Exception:  # not readable by pydicom: out of scope
            continue
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "TransferSyntaxUID" in meta:
            found.append(path)
    return found


CORPUS = _corpus()


def _values_equal(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return math.isnan(a) and math.isnan(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return all(_values_equal(x, y) for x, y in zip(a, b, strict=True))
    return False


def assert_same_content(expected: Dataset, actual: Dataset, where: str = "") -> None:
    """Same tags, VRs and values at every depth (sequence items compared recursively).

    Group lengths (gggg,0000) of groups above 0x0006 are retired; like pydicom, the encoder drops them.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tags = sorted(tag for tag in expected.keys() if tag.element or tag.group <= 6)  # noqa: SIM118
        assert tags == sorted(actual.keys()), where
        for tag in tags:
            e, a = expected[tag], actual[tag]
            here = f"{where}{tag}"
            assert e.VR == a.VR, here
            if e.VR == "SQ":
                assert len(e.value) == len(a.value), here
                for index, (ei, ai) in enumerate(zip(e.value, a.value, strict=True)):
                    assert_same_content(ei, ai, f"{here}[{index}] > ")
            else:
                assert _values_equal(e.value, a.value), here


def _raw_top_level(data: bytes) -> dict[int, tuple[str | None, bytes | None]]:
    """Top-level elements as read, before any conversion: tag -> (VR, value bytes)."""
    ds = _read(data)
    return {
        int(tag): (elem.VR, elem.value if isinstance(elem, RawDataElement) else None)
        for tag, elem in ds._dict.items()
    }


def _corpus_id(path: Path) -> str:
    return str(path.relative_to(DATA))


def test_corpus_is_large() -> None:
    assert len(CORPUS) > 150


@pytest.mark.parametrize("path", CORPUS, ids=_corpus_id)
def test_round_trip_matches_pydicom(path: Path) -> None:
    original = _read(path)
    try:
        reference: bytes | None = _pydicom_bytes(_read(path))
    except Exception:
        reference = None  # pydicom cannot write this file back
    if reference is None:
        try:
            out = encode_file(_read(path))
        except ProcessingError as exc:  # e.g. empty Media Storage UIDs: refused like pydicom does
            pytest.skip(f"neither pydicom nor encode_file can write this file back ({exc.reference})")
    else:
        out = encode_file(_read(path))
        # the preamble is ours (always zeros); everything after it is byte-identical
        assert out[128:] == reference[128:]
    assert out[:132] == b"\x00" * 128 + b"DICM"
    assert_same_content(original, _read(out))
    if "PixelData" in original:
        assert _read(out).PixelData == original.PixelData


def test_writes_what_pydicom_cannot() -> None:
    """SC_rgb_jpeg.dcm has an element without VR in an explicit VR file; dcmwrite fails on it."""
    path = Path(get_testdata_file("SC_rgb_jpeg.dcm"))
    with pytest.raises(TypeError):
        _pydicom_bytes(_read(path))
    assert_same_content(_read(path), _read(encode_file(_read(path))))


def test_un_elements_are_written_as_dcmwrite_does() -> None:
    """rtdose_rle.dcm stores most elements with VR UN, some empty, and its SOP UIDs as UN.

    pydicom's writer converts the empty ones and the SOP UIDs (it reads those for the File
    Meta) to their dictionary VR and leaves the other UN elements alone; so do we.
    """
    path = Path(get_testdata_file("rtdose_rle.dcm"))
    source = _raw_top_level(path.read_bytes())
    ours = _raw_top_level(encode_file(_read(path)))
    changed = {tag for tag in source if source[tag][0] != ours[tag][0]}
    assert {0x00080016, 0x00080018} <= changed
    for tag in changed:
        assert source[tag][0] == "UN"
        assert tag in (0x00080016, 0x00080018) or not source[tag][1]
    assert any(vr == "UN" and value for vr, value in ours.values())


def test_file_meta_matches_pydicom_and_has_group_length() -> None:
    ds = _read(Path(get_testdata_file("CT_small.dcm")))
    out = encode_file(ds)
    meta = _read(out).file_meta
    # group length counts the bytes from after (0002,0000) to the first non-group-2 element
    end = 132 + 12 + meta.FileMetaInformationGroupLength
    assert out[132:136] == b"\x02\x00\x00\x00"
    assert out[end : end + 2] == b"\x08\x00"  # first data set element follows
    assert out[132:end] == _pydicom_bytes(_read(Path(get_testdata_file("CT_small.dcm"))))[132:end]
    assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_encoding_does_not_modify_the_dataset() -> None:
    ds = _read(Path(get_testdata_file("CT_small.dcm")))
    before = dict(ds._dict)
    meta_before = dict(ds.file_meta._dict)
    encode_file(ds)
    assert all(ds._dict[tag] is elem for tag, elem in before.items())
    assert ds._dict.keys() == before.keys()
    assert all(ds.file_meta._dict[tag] is elem for tag, elem in meta_before.items())
    assert ds.file_meta._dict.keys() == meta_before.keys()


def test_media_storage_uids_follow_the_dataset() -> None:
    ds = _read(Path(get_testdata_file("CT_small.dcm")))
    ds.SOPInstanceUID = generate_uid()
    out = encode_file(ds)
    assert _read(out).file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert out[128:] == _pydicom_bytes(ds)[128:]


# ------------------------------------------------------------------ specific encodings


def _header_at(data: bytes, tag_bytes: bytes) -> int:
    index = data.find(tag_bytes, 132)
    assert index > 0
    return index


def test_implicit_vr_little_endian() -> None:
    path = Path(get_testdata_file("MR_small_implicit.dcm"))
    ds = _read(path)
    assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    out = encode_file(ds)
    assert out[128:] == _pydicom_bytes(_read(path))[128:]
    # (0008,0060) Modality: tag, 4-byte length, no VR
    index = _header_at(out, b"\x08\x00\x60\x00")
    assert out[index + 4 : index + 8] == b"\x02\x00\x00\x00"
    assert out[index + 8 : index + 10] == b"MR"
    assert_same_content(_read(path), _read(out))


def test_explicit_vr_big_endian() -> None:
    path = Path(get_testdata_file("MR_small_bigendian.dcm"))
    ds = _read(path)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    out = encode_file(ds)
    assert out[128:] == _pydicom_bytes(_read(path))[128:]
    index = _header_at(out, b"\x00\x28\x00\x10")  # (0028,0010) Rows, big endian
    assert out[index + 4 : index + 8] == b"US\x00\x02"
    again = _read(out)
    assert again.Rows == ds.Rows
    assert again.PixelData == _read(path).PixelData
    assert_same_content(_read(path), again)


def test_deflated() -> None:
    path = Path(get_testdata_file("image_dfl.dcm"))
    ds = _read(path)
    assert ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    out = encode_file(ds)
    assert out[128:] == _pydicom_bytes(_read(path))[128:]
    meta_end = 132 + 12 + _read(out).file_meta.FileMetaInformationGroupLength
    inflated = zlib.decompressobj(-zlib.MAX_WBITS).decompress(out[meta_end:])
    assert inflated == encode_dataset(_read(path), implicit_vr=False, little_endian=True)
    assert_same_content(_read(path), _read(out))


def test_encapsulated_jpeg() -> None:
    path = Path(get_testdata_file("SC_rgb_jpeg_gdcm.dcm"))
    ds = _read(path)
    assert ds.file_meta.TransferSyntaxUID.is_compressed
    raw = ds._dict[BaseTag(0x7FE00010)]
    assert isinstance(raw, RawDataElement)
    assert raw.length == 0xFFFFFFFF
    out = encode_file(ds)
    assert out[128:] == _pydicom_bytes(_read(path))[128:]
    # (7FE0,0010) OB, reserved, undefined length; items as read, then the Sequence Delimitation Item
    index = _header_at(out, b"\xe0\x7f\x10\x00OB")
    assert out[index + 6 : index + 12] == b"\x00\x00\xff\xff\xff\xff"
    assert out.endswith(raw.value + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    assert _read(out).PixelData == _read(path).PixelData


def test_undefined_length_sequences_are_kept() -> None:
    path = Path(get_testdata_file("JPEG2000.dcm"))
    ds = _read(path)
    assert ds["SourceImageSequence"].is_undefined_length
    out = encode_file(ds)
    assert out[128:] == _pydicom_bytes(_read(path))[128:]
    index = _header_at(out, b"\x08\x00\x12\x21SQ")
    assert out[index + 6 : index + 12] == b"\x00\x00\xff\xff\xff\xff"
    again = _read(out)
    assert again["SourceImageSequence"].is_undefined_length
    assert_same_content(_read(path), again)


def test_charset_change_reencodes_raw_text_like_pydicom() -> None:
    path = DATA / "charset_files" / "chrFren.dcm"
    ds = _read(path)
    name = str(ds.PatientName)
    assert not name.isascii()
    ds.SpecificCharacterSet = "ISO_IR 192"
    out = encode_file(ds)
    assert out[128:] == _pydicom_bytes(ds)[128:]
    assert str(_read(out).PatientName) == name
    assert name.encode("utf-8") in out


# ------------------------------------------------------------------ de-identification-like data sets

_COPIED = [
    0x00080008,  # ImageType (multi-valued CS)
    0x00080016,  # SOPClassUID
    0x00080060,  # Modality
    0x00180050,  # SliceThickness (DS)
    0x00200013,  # InstanceNumber (IS)
    0x00280002,  # SamplesPerPixel
    0x00280004,  # PhotometricInterpretation
    0x00280010,  # Rows
    0x00280011,  # Columns
    0x00280030,  # PixelSpacing
    0x00280100,  # BitsAllocated
    0x00280101,  # BitsStored
    0x00280102,  # HighBit
    0x00280103,  # PixelRepresentation
    0x7FE00010,  # PixelData
]


def _copy_raw(source: Dataset, target: Dataset, tags: list[int]) -> None:
    for tag in tags:
        elem = source._dict[BaseTag(tag)]
        target._dict[BaseTag(tag)] = elem


def _deidentified(source: Dataset, transfer_syntax: str) -> Dataset:
    """A new data set mixing raw elements of `source`, new elements and nested new sequences."""
    new = Dataset()
    _copy_raw(source, new, _COPIED)
    new.SpecificCharacterSet = "ISO_IR 100"
    new.PatientName = "Anonymous^Patiënt"
    new.PatientID = "PSEUDO-1"
    new.SOPInstanceUID = generate_uid(entropy_srcs=["sop"])
    new.StudyInstanceUID = generate_uid(entropy_srcs=["study"])
    new.PatientIdentityRemoved = "YES"
    items = []
    for index in range(2):
        item = Dataset()
        _copy_raw(source, item, [0x00080016, 0x00080060, 0x00280010])  # raw elements inside an item
        item.CodeValue = f"11310{index}"
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = "Basic Application Confidentiality Profile" if index == 0 else "Clean Pixel Data"
        inner = Dataset()
        inner.ReferencedSOPInstanceUID = generate_uid(entropy_srcs=["ref", str(index)])
        _copy_raw(source, inner, [0x00180050])
        item.ReferencedSOPSequence = Sequence([inner])
        items.append(item)
    new.DeidentificationMethodCodeSequence = Sequence(items)
    new.OtherPatientIDsSequence = Sequence([])  # empty sequence
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = source.SOPClassUID
    meta.MediaStorageSOPInstanceUID = new.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    new.file_meta = meta
    return new


def _expected_values(new: Dataset) -> Dataset:
    """`new` with every element converted (raw elements decoded), for comparison."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for elem in new.iterall():
            _ = elem.value
    return new


@pytest.mark.parametrize(
    ("source_name", "transfer_syntax"),
    [
        ("CT_small.dcm", ExplicitVRLittleEndian),
        ("MR_small_implicit.dcm", ImplicitVRLittleEndian),
        ("MR_small_bigendian.dcm", ExplicitVRBigEndian),
    ],
)
def test_deidentified_dataset_round_trips(source_name: str, transfer_syntax: str) -> None:
    source = _read(Path(get_testdata_file(source_name)))
    new = _deidentified(source, transfer_syntax)
    out = encode_file(new)
    # new data set: raw elements stayed raw (copied byte for byte)
    assert isinstance(new._dict[BaseTag(0x7FE00010)], RawDataElement)

    again = _read(out)
    assert again.file_meta.TransferSyntaxUID == transfer_syntax
    assert str(again.PatientName) == "Anonymous^Patiënt"
    assert again.PixelData == source.PixelData
    assert again.Rows == source.Rows
    sequence = again.DeidentificationMethodCodeSequence
    assert [item.CodeValue for item in sequence] == ["113100", "113101"]
    assert sequence[0].Modality == source.Modality
    assert sequence[1].ReferencedSOPSequence[0].SliceThickness == source.SliceThickness
    assert len(again.OtherPatientIDsSequence) == 0
    assert_same_content(_expected_values(_deidentified(source, transfer_syntax)), again)
    # pydicom's own writer (which re-encodes everything of a new data set) reads back the same
    assert_same_content(_read(_pydicom_bytes(_deidentified(source, transfer_syntax))), again)


def test_new_sequences_get_defined_lengths() -> None:
    source = _read(Path(get_testdata_file("CT_small.dcm")))
    out = encode_file(_deidentified(source, ExplicitVRLittleEndian))
    index = _header_at(out, b"\x12\x00\x64\x00SQ")  # (0012,0064) Deidentification Method Code Seq.
    length = int.from_bytes(out[index + 8 : index + 12], "little")
    assert length != 0xFFFFFFFF
    body = out[index + 12 : index + 12 + length]
    assert body.startswith(b"\xfe\xff\x00\xe0")  # first item, with its own defined length
    item_length = int.from_bytes(body[4:8], "little")
    assert body[8 + item_length : 8 + item_length + 4] == b"\xfe\xff\x00\xe0"  # second item follows
    assert b"\xfe\xff\xdd\xe0" not in body
    assert b"\xfe\xff\x0d\xe0" not in body


_DUMP_LINE = re.compile(r"^\s*\((?P<tag>[0-9a-f]{4},[0-9a-f]{4})\) (?P<vr>\w\w) (?P<value>\[[^\]]*\]|\S+)")


@pytest.mark.external
@pytest.mark.skipif(DCMDUMP is None, reason="dcmtk's dcmdump is not installed")
@pytest.mark.parametrize(
    "transfer_syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]
)
def test_dcmdump_reads_deidentified_dataset(tmp_path: Path, transfer_syntax: str) -> None:
    source_name = {ExplicitVRBigEndian: "MR_small_bigendian.dcm"}.get(transfer_syntax, "CT_small.dcm")
    source = _read(Path(get_testdata_file(source_name)))
    new = _deidentified(source, transfer_syntax)
    target = tmp_path / "out.dcm"
    target.write_bytes(encode_file(new))
    result = subprocess.run(
        [str(DCMDUMP), "-dc", "+L", "+U8", str(target)],
        capture_output=True,
        check=False,
        timeout=60,
        encoding="utf-8",
        errors="replace",
    )
    assert result.returncode == 0, result.stderr
    assert "E:" not in result.stderr
    assert "W:" not in result.stderr
    dumped: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        match = _DUMP_LINE.match(line)
        if match:
            dumped.setdefault(match["tag"], []).append(match["value"].strip("[]").rstrip(" "))
    expected = _expected_values(_deidentified(source, transfer_syntax))
    assert dumped["0010,0010"] == ["Anonymous^Patiënt"]
    assert dumped["0008,0018"] == [expected.SOPInstanceUID]
    assert dumped["0008,0100"] == ["113100", "113101"]
    assert dumped["0008,1155"] == [
        item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for item in expected.DeidentificationMethodCodeSequence
    ]
    assert dumped["0028,0010"] == [str(source.Rows)] * 3  # top level and in both items
    assert "7fe0,0010" in dumped


# ------------------------------------------------------------------ failures


def test_failure_names_the_tag_not_the_value() -> None:
    ds = _read(Path(get_testdata_file("CT_small.dcm")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.add(DataElement(0x00280010, "US", "Secret^Value"))
    with pytest.raises(ProcessingError) as info:
        encode_file(ds)
    assert info.value.reference == "encode-failed"
    assert "(0028,0010)" in str(info.value)
    assert "Secret" not in str(info.value)


def test_failure_inside_a_sequence_names_the_path() -> None:
    source = _read(Path(get_testdata_file("CT_small.dcm")))
    new = _deidentified(source, ExplicitVRLittleEndian)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new.DeidentificationMethodCodeSequence[1].add(DataElement(0x00280011, "US", "Secret^Value"))
    with pytest.raises(ProcessingError) as info:
        encode_file(new)
    assert "(0012,0064) > (0028,0011)" in str(info.value)
    assert "Secret" not in str(info.value)


def test_unencapsulated_pixel_data_in_compressed_syntax_fails() -> None:
    ds = _read(Path(get_testdata_file("CT_small.dcm")))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"  # JPEG Baseline, but native pixels
    with pytest.raises(ProcessingError, match=r"\(7FE0,0010\)"):
        encode_file(ds)


def test_file_meta_elements_in_dataset_fail() -> None:
    ds = _read(Path(get_testdata_file("CT_small.dcm")))
    ds.add(DataElement(0x00020010, "UI", ExplicitVRLittleEndian))
    with pytest.raises(ProcessingError, match=r"\(0002,0010\)"):
        encode_file(ds)


def test_implicit_big_endian_is_refused() -> None:
    ds = _read(Path(get_testdata_file("CT_small.dcm")))
    with pytest.raises(ProcessingError):
        encode_dataset(ds, implicit_vr=True, little_endian=False)


def test_missing_transfer_syntax_is_delegated_to_pydicom() -> None:
    ds = _read(Path(get_testdata_file("MR_small_implicit.dcm")))
    del ds.file_meta.TransferSyntaxUID
    out = encode_file(ds)
    assert out[:132] == b"\x00" * 128 + b"DICM"
    again = _read(out)
    assert again.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert_same_content(_read(Path(get_testdata_file("MR_small_implicit.dcm"))), again)


def test_encode_dataset_matches_pydicom_write_dataset() -> None:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    ds = _read(Path(get_testdata_file("CT_small.dcm")))
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = False, True
    write_dataset(fp, _read(Path(get_testdata_file("CT_small.dcm"))))
    assert encode_dataset(ds, implicit_vr=False, little_endian=True) == fp.getvalue()


@pytest.mark.parametrize("source_name", ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"])
def test_modified_read_dataset_matches_pydicom(source_name: str) -> None:
    """In-place de-identification of a read data set: new values, deletions, a new nested sequence."""

    def modified() -> Dataset:
        ds = _read(Path(get_testdata_file(source_name)))
        ds.PatientName = "Anonymous"
        ds.PatientID = "PSEUDO-1"
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["sop"])
        del ds.StudyDate
        item = Dataset()
        _copy_raw(ds, item, [0x00080060])
        item.CodeValue = "113100"
        item.CodingSchemeDesignator = "DCM"
        ds.DeidentificationMethodCodeSequence = Sequence([item])
        return ds

    out = encode_file(modified())
    assert out[128:] == _pydicom_bytes(modified())[128:]
    again = _read(out)
    assert again.PatientName == "Anonymous"
    assert "StudyDate" not in again
    assert again.DeidentificationMethodCodeSequence[0].Modality == modified().Modality


def test_deferred_elements_are_read() -> None:
    path = Path(get_testdata_file("CT_small.dcm"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(path, defer_size=256)
    assert ds._dict[BaseTag(0x7FE00010)].value is None
    assert encode_file(ds)[128:] == _pydicom_bytes(_read(path))[128:]


def test_small_parts_are_joined_and_big_ones_passed_through() -> None:
    from dicomcloak.io._encode_meta import _BIG_PART, _coalesced

    big_a, big_b = b"\x01" * _BIG_PART, bytes(range(256)) * (_BIG_PART // 128)
    parts = [b"ab", b"c", big_a, b"d", b"", b"ef", big_b]
    out = _coalesced(parts)
    assert out == [b"abc", big_a, b"def", big_b]
    assert out[1] is big_a and out[3] is big_b  # values are never copied
    assert _coalesced([b"x", b"y"]) == [b"xy"]
    assert _coalesced([big_a]) == [big_a]
    assert _coalesced([]) == []


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"])
def test_file_parts_are_few_and_make_the_file(name: str) -> None:
    from dicomcloak.io._encode_meta import _BIG_PART
    from dicomcloak.io.encode import encode_file_parts

    ds = _read(Path(get_testdata_file(name)))
    ds.PixelData = bytes(range(256)) * (3 * _BIG_PART // 256)  # large enough to stay a part of its own
    parts = encode_file_parts(ds)
    assert b"".join(parts) == encode_file(ds)
    assert _read(b"".join(parts)).PixelData == ds.PixelData
    small = [len(part) < _BIG_PART for part in parts]
    assert not any(a and b for a, b in pairwise(small))  # no two small parts in a row
    assert len(parts) <= 3

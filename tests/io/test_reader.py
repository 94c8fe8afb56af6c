"""read_dataset on real, bare, truncated, hostile and non-DICOM bytes."""

from __future__ import annotations

import copy
import random
import struct
import zipfile
import zlib
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.filereader import data_element_generator
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dicomcloak.errors import InputError, MalformedError, NotDicomError, ReadLimitError
from dicomcloak.io import ReadLimits, read_dataset, read_path

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
ALL_TEST_FILES = sorted(path for path in TEST_FILES.rglob("*") if path.is_file())


def _testdata(name: str) -> bytes:
    return Path(str(get_testdata_file(name))).read_bytes()


def _dataset_start(data: bytes) -> int:
    """Offset of the first data set element after the File Meta group."""
    meta = dcmread(BytesIO(data), stop_before_pixels=True).file_meta
    return 132 + 12 + int(meta.FileMetaInformationGroupLength)


def _element_ends(data: bytes, start: int, implicit: bool, little: bool) -> set[int]:
    """Offsets where each top-level element from `start` ends (the generator yields after reading)."""
    fp = BytesIO(data)
    fp.seek(start)
    ends = set()
    for _ in data_element_generator(fp, implicit, little):
        ends.add(fp.tell())
    return ends


def _top_level_boundaries(data: bytes) -> set[int]:
    """Offsets at which cutting `data` leaves only whole top-level elements."""
    start = _dataset_start(data)
    implicit, little = dcmread(BytesIO(data), stop_before_pixels=True).original_encoding
    meta_ends = _element_ends(data[:start], 132, False, True)
    return {132, *meta_ends, *_element_ends(data, start, bool(implicit), bool(little))}


def _nested_sequences(depth: int) -> bytes:
    """A bare Explicit VR LE data set with `depth` nested undefined-length sequences."""

    def element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
        return struct.pack("<HH2sH", group, elem, vr, len(value)) + value

    head = element(0x0008, 0x0016, b"UI", b"1.2.3.4\x00") + element(0x0008, 0x0018, b"UI", b"1.2.3.5\x00")
    opening = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF)
    opening += struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return head + opening * depth + closing * depth


def _outcome(data: bytes) -> Dataset | InputError:
    """The Dataset, or the InputError; any other exception fails the test."""
    try:
        return read_dataset(data)
    except InputError as exc:
        return exc


@pytest.mark.parametrize("path", ALL_TEST_FILES, ids=lambda path: path.relative_to(TEST_FILES).as_posix())
def test_every_pydicom_test_file_reads_or_raises_an_input_error(path: Path) -> None:
    outcome = _outcome(path.read_bytes())
    if isinstance(outcome, InputError):
        assert outcome.reference
    else:
        assert outcome.file_meta.TransferSyntaxUID
        assert outcome.file_meta.MediaStorageSOPInstanceUID


def test_normal_file_keeps_elements_raw(mr_bytes: bytes) -> None:
    ds = read_dataset(mr_bytes)
    assert isinstance(ds.get_item(0x00100010), RawDataElement)
    assert isinstance(ds.get_item(0x7FE00010), RawDataElement)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.preamble == mr_bytes[:128]
    assert ds.original_encoding == (False, True)


@pytest.mark.parametrize(
    ("source", "syntax"),
    [
        ("MR_small.dcm", ExplicitVRLittleEndian),
        ("rtplan.dcm", ImplicitVRLittleEndian),
        ("CT_small.dcm", ExplicitVRLittleEndian),
    ],
)
def test_bare_data_set_without_preamble_or_meta_reads(source: str, syntax: str) -> None:
    data = _testdata(source)
    original = dcmread(BytesIO(data))
    ds = read_dataset(data[_dataset_start(data) :])
    assert ds.preamble is None
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert ds.file_meta.MediaStorageSOPClassUID == original.SOPClassUID
    assert ds.SOPInstanceUID == original.SOPInstanceUID


@pytest.mark.parametrize(
    ("source", "syntax"),
    [("ExplVR_LitEndNoMeta.dcm", ExplicitVRLittleEndian), ("ExplVR_BigEndNoMeta.dcm", ExplicitVRBigEndian)],
)
def test_pydicoms_no_meta_files_read(source: str, syntax: str) -> None:
    ds = read_dataset(_testdata(source))
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


@pytest.mark.parametrize("source", ["no_meta_group_length.dcm", "meta_missing_tsyntax.dcm"])
def test_pydicoms_fragments_without_sop_instance_uid_are_malformed(source: str) -> None:
    with pytest.raises(MalformedError) as info:
        read_dataset(_testdata(source))
    assert info.value.reference == "missing-sop-instance-uid"


def test_explicit_syntax_labelling_implicit_data_is_read_as_encoded() -> None:
    ds = read_dataset(_testdata("SC_rgb_jpeg.dcm"))  # no warning, unlike dcmread
    assert ds.original_encoding == (True, True)
    with pytest.warns(UserWarning, match="found implicit VR"):
        expected = dcmread(str(get_testdata_file("SC_rgb_jpeg.dcm")))
    assert (ds.Rows, ds.Columns) == (expected.Rows, expected.Columns)


@pytest.mark.parametrize("source", ["MR_truncated.dcm", "rtplan_truncated.dcm"])
def test_pydicoms_truncated_files_are_truncated(source: str) -> None:
    with pytest.raises(MalformedError) as info:
        read_dataset(_testdata(source))
    assert info.value.reference in {"truncated", "length-beyond-file"}


@pytest.mark.parametrize("fixture", ["mr_bytes", "rtplan_bytes", "jpeg_bytes"])
def test_truncation_at_any_offset_raises_only_input_errors(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    """Cut anywhere: an InputError, never anything else; a Dataset only at an element boundary."""
    data: bytes = request.getfixturevalue(fixture)
    boundaries = _top_level_boundaries(data)
    near = {b + delta for b in boundaries for delta in (-5, -1, 1, 3, 9)}
    offsets = sorted({*range(0, len(data), 61), *near} & set(range(len(data))))
    for offset in offsets:
        if not isinstance(_outcome(data[:offset]), InputError):
            assert offset in boundaries, f"cut at {offset} was not detected"


def test_a_value_cut_short_is_a_length_beyond_the_file(mr_bytes: bytes, planted_name: str) -> None:
    with pytest.raises(MalformedError) as info:
        read_dataset(mr_bytes[:-1])
    assert info.value.reference == "length-beyond-file"
    assert planted_name not in str(info.value)


def test_trailing_bytes_shorter_than_an_element_header_are_truncated(mr_bytes: bytes) -> None:
    with pytest.raises(MalformedError) as info:
        read_dataset(mr_bytes + b"\x10\x00\x10")
    assert info.value.reference == "truncated"


@pytest.mark.parametrize("padding", [1, 2, 6, 7])
def test_trailing_zero_padding_is_read_and_dropped(mr_bytes: bytes, padding: int) -> None:
    """Some writers pad files with zeros: fewer than 8 are not an element, and are dropped."""
    expected = read_dataset(mr_bytes)
    padded = read_dataset(mr_bytes + b"\x00" * padding)
    assert [elem.tag for elem in padded] == [elem.tag for elem in expected]


@pytest.mark.parametrize("padding", [8, 15, 16, 64, 4096])
@pytest.mark.parametrize("source", ["mr_bytes", "rtplan_bytes"])
def test_eight_or_more_trailing_zero_bytes_are_refused(
    source: str, padding: int, request: pytest.FixtureRequest
) -> None:
    """Eight zero bytes parse as an element (0000,0000) of length 0, which no writer writes: a zero tail
    is bytes after the last element (docs/security.md), refused, in either encoding (MR_small is explicit
    VR, rtplan implicit VR with undefined-length sequences: pydicom's generator reads its tail)."""
    data: bytes = request.getfixturevalue(source)
    with pytest.raises(MalformedError) as info:
        read_dataset(data + b"\x00" * padding)
    assert info.value.reference == "trailing-bytes"


def test_missing_sequence_delimiter_is_truncated(rtplan_bytes: bytes) -> None:
    with pytest.raises(MalformedError) as info:
        read_dataset(rtplan_bytes[:-8])
    assert info.value.reference in {"truncated", "length-beyond-file"}


def test_missing_sop_instance_uid() -> None:
    ds = dcmread(str(get_testdata_file("MR_small.dcm")))
    del ds.SOPInstanceUID
    buffer = BytesIO()
    ds.save_as(buffer)
    with pytest.raises(MalformedError) as info:
        read_dataset(buffer.getvalue())
    assert info.value.reference == "missing-sop-instance-uid"


def _zip_bytes() -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        handle.writestr("a.dcm", b"not really")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"hello, world\n" * 40,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200),
        _zip_bytes(),
        bytes(132),
        bytes(1000),
        random.Random(7).randbytes(5000),
        b"%PDF-1.7\n" + bytes(300),
    ],
    ids=["empty", "one-byte", "text", "png", "zip", "zeros-132", "zeros-1000", "random", "pdf"],
)
def test_non_dicom_bytes_are_not_dicom(data: bytes) -> None:
    with pytest.raises(NotDicomError) as info:
        read_dataset(data)
    assert info.value.reference == "not-dicom"


def test_zip_bytes_get_a_hint() -> None:
    with pytest.raises(NotDicomError) as info:
        read_dataset(_zip_bytes())
    assert "zip" in info.value.hint


def test_file_over_the_size_limit(mr_bytes: bytes) -> None:
    with pytest.raises(ReadLimitError) as info:
        read_dataset(mr_bytes, ReadLimits(max_file_bytes=len(mr_bytes) - 1))
    assert info.value.reference == "file-too-large"
    read_dataset(mr_bytes, ReadLimits(max_file_bytes=len(mr_bytes)))


def test_read_path_checks_size_before_reading(tmp_path: Path, mr_bytes: bytes) -> None:
    path = tmp_path / "mr.dcm"
    path.write_bytes(mr_bytes)
    assert read_path(path).SOPInstanceUID
    with pytest.raises(ReadLimitError) as info:
        read_path(path, ReadLimits(max_file_bytes=1000))
    assert info.value.reference == "file-too-large"


def test_read_path_on_a_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(MalformedError) as info:
        read_path(tmp_path / "absent.dcm")
    assert info.value.reference == "unreadable"


def _deflated_file(payload: bytes) -> bytes:
    data = _testdata("image_dfl.dcm")
    start = _dataset_start(data)
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return data[:start] + compressor.compress(payload) + compressor.flush()


def test_deflated_file_reads() -> None:
    ds = read_dataset(_testdata("image_dfl.dcm"))
    assert ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert ds.SOPInstanceUID


def test_deflate_bomb_stops_at_the_limit() -> None:
    bomb = _deflated_file(bytes(50_000_000))
    assert len(bomb) < 100_000
    with pytest.raises(ReadLimitError) as info:
        read_dataset(bomb, ReadLimits(max_file_bytes=1_000_000))
    assert info.value.reference == "deflate-bomb"


def test_invalid_and_truncated_deflate_streams() -> None:
    data = _testdata("image_dfl.dcm")
    start = _dataset_start(data)
    with pytest.raises(MalformedError) as info:
        read_dataset(data[:start] + b"\xff" * 64)
    assert info.value.reference == "deflate-invalid"
    with pytest.raises(MalformedError) as info:
        read_dataset(data[: start + (len(data) - start) // 2])
    assert info.value.reference == "truncated"


def test_sequence_depth_limit() -> None:
    assert read_dataset(_nested_sequences(64)).SOPInstanceUID == "1.2.3.5"
    for depth, limits in [(65, ReadLimits()), (4, ReadLimits(max_sequence_depth=3))]:
        with pytest.raises(ReadLimitError) as info:
            read_dataset(_nested_sequences(depth), limits)
        assert info.value.reference == "sequence-too-deep"


def test_nesting_beyond_the_interpreters_recursion_limit_is_a_limit_error() -> None:
    with pytest.raises(ReadLimitError) as info:
        read_dataset(_nested_sequences(5000), ReadLimits(max_sequence_depth=10_000))
    assert info.value.reference == "sequence-too-deep"


@pytest.mark.parametrize("fixture", ["mr_bytes", "rtplan_bytes", "jpeg_bytes"])
def test_error_messages_never_contain_values(
    fixture: str, planted_name: str, request: pytest.FixtureRequest
) -> None:
    data: bytes = request.getfixturevalue(fixture)
    name_at = data.index(planted_name.encode())
    # cut inside, just after, and far after the planted value; also corrupt its length
    cuts = [data[:offset] for offset in (name_at + 3, name_at + len(planted_name), len(data) - 3)]
    corrupted = bytearray(data)
    corrupted[name_at - 2 : name_at] = b"\xff\xff"
    errors = [_outcome(sample) for sample in [*cuts, bytes(corrupted)]]
    assert all(isinstance(error, InputError) for error in errors)
    for error in errors:
        text = f"{error} {error!r}" + (
            f" {error.message} {error.hint}" if isinstance(error, InputError) else ""
        )
        assert planted_name not in text
        assert "Zebedee" not in text
        assert error.__cause__ is None


def _ct_with_side(side: int, syntax: pydicom.uid.UID) -> bytes:
    ds = dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.Rows = ds.Columns = side
    ds.PixelData = bytes(range(256)) * (side * side * 2 // 256)
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = BytesIO()
    ds.save_as(buffer, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True)
    return buffer.getvalue()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_shared_pixel_data_is_a_read_only_view_equal_to_the_copy(syntax: pydicom.uid.UID) -> None:
    from dicomcloak.io.writer import encode_dataset

    data = _ct_with_side(256, syntax)  # 128 KiB of Pixel Data
    copied, shared = read_dataset(data), read_dataset(data, share_pixel_data=True)
    view = shared.get_item(0x7FE00010).value
    assert isinstance(view, memoryview) and view.readonly and view.obj is data
    assert isinstance(copied.get_item(0x7FE00010).value, bytes)
    assert bytes(view) == copied.get_item(0x7FE00010).value
    assert encode_dataset(shared) == encode_dataset(copied)
    copy.deepcopy(copied)  # what users get by default still deep-copies (a view does not)


def test_small_pixel_data_and_other_values_are_never_shared() -> None:
    small = read_dataset(_ct_with_side(128, ExplicitVRLittleEndian), share_pixel_data=True)  # 32 KiB
    assert isinstance(small.get_item(0x7FE00010).value, bytes)
    assert all(not isinstance(elem.value, memoryview) for elem in small if elem.tag != 0x7FE00010)

"""Atomic writes: complete files under their final name, no debris on failure."""

from __future__ import annotations

import warnings
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from dicomcloak.errors import OutputError, ProcessingError
from dicomcloak.io import copy_atomic, encode_dataset, read_dataset, write_atomic, write_dataset_atomic


def _temp_files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.name.endswith(".tmp")]


def test_write_atomic_creates_parents_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.dcm"
    write_atomic(target, b"payload")
    assert target.read_bytes() == b"payload"
    assert _temp_files(tmp_path) == []


def test_write_atomic_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.dcm"
    target.write_bytes(b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"


def test_parent_that_is_a_file_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"x")
    with pytest.raises(OutputError) as info:
        write_atomic(blocker / "out.dcm", b"payload")
    assert info.value.reference == "output-unwritable"
    assert str(blocker / "out.dcm") in info.value.message
    assert blocker.read_bytes() == b"x"
    assert _temp_files(tmp_path) == []


def test_target_that_is_a_directory_leaves_no_temp(tmp_path: Path) -> None:
    (tmp_path / "out.dcm").mkdir()
    (tmp_path / "out.dcm" / "keep").write_bytes(b"k")
    with pytest.raises(OutputError):
        write_atomic(tmp_path / "out.dcm", b"payload")
    assert _temp_files(tmp_path) == []
    assert (tmp_path / "out.dcm" / "keep").read_bytes() == b"k"


def test_copy_failing_midway_leaves_neither_temp_nor_target(tmp_path: Path) -> None:
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as handle:
        handle.writestr("member.dcm", b"A" * 3_000_000)
    raw = bytearray(archive.read_bytes())
    raw[2_000_000] ^= 0xFF  # the CRC check fails only at the end of the member
    archive.write_bytes(bytes(raw))
    out = tmp_path / "out"
    with (
        zipfile.ZipFile(archive) as handle,
        handle.open("member.dcm") as source,
        pytest.raises(zipfile.BadZipFile),
    ):
        copy_atomic(out / "member.dcm", source)
    assert not (out / "member.dcm").exists()
    assert _temp_files(tmp_path) == []


def test_dataset_round_trip_copies_raw_elements(tmp_path: Path, mr_bytes: bytes) -> None:
    ds = read_dataset(mr_bytes)
    target = tmp_path / "out" / "mr.dcm"
    write_dataset_atomic(target, ds)
    written = target.read_bytes()
    assert written == encode_dataset(read_dataset(mr_bytes))
    reread = read_dataset(written)
    assert reread.SOPInstanceUID == ds.SOPInstanceUID
    assert reread.PixelData == ds.PixelData
    start = mr_bytes.index(b"\x08\x00\x08\x00")  # the data set is copied byte for byte
    assert written.endswith(mr_bytes[start:])


def test_implicit_and_deflated_round_trips(rtplan_bytes: bytes) -> None:
    deflated = Path(str(get_testdata_file("image_dfl.dcm"))).read_bytes()
    for data in (rtplan_bytes, deflated):
        ds = read_dataset(data)
        again = read_dataset(encode_dataset(ds))
        assert again.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
        assert again.SOPInstanceUID == ds.SOPInstanceUID


def test_encode_failure_is_a_processing_error_without_values(tmp_path: Path, planted_name: str) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.3.4"
    ds.SOPInstanceUID = "1.2.3.5"
    with warnings.catch_warnings():  # pydicom warns (or not, once validation is off: engine.quiet)
        warnings.simplefilter("ignore")
        ds.add_new(0x00280010, "US", planted_name)  # pydicom's write error quotes this value
    with pytest.raises(ProcessingError) as info:
        write_dataset_atomic(tmp_path / "x.dcm", ds)
    assert info.value.reference == "encode-failed"
    assert planted_name not in str(info.value)
    assert info.value.__cause__ is None
    assert list(tmp_path.iterdir()) == []


def test_encode_dataset_writes_part_10(mr_bytes: bytes) -> None:
    encoded = encode_dataset(read_dataset(mr_bytes))
    assert encoded[128:132] == b"DICM"
    assert read_dataset(BytesIO(encoded).read()).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_copy_is_sparse_and_capped(tmp_path: Path) -> None:
    """Zero chunks become holes; at most ``max_bytes`` are copied, and the caller learns there was more."""
    data = b"head" + bytes(5 << 20) + b"middle" + bytes(3 << 20) + b"tail"
    target = tmp_path / "out" / "copy"
    assert copy_atomic(target, BytesIO(data)) == (len(data), False)
    assert target.read_bytes() == data
    assert target.stat().st_blocks * 512 <= 512 << 10  # two 64 KiB chunks with data, the rest holes
    assert copy_atomic(target, BytesIO(data), max_bytes=6 << 20) == (6 << 20, True)
    assert target.read_bytes() == data[: 6 << 20]
    assert copy_atomic(target, BytesIO(data), max_bytes=len(data)) == (len(data), False)
    assert copy_atomic(target, BytesIO(bytes(100))) == (100, False)
    assert target.read_bytes() == bytes(100)  # a copy that ends in a hole has its size

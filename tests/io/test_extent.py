"""A large input is judged from its element headers before it is read whole (io.reader.check_input).

The walk (:mod:`dicomcloak.raw.extent`) must refuse nothing the reader and
the sanitizer accept: it runs here, forced on every size, over every bundled
pydicom file in three encodings (undefined-length sequences and items,
implicit VR, defined lengths), over the hostile corpus, and over cuts of them.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

import dicomcloak.io.reader as reader
from dicomcloak.errors import InputError
from dicomcloak.io import iter_inputs
from dicomcloak.io.bounded import Window
from dicomcloak.io.reader import check_input, read_dataset, read_input
from dicomcloak.policy import build_policy
from dicomcloak.sanitize import sanitize_dataset
from dicomcloak.testing.hostile import base_bytes, hostile_corpus, truncations

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
POLICY = build_policy([], None)


def _variants(path: Path) -> Iterator[tuple[str, bytes]]:
    """The file re-encoded: explicit VR with undefined lengths, implicit VR with and without them."""
    for syntax, undefined in ((ExplicitVRLittleEndian, True), (ImplicitVRLittleEndian, True),
                              (ImplicitVRLittleEndian, False)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, force=True)
                if ds.file_meta.TransferSyntaxUID.is_compressed:
                    if syntax != ExplicitVRLittleEndian:
                        continue
                else:
                    ds.file_meta.TransferSyntaxUID = syntax
                for elem in ds.iterall():
                    if elem.VR == "SQ":
                        elem.value.is_undefined_length = undefined
                        for item in elem.value:
                            item.is_undefined_length_sequence_item = undefined
                buffer = BytesIO()
                ds.save_as(buffer, implicit_vr=ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian,
                           little_endian=True)
        except Exception:  # files pydicom cannot write back are the reader's own tests
            continue
        yield f"{path.name}:{syntax.name}:{undefined}", buffer.getvalue()


def _inputs() -> list[tuple[str, bytes]]:
    inputs = [(path.name, path.read_bytes()) for path in sorted(TEST_FILES.rglob("*")) if path.is_file()]
    for path in sorted(TEST_FILES.glob("*.dcm")):
        if path.stat().st_size < 4 << 20:
            inputs.extend(_variants(path))
    inputs.extend((f"hostile:{name}", data) for name, (data, _) in hostile_corpus().items())
    return inputs


def _verdict(data: bytes, walk: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(reader, "WALK_FROM", -1 if walk else 1 << 62)
    try:
        if walk:
            check_input(BytesIO(data), len(data))
        else:
            sanitize_dataset(read_dataset(data), POLICY.sanitize, POLICY)
    except InputError as error:
        return error.reference
    return "accepted"


def test_the_walk_refuses_nothing_that_reading_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = _inputs()
    cuts = [
        (f"{name}:cut{n}", cut) for name, data in inputs[::25] for n, cut in enumerate(truncations(data, 331))
    ]
    refused = {}
    for name, data in inputs + cuts:
        walked = _verdict(data, True, monkeypatch)
        if walked != "accepted":
            read = _verdict(data, False, monkeypatch)
            if read == "accepted":
                refused[name] = walked
    assert len(inputs) > 250
    assert refused == {}


def test_a_large_file_is_judged_from_a_few_pages(tmp_path: Path) -> None:
    """A 1 GiB file whose Pixel Data holds the rest: the walk reads a few windows, not the file."""
    head = base_bytes()
    path = tmp_path / "big.dcm"
    with path.open("wb") as handle:
        handle.write(head + struct.pack("<HH2sHL", 0x7FE1, 0x0010, b"OB", 0, (1 << 30) - len(head) - 12))
        handle.truncate(1 << 30)

    with path.open("rb") as handle:
        reads: list[int] = []
        original = handle.read

        def counted(size: int = -1) -> bytes:
            data = original(size)
            reads.append(len(data))
            return data

        handle.read = counted  # type: ignore[method-assign]
        check_input(handle, path.stat().st_size)
    assert sum(reads) < 1 << 20


def test_read_input_refuses_before_reading_and_reads_a_small_file_as_is(tmp_path: Path) -> None:
    small = tmp_path / "in" / "small.dcm"
    small.parent.mkdir()
    small.write_bytes(base_bytes())
    big = tmp_path / "in" / "zz-big.dcm"
    with big.open("wb") as handle:
        handle.write(base_bytes())
        handle.truncate(256 << 20)
    small_item, big_item = iter_inputs([tmp_path / "in"])
    assert read_input(small_item) == base_bytes()  # type: ignore[arg-type]
    with pytest.raises(InputError) as info:
        read_input(big_item)  # type: ignore[arg-type]
    assert info.value.reference == "trailing-bytes"


def test_window_slices_and_finds_across_its_reads() -> None:
    data = bytes(range(256)) * 4096 + b"\xfe\xff\xdd\xe0" + bytes(100)
    window = Window(BytesIO(data), len(data), span=1000)
    assert len(window) == len(data)
    end = len(data)
    for start, stop in ((0, 8), (990, 1010), (5000, 5008), (end - 4, end + 10), (7, 7), (500, 3000)):
        assert window[start:stop] == data[start:stop]
    assert window.find(b"\xfe\xff\xdd\xe0", 0, len(data)) == data.find(b"\xfe\xff\xdd\xe0")
    near_a_read = 3 * 1000 + 5  # the first window read at or after it straddles this match
    assert window.find(b"\x10\x11\x12", near_a_read, len(data)) == data.find(b"\x10\x11\x12", near_a_read)
    for start in range(0, 2 << 20, 65_537):  # matches across the find's own 1 MiB chunks
        assert window.find(b"\xff\x00\x01", start, len(data)) == data.find(b"\xff\x00\x01", start)
    assert window.find(b"absent", 0, len(data)) == -1


def test_a_zip_member_is_judged_before_it_is_inflated_whole(tmp_path: Path) -> None:
    """A zip member with a 64 MiB zero tail (64 KiB in the archive): refused from its first headers."""
    import zipfile

    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("a/fine.dcm", base_bytes())
        with handle.open("a/tail.dcm", "w", force_zip64=True) as member:
            member.write(base_bytes())
            for _ in range(64):
                member.write(bytes(1 << 20))
    fine, tail = iter_inputs([archive])
    assert read_input(fine) == base_bytes()  # type: ignore[arg-type]
    with pytest.raises(InputError) as info:
        read_input(tail)  # type: ignore[arg-type]
    assert info.value.reference == "trailing-bytes"

"""Hostile DICOM inputs, generated: polyglots, payloads, bombs, lying lengths, deep nesting.

Shared by the sanitize tests and benchmarks (issue 3). Every builder returns
the bytes of one input and is deterministic. ``hostile_corpus()`` lists them
all with the reason codes the sanitize stage may give each (an empty set
means "accepted"); the tests assert those verdicts.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Iterator
from io import BytesIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    EncapsulatedPDFStorage,
    ExplicitVRLittleEndian,
    RLELossless,
)

__all__ = [
    "PAYLOAD",
    "base_bytes",
    "base_dataset",
    "deflate_bomb",
    "encapsulated_pdf",
    "encode",
    "hostile_corpus",
    "huge_frames",
    "huge_image",
    "lying_length",
    "meta_bomb",
    "nested_sequences",
    "private_payload",
    "truncations",
    "with_charset",
    "with_preamble",
    "with_trailing_payload",
    "with_uid",
]

#: A marker planted by the payload builders: it must never appear in a sanitized output.
PAYLOAD = b"HOSTILE-PAYLOAD-" + bytes(range(256)) * 4
_PLANTED_TEXT = "PLANTEDTEXT"
_PREAMBLES = {
    "pe": b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(46) + b"\x80\x00\x00\x00",
    "elf": b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00\x01\x00\x00\x00",
    "mach-o": b"\xcf\xfa\xed\xfe\x07\x00\x00\x01\x03\x00\x00\x00\x02\x00\x00\x00",
    "tiff": b"II*\x00\x08\x00\x00\x00",
}


def base_dataset(rows: int = 8, columns: int = 8) -> Dataset:
    """A small valid CT instance: identity, a sequence, native 16-bit pixels."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.10"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.11"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.12"
    ds.PatientName = "Hostile^Test"
    ds.PatientID = "H0001"
    ds.Modality = "CT"
    ds.StudyDescription = _PLANTED_TEXT
    ref = Dataset()
    ref.ReferencedSOPClassUID = CTImageStorage
    ref.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.13"
    ds.ReferencedImageSequence = [ref]
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(i % 251 for i in range(rows * columns * 2))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def encode(ds: Dataset) -> bytes:
    """Part 10 bytes of ``ds`` as pydicom writes them (its warnings about hostile values silenced)."""
    buffer = BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def base_bytes() -> bytes:
    """The bytes of :func:`base_dataset`."""
    return encode(base_dataset())


def with_preamble(kind: str, data: bytes | None = None) -> bytes:
    """A valid file whose preamble starts like a PE, ELF, Mach-O executable or a TIFF header."""
    data = data or base_bytes()
    preamble = _PREAMBLES[kind].ljust(128, b"\x00")
    return preamble + data[128:]


def private_payload(vr: str = "OB") -> bytes:
    """A private block whose OB or UN element carries a payload blob."""
    ds = base_dataset()
    block = ds.private_block(0x0029, "EVIL CORP", create=True)
    block.add_new(0x10, vr, PAYLOAD)
    return encode(ds)


def with_trailing_payload(data: bytes | None = None) -> bytes:
    """A payload appended after the data set's last element."""
    return (data or base_bytes()) + PAYLOAD


def _element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def nested_sequences(depth: int, *, undefined: bool = True) -> bytes:
    """A bare Explicit VR LE data set with ``depth`` nested sequences of undefined or defined length."""
    head = _element(0x0008, 0x0016, b"UI", b"1.2.3.4\x00")
    head += _element(0x0008, 0x0018, b"UI", b"1.2.3.5\x00")
    if undefined:
        opening = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF)
        opening += struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
        closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
        return head + opening * depth + closing * depth
    inner = _element(0x0008, 0x0100, b"SH", b"LEAF")
    for _ in range(depth):
        item = struct.pack("<HHI", 0xFFFE, 0xE000, len(inner)) + inner
        inner = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, len(item)) + item
    return head + inner


def deflate_bomb(inflated: int = 64 * 2**20) -> bytes:
    """A Deflated Explicit VR Little Endian file whose data set inflates ``inflated`` zero bytes."""
    ds = base_dataset()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    data = encode(ds)
    start = 132 + 12 + struct.unpack_from("<L", data, 132 + 8)[0]
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = _element(0x0008, 0x0016, b"UI", b"1.2.3.4\x00")
    body += struct.pack("<HH2sHI", 0x0009, 0x1010, b"OB", 0, inflated)
    stream = compressor.compress(body)
    chunk = bytes(2**20)
    for _ in range(inflated // len(chunk)):
        stream += compressor.compress(chunk)
    return data[:start] + stream + compressor.flush()


def huge_image(*, encapsulated: bool = False) -> bytes:
    """Rows = Columns = 65535 with a few bytes of pixel data (native or one RLE fragment)."""
    ds = base_dataset()
    ds.Rows = ds.Columns = 65535
    if encapsulated:
        ds.file_meta.TransferSyntaxUID = RLELossless
        fragment = bytes(64)
        items = struct.pack("<HHI", 0xFFFE, 0xE000, 0) + struct.pack("<HHI", 0xFFFE, 0xE000, 64)
        ds.PixelData = items + fragment
        ds["PixelData"].is_undefined_length = True
        ds["PixelData"].VR = "OB"
    return encode(ds)


def huge_frames() -> bytes:
    """Number of Frames 999,999,999 with one frame of data."""
    ds = base_dataset()
    ds.NumberOfFrames = 999_999_999
    return encode(ds)


def lying_length(kind: str) -> bytes:
    """A long-VR element (UT) whose length field lies: ``undefined``, ``beyond`` the end, or ``odd``."""
    ds = base_dataset()
    ds.add_new(0x00204000, "LT", "lying")  # ImageComments
    ds.TextValue = "LIE-" * 8  # (0040,A160) UT
    data = encode(ds)
    at = data.index(b"\x40\x00\x60\xa1UT")
    length = {"undefined": 0xFFFFFFFF, "beyond": len(data) * 4, "odd": 31}[kind]
    return data[: at + 8] + struct.pack("<L", length) + data[at + 12 :]


def meta_bomb(size: int = 4 * 2**20) -> bytes:
    """A File Meta group holding a ``size``-byte private information element (0002,0102)."""
    data = base_bytes()
    length = struct.unpack_from("<L", data, 132 + 8)[0]
    extra = struct.pack("<HH2sHI", 0x0002, 0x0102, b"OB", 0, size) + bytes(size)
    meta = data[132 + 12 : 132 + 12 + length] + extra
    group_length = struct.pack("<HH2sHL", 0x0002, 0x0000, b"UL", 4, len(meta))
    return data[:132] + group_length + meta + data[132 + 12 + length :]


def with_charset(charset: str) -> bytes:
    """A file declaring the given Specific Character Set (0008,0005)."""
    ds = base_dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.add_new(0x00080005, "CS", charset)
    return encode(ds)


def with_uid(keyword: str, uid: str) -> bytes:
    """A file whose UID attribute ``keyword`` holds ``uid`` verbatim (e.g. a path traversal)."""
    ds = base_dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds[keyword].value = uid
    return encode(ds)


def encapsulated_pdf() -> bytes:
    """An Encapsulated PDF instance (PS3.3 A.45) with a tiny document."""
    ds = base_dataset()
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated",
                    "BitsStored", "HighBit", "PixelRepresentation", "PixelData"):
        delattr(ds, keyword)
    ds.SOPClassUID = EncapsulatedPDFStorage
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n" + PAYLOAD[:64] + b"\n%%EOF\n"
    return encode(ds)


def truncations(data: bytes, step: int = 97) -> Iterator[bytes]:
    """``data`` cut at every ``step``-th byte."""
    for end in range(0, len(data), step):
        yield data[:end]


def hostile_corpus() -> dict[str, tuple[bytes, frozenset[str]]]:
    """Every hostile input by name, with the verdicts allowed for it (empty: must be accepted)."""
    truncated = {"truncated", "length-beyond-file", "not-dicom", "missing-sop-instance-uid"}
    truncated |= {"pixel-length-mismatch", "pixel-description-invalid", "uid-invalid"}
    lies = {"truncated", "length-beyond-file", "unparseable", "pixel-length-mismatch", "malformed"}
    corpus: dict[str, tuple[bytes, frozenset[str]]] = {
        "preamble-pe": (with_preamble("pe"), frozenset({"preamble-executable"})),
        "preamble-elf": (with_preamble("elf"), frozenset({"preamble-executable"})),
        "preamble-mach-o": (with_preamble("mach-o"), frozenset({"preamble-executable"})),
        "preamble-tiff": (with_preamble("tiff"), frozenset()),
        "private-ob-payload": (private_payload("OB"), frozenset()),
        "private-un-payload": (private_payload("UN"), frozenset()),
        "trailing-payload": (with_trailing_payload(), frozenset(lies | {"element-too-large", "not-dicom"})),
        "deflate-bomb": (deflate_bomb(), frozenset({"deflate-bomb"})),
        "deflate-bomb-ratio": (deflate_bomb(24 * 2**20), frozenset({"deflate-bomb"})),  # under the cap
        "rows-columns-65535": (huge_image(), frozenset({"pixel-length-mismatch"})),
        "rows-columns-65535-rle": (huge_image(encapsulated=True), frozenset({"pixel-bomb"})),
        "frames-huge": (huge_frames(), frozenset({"pixel-length-mismatch"})),
        "length-undefined": (lying_length("undefined"), frozenset({*lies, ""})),
        "length-beyond-file": (lying_length("beyond"), frozenset({"length-beyond-file"})),
        "length-odd": (lying_length("odd"), frozenset(lies)),
        "meta-bomb": (meta_bomb(), frozenset({"meta-too-large"})),
        "charset-unknown": (with_charset("ISO_IR 999"), frozenset({"charset-unknown"})),
        "sop-uid-traversal": (with_uid("SOPInstanceUID", "../../../etc/passwd"), frozenset({"uid-invalid"})),
        "study-uid-traversal": (with_uid("StudyInstanceUID", "1.2/../../x"), frozenset()),
        "encapsulated-pdf": (encapsulated_pdf(), frozenset({"encapsulated-document"})),
    }
    for depth in (10, 64, 65, 1000, 10_000):
        allowed = frozenset() if depth <= 64 else frozenset({"sequence-too-deep"})
        corpus[f"nested-{depth}-undefined"] = (nested_sequences(depth), allowed)
        corpus[f"nested-{depth}-defined"] = (nested_sequences(depth, undefined=False), allowed)
    for index, cut in enumerate(truncations(base_bytes())):
        corpus[f"truncated-{index * 97}"] = (cut, frozenset(truncated))
    return corpus

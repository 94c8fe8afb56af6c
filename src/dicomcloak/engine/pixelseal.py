"""Seal what a pixel redaction changes, and restore it exactly (architecture.md decisions 3 and 4).

Two ways, matching the two sealing modes:

* embedded: the original Pixel Data (7FE0,0010) goes whole into the Modified
  Attributes Sequence (pass :data:`PIXEL_TAGS` as ``extra`` to
  :func:`dicomcloak.engine.originals.capture`), so any PS3.15 E.1.2
  re-identifier, ``gdcmanon`` included, puts it back;
* vault: only the original bytes of the redacted boxes, as a compact
  payload (:func:`seal_regions`), restored with :func:`restore_regions`.

Regions work on native (uncompressed) Pixel Data with whole-byte samples,
interleaved colour (Planar Configuration 0) or one sample per pixel (PS3.5
8.1.1, PS3.3 C.7.6.3); anything else is sealed whole.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dicomcloak.errors import SealError
from dicomcloak.raw import new_dataset

__all__ = [
    "PIXEL_DATA",
    "PIXEL_TAGS",
    "Box",
    "Geometry",
    "region_payload",
    "regions_geometry",
    "restore_regions",
    "restored_bytes",
    "seal_regions",
]

PIXEL_DATA = 0x7FE00010
#: What a redaction changes, for ``capture(..., extra=PIXEL_TAGS)`` in embedded mode.
PIXEL_TAGS = (PIXEL_DATA,)
_MAGIC = b"DCPX1"
_BOX = struct.Struct("<5I")
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Box:
    """A redacted rectangle: frame index (0-based), top row, left column, height and width in pixels."""

    frame: int
    row: int
    col: int
    rows: int
    cols: int


@dataclass(frozen=True)
class Geometry:
    """The layout regions address: rows, columns, frames and bytes per pixel (all samples)."""

    rows: int
    cols: int
    frames: int
    pixel_bytes: int

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.cols * self.pixel_bytes


def regions_geometry(ds: Dataset) -> Geometry:
    """The layout of native Pixel Data; ``pixel-regions-unsupported`` when regions cannot address it."""
    return _geometry(ds)


def _geometry(ds: Dataset) -> Geometry:
    syntax = ds.file_meta.TransferSyntaxUID if "file_meta" in ds.__dict__ else None
    bits = int(ds.get("BitsAllocated", 0))
    samples = int(ds.get("SamplesPerPixel", 1))
    if syntax is not None and syntax.is_compressed:
        raise _unsupported("compressed Pixel Data")
    if bits % 8 or bits == 0:
        raise _unsupported("bit-packed Pixel Data")
    if samples > 1 and int(ds.get("PlanarConfiguration", 0)) != 0:
        raise _unsupported("planar colour Pixel Data")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return Geometry(int(ds.Rows), int(ds.Columns), frames, bits // 8 * samples)


def _spans(geometry: Geometry, box: Box) -> Iterable[tuple[int, int]]:
    """(offset, length) of each row of ``box`` in the Pixel Data value."""
    if (
        box.frame >= geometry.frames
        or box.row + box.rows > geometry.rows
        or box.col + box.cols > geometry.cols
        or min(box.frame, box.row, box.col, box.rows, box.cols) < 0
    ):
        raise SealError("a redaction box lies outside the image", reference="pixel-box-outside")
    width = box.cols * geometry.pixel_bytes
    base = box.frame * geometry.frame_bytes
    for row in range(box.row, box.row + box.rows):
        yield base + (row * geometry.cols + box.col) * geometry.pixel_bytes, width


def seal_regions(original: Dataset, boxes: Iterable[Box]) -> bytes:
    """The original bytes of every box of ``original``'s Pixel Data, as one payload for the vault."""
    return region_payload(_geometry(original), bytes(original.PixelData), boxes)


def region_payload(geometry: Geometry, data: bytes | memoryview, boxes: Iterable[Box]) -> bytes:
    """:func:`seal_regions` of a Pixel Data value ``data`` laid out as ``geometry``."""
    parts: list[bytes | memoryview] = [_MAGIC]
    for box in boxes:
        chunk = b"".join(data[offset : offset + length] for offset, length in _spans(geometry, box))
        parts += [_BOX.pack(box.frame, box.row, box.col, box.rows, box.cols), _LENGTH.pack(len(chunk)), chunk]
    return b"".join(parts)


def restore_regions(redacted: Dataset, payload: bytes) -> Dataset:
    """A copy of ``redacted`` whose Pixel Data has the sealed original boxes put back."""
    return _with_pixels(redacted, restored_bytes(redacted, payload))


def restored_bytes(redacted: Dataset, payload: bytes) -> bytes:
    """``redacted``'s Pixel Data value with the sealed original boxes put back (``redacted`` unchanged)."""
    if not payload.startswith(_MAGIC):
        raise _invalid()
    geometry = _geometry(redacted)
    data = bytearray(redacted.PixelData)
    position = len(_MAGIC)
    while position < len(payload):
        left = len(payload) - position
        if left == 1 and payload[position] == 0:
            break  # the padding of an OB value of odd length (PS3.5 7.1.1)
        if left < _BOX.size + _LENGTH.size:
            raise _invalid()
        box = Box(*_BOX.unpack_from(payload, position))
        (length,) = _LENGTH.unpack_from(payload, position + _BOX.size)
        position += _BOX.size + _LENGTH.size
        chunk = payload[position : position + length]
        position += length
        spans = list(_spans(geometry, box))
        if len(chunk) != length or sum(width for _, width in spans) != length:
            raise _invalid()
        consumed = 0
        for offset, width in spans:
            data[offset : offset + width] = chunk[consumed : consumed + width]
            consumed += width
    return bytes(data)


def _with_pixels(ds: Dataset, data: bytes) -> Dataset:
    """A shallow copy of ``ds`` with new Pixel Data (``Dataset(ds)`` would share its element dict)."""
    implicit, little = ds.original_encoding
    elements = dict(ds._dict)  # noqa: SLF001 - elements are replaced, never changed
    elements[BaseTag(PIXEL_DATA)] = DataElement(PIXEL_DATA, ds[PIXEL_DATA].VR, data)
    charset = ds.original_character_set
    out = new_dataset(
        elements,
        bool(implicit),
        little is not False,
        charset if isinstance(charset, str) else list(charset),
    )
    if "file_meta" in ds.__dict__:
        out.file_meta = ds.file_meta
    return out


def _invalid() -> SealError:
    return SealError("the sealed pixel regions are not readable", reference="pixel-seal-invalid")


def _unsupported(what: str) -> SealError:
    return SealError(
        f"pixel regions cannot be sealed for {what}",
        reference="pixel-regions-unsupported",
        hint="seal the whole Pixel Data instead (embedded mode)",
    )

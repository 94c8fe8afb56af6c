"""Seal what cleaning the pixels changed, with the other originals, and undo it on re-identification.

A pixel cleaning (:mod:`dicomcloak.pixels`) changes Pixel Data and may change
the transfer syntax (a lossy or unencodable input is written native),
Photometric Interpretation and Planar Configuration (decoded YBR is RGB),
the extended offset table, and adds Burned In Annotation or Lossy Image
Compression markers. Re-identification must give the original back byte for
byte, transfer syntax included, so the sealed Modified Attributes item
(PS3.15 E.1.1) holds:

* the original of every pixel-related top-level attribute the input had
  (:data:`PIXEL_ATTRIBUTES`), restored by E.1.2 like any other;
* the original Pixel Data whole (embedded seals, and inputs whose layout the
  cleaning changed), or only the bytes of the changed rectangles
  (:func:`~dicomcloak.engine.pixelseal.seal_regions`: vault records of native
  inputs whose layout it kept);
* a private block, creator ``DICOMCLOAK PIXELS 1`` (PS3.5 7.8.1), with what
  E.1.2 cannot say: the original Transfer Syntax UID (it lives in the File
  Meta), the tags the cleaning added (removed again), the regions, and the
  SHA-256 of the redacted and of the original Pixel Data value: regions are
  put back only onto the pixels they were cut from, and the result must be the
  original, or nothing is restored (``pixel-seal-mismatch``).

The block is taken out of the item before E.1.2 applies it; a PS3.15
re-identifier that does not know it (``gdcmanon``) restores the block as
private attributes and leaves the transfer syntax as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import UID

from dicomcloak.engine.originals import capture, encode_modified
from dicomcloak.engine.outcome import Change
from dicomcloak.engine.pixelseal import (
    PIXEL_DATA,
    Box,
    Geometry,
    region_payload,
    regions_geometry,
    restored_bytes,
)
from dicomcloak.errors import SealError
from dicomcloak.raw import new_dataset

__all__ = ["NOTE_CREATOR", "PIXEL_ATTRIBUTES", "PixelNote", "apply_note", "capture_cleaned", "take_note"]

#: Top-level attributes a pixel cleaning may change (PS3.3 C.7.6.3 Image Pixel, C.7.6.1 General Image).
PIXEL_ATTRIBUTES = (
    0x00280002,  # Samples per Pixel
    0x00280004,  # Photometric Interpretation
    0x00280006,  # Planar Configuration
    0x00280100,  # Bits Allocated
    0x00280101,  # Bits Stored
    0x00280102,  # High Bit
    0x00280103,  # Pixel Representation
    0x00280301,  # Burned In Annotation
    0x00282110,  # Lossy Image Compression
    0x00282112,  # Lossy Image Compression Ratio
    0x00282114,  # Lossy Image Compression Method
    0x7FE00001,  # Extended Offset Table
    0x7FE00002,  # Extended Offset Table Lengths
)
NOTE_CREATOR = "DICOMCLOAK PIXELS 1"
_GROUP = 0x0401
_SYNTAX, _ADDED, _REGIONS, _REDACTED, _ORIGINAL = 0x01, 0x02, 0x03, 0x04, 0x05
_GEOMETRY = (0x00280002, 0x00280004, 0x00280006, 0x00280008, 0x00280010, 0x00280011, 0x00280100)


@dataclass(frozen=True)
class PixelNote:
    """What E.1.2 cannot restore by itself (see the module docstring); empty fields mean "nothing"."""

    syntax: str = ""
    added: tuple[int, ...] = ()
    regions: bytes = b""
    redacted: bytes = b""
    original: bytes = b""

    def __bool__(self) -> bool:
        return bool(self.syntax or self.added or self.regions)


def capture_cleaned(
    source: Dataset, changes: Iterable[Change], cleaned: Dataset, extra: Iterable[int] = (), *, whole: bool
) -> tuple[bytes, int]:
    """The encoded (0400,0550) element sealing ``changes`` and the pixel cleaning of ``cleaned``.

    ``source`` is the instance as read, ``cleaned`` the de-identified data set
    with its cleaned pixels. ``whole``: seal the original Pixel Data whole
    (an embedded seal), else only the changed rectangles when the layout
    allows. Returns the bytes and how many original attributes they hold.
    """
    note = _note(source, cleaned, whole=whole)
    keep_whole = not note.regions
    tags = [*extra, *PIXEL_ATTRIBUTES, *((PIXEL_DATA,) if keep_whole else ())]
    item = capture(source, changes, tags)
    count = len(item._dict)  # noqa: SLF001 - the captured originals
    if note:
        _add_note(item, note)
    return encode_modified(item), count


def _note(source: Dataset, cleaned: Dataset, *, whole: bool) -> PixelNote:
    added = tuple(tag for tag in PIXEL_ATTRIBUTES if tag in cleaned and tag not in source)
    before, after = _syntax(source), _syntax(cleaned)
    regions = None if whole else _changed_regions(source, cleaned)
    if regions is None:
        return PixelNote(before if before != after else "", added)
    old, new = _pixels(source), _pixels(cleaned)
    return PixelNote("", added, regions, hashlib.sha256(new).digest(), hashlib.sha256(old).digest())


def _syntax(ds: Dataset) -> str:
    meta = ds.__dict__.get("file_meta")
    value = None if meta is None else meta.get("TransferSyntaxUID")
    return str(value or "")


def _pixels(ds: Dataset) -> memoryview:
    elem = ds._dict[BaseTag(PIXEL_DATA)]  # noqa: SLF001 - the value as read, not converted
    return memoryview(elem.value or b"")


def _peek(ds: Dataset, tag: int) -> object:
    """An element's value without converting it in ``ds`` (the source must stay as read)."""
    elem = ds._dict.get(BaseTag(tag))  # noqa: SLF001
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        elem = convert_raw_data_element(elem, encoding=ds.original_character_set, ds=ds)
    return elem.value


def _changed_regions(source: Dataset, cleaned: Dataset) -> bytes | None:
    """The original bytes of the rectangles that differ (a region payload); None: seal the whole.

    Regions need a native input whose layout the cleaning kept: same transfer
    syntax and geometry, same length, and the bytes outside every frame equal.
    """
    if PIXEL_DATA not in source or PIXEL_DATA not in cleaned or _syntax(source) != _syntax(cleaned):
        return None
    if any(str(_peek(source, tag)) != str(_peek(cleaned, tag)) for tag in _GEOMETRY):
        return None
    old, new = _pixels(source), _pixels(cleaned)
    try:
        geometry = regions_geometry(cleaned)  # the same geometry as the source's, not converting its elements
    except SealError:
        return None
    size = geometry.frames * geometry.frame_bytes
    if len(old) != len(new) or len(old) < size or old[size:] != new[size:]:
        return None
    return region_payload(geometry, old, boxes_of(_changed(geometry, old, new)))


def _changed(geometry: Geometry, old: memoryview, new: memoryview) -> np.ndarray:
    """Which pixels differ, (frames, rows, columns)."""
    size = geometry.frames * geometry.frame_bytes
    shape = (geometry.frames, geometry.rows, geometry.cols, geometry.pixel_bytes)
    before = np.frombuffer(old, np.uint8, size).reshape(shape)
    after = np.frombuffer(new, np.uint8, size).reshape(shape)
    changed: np.ndarray = (before != after).any(axis=3)
    return changed


def boxes_of(mask: np.ndarray) -> list[Box]:
    """Rectangles covering exactly the True cells of ``mask`` (frames, rows, columns).

    Each row's runs of True are found at once; runs with the same columns on
    consecutive rows of a frame merge into one rectangle (a filled text box is
    one rectangle; overlapping boxes make a few).
    """
    frames, rows, cols = mask.shape
    padded = np.zeros((frames, rows, cols + 2), dtype=np.int8)
    padded[:, :, 1:-1] = mask
    steps = np.diff(padded, axis=2)
    starts, ends = np.argwhere(steps == 1), np.argwhere(steps == -1)
    if not len(starts):
        return []
    runs = np.column_stack([starts[:, 0], starts[:, 2], ends[:, 2], starts[:, 1]])  # frame, c0, c1, row
    runs = runs[np.lexsort((runs[:, 3], runs[:, 2], runs[:, 1], runs[:, 0]))]
    fresh = np.ones(len(runs), dtype=bool)
    fresh[1:] = (runs[1:, :3] != runs[:-1, :3]).any(axis=1) | (runs[1:, 3] != runs[:-1, 3] + 1)
    first = np.flatnonzero(fresh)
    heights = np.diff(np.append(first, len(runs)))
    return [
        Box(int(runs[i, 0]), int(runs[i, 3]), int(runs[i, 1]), int(height), int(runs[i, 2] - runs[i, 1]))
        for i, height in zip(first, heights, strict=True)
    ]


def _add_note(item: Dataset, note: PixelNote) -> None:
    """The private block in the first free slot of group 0401 of ``item`` (PS3.5 7.8.1)."""
    slot = next(s for s in range(0x10, 0x100) if (_GROUP << 16 | s) not in item)
    base = _GROUP << 16 | slot << 8
    item.add_new(_GROUP << 16 | slot, "LO", NOTE_CREATOR)
    if note.syntax:
        item.add_new(base | _SYNTAX, "UI", note.syntax)
    if note.added:
        item.add_new(base | _ADDED, "AT", list(note.added))
    if note.regions:
        item.add_new(base | _REGIONS, "OB", note.regions)
        item.add_new(base | _REDACTED, "OB", note.redacted)
        item.add_new(base | _ORIGINAL, "OB", note.original)


def take_note(item: Dataset) -> tuple[Dataset, PixelNote | None]:
    """``item`` without dicomcloak's pixel block, and the block's note (None: the item has none)."""
    elements = dict(item._dict)  # noqa: SLF001 - a shallow copy, elements are not changed
    slot = next((s for s in range(0x10, 0x100) if _is_creator(elements.get(BaseTag(_GROUP << 16 | s)))), None)
    if slot is None:
        return item, None
    base = _GROUP << 16 | slot << 8
    block = {tag & 0xFF: elements.pop(tag) for tag in list(elements) if tag & 0xFFFFFF00 == base}
    elements.pop(BaseTag(_GROUP << 16 | slot))
    charset = item.original_character_set
    rest = new_dataset(elements, False, True, charset if isinstance(charset, str) else list(charset))
    return rest, _read_note(item, block)


def _is_creator(elem: object) -> bool:
    value = getattr(elem, "value", None)
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")
    return text.strip() == NOTE_CREATOR


def _read_note(item: Dataset, block: Mapping[int, object]) -> PixelNote:
    values = {key: _peek_element(item, elem) for key, elem in block.items()}
    try:
        added = values.get(_ADDED)
        many = isinstance(added, list | MultiValue)
        tags = () if added is None else tuple(int(t) for t in (added if many else [added]))
        return PixelNote(
            str(values.get(_SYNTAX) or "").strip("\x00 "),
            tags,
            *(bytes(values.get(key) or b"") for key in (_REGIONS, _REDACTED, _ORIGINAL)),
        )
    except (TypeError, ValueError):
        raise _invalid() from None


def _peek_element(item: Dataset, elem: object) -> Any:
    if isinstance(elem, RawDataElement):
        elem = convert_raw_data_element(elem, encoding=item.original_character_set, ds=item)
    return getattr(elem, "value", None)


def apply_note(out: Dataset, note: PixelNote) -> bool:
    """Undo in ``out`` (a fresh re-identified data set) what E.1.2 cannot; True when regions were restored.

    Raises
    ------
    SealError
        ``pixel-seal-mismatch``: the Pixel Data is not the one the regions were
        cut from, or restoring them does not give the original back.
    """
    for tag in note.added:
        out._dict.pop(BaseTag(tag), None)  # noqa: SLF001 - a fresh data set of the caller's
    if note.syntax:
        out.file_meta.TransferSyntaxUID = UID(note.syntax)
    if not note.regions:
        return False
    if PIXEL_DATA not in out or hashlib.sha256(_pixels(out)).digest() != note.redacted:
        raise _mismatch()
    data = restored_bytes(out, note.regions)
    if hashlib.sha256(data).digest() != note.original:
        raise _mismatch()
    out[PIXEL_DATA] = DataElement(PIXEL_DATA, out[PIXEL_DATA].VR, data)
    return True


def _mismatch() -> SealError:
    return SealError(
        "the sealed pixel regions do not belong to this image's pixels",
        reference="pixel-seal-mismatch",
        hint="the Pixel Data changed after de-identification; restore the file from a trusted copy",
    )


def _invalid() -> SealError:
    return SealError("the sealed pixel regions are not readable", reference="pixel-seal-invalid")

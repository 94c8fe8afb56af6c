"""Check Pixel Data against its own description before anything allocates it (PS3.3 C.7.6.3, PS3.5 A.4).

A decoder allocates Rows x Columns x Samples x Bits Allocated x Number of
Frames bytes because the header says so: a 65535 x 65535 image with a few
bytes of data, or a billion frames, is a memory bomb for whoever opens it
next. Here only integers are compared: native Pixel Data must have exactly
the described length (plus one pad byte), encapsulated Pixel Data must be a
well-formed item list whose Basic Offset Table points inside its fragments,
and the described size may not exceed the encoded size by more than the
configured ratio.
"""

from __future__ import annotations

import itertools
from struct import Struct
from typing import Any

from dicomcloak.errors import ReadLimitError, UnsafeContentError
from dicomcloak.raw.limits import ReadLimits

__all__ = ["PIXEL_TAGS", "check_pixels"]

#: Pixel Data, Float Pixel Data, Double Float Pixel Data (PS3.3 C.7.6.3).
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_ROWS, _COLUMNS, _SAMPLES, _BITS, _FRAMES, _PHOTOMETRIC = (
    0x00280010, 0x00280011, 0x00280002, 0x00280100, 0x00280008, 0x00280004,
)
_EXTENDED_OFFSETS = 0x7FE00001
_UNDEFINED = 0xFFFFFFFF
_ITEM_HEADER = Struct("<HHL").unpack_from
_OFFSET = Struct("<L").iter_unpack
_US_LE, _US_BE = Struct("<H").unpack_from, Struct(">H").unpack_from
_SUBSAMPLED = (b"YBR_FULL_422", b"YBR_PARTIAL_422")


def check_pixels(elements: dict[Any, Any], little: bool, limits: ReadLimits) -> None:
    """Refuse pixel data of one data set level that does not match its description.

    Raises
    ------
    UnsafeContentError
        ``pixel-description-invalid`` (missing or impossible Rows, Columns,
        Samples per Pixel, Bits Allocated, Number of Frames),
        ``pixel-length-mismatch`` (native length, or encapsulated items and
        offsets, inconsistent with the description), ``pixel-bomb``.
    ReadLimitError
        ``too-many-elements`` for more fragments than ``max_elements``.
    """
    for tag in PIXEL_TAGS:
        elem = elements.get(tag)
        if elem is not None:
            value = getattr(elem, "value", None)
            if isinstance(value, bytes) and value:
                _check_one(elem, value, elements, little, limits)


def _check_one(elem: Any, value: bytes, elements: dict[Any, Any], little: bool, limits: ReadLimits) -> None:
    size, subsampled_size = _described_size(elements, little)
    if getattr(elem, "length", None) == _UNDEFINED or getattr(elem, "is_undefined_length", False):
        _check_encapsulated(value, elements, size, limits)
        return
    if len(value) not in {size, size + 1, subsampled_size, subsampled_size + 1}:
        raise _mismatch("the Pixel Data length differs from Rows x Columns x Samples x Bits x Frames")


def _described_size(elements: dict[Any, Any], little: bool) -> tuple[int, int]:
    """Bytes the description gives: as is, and for YBR_*_422 native subsampling (PS3.3 C.7.6.3.1.2)."""
    rows, columns = _us(elements, _ROWS, little), _us(elements, _COLUMNS, little)
    samples, bits = _us(elements, _SAMPLES, little, 1), _us(elements, _BITS, little)
    frames = _frames(elements)
    if not rows or not columns or samples is None or not 1 <= samples <= 4 or not frames:
        raise _invalid()
    if bits is None or (bits != 1 and (bits == 0 or bits % 8 or bits > 64)):
        raise _invalid()
    pixels = rows * columns * frames
    size = (pixels * samples + 7) // 8 if bits == 1 else pixels * samples * bits // 8
    subsampled = size
    if samples == 3 and _text(elements, _PHOTOMETRIC).startswith(_SUBSAMPLED):
        subsampled = pixels * 2 * bits // 8
    return size, subsampled


def _check_encapsulated(value: bytes, elements: dict[Any, Any], size: int, limits: ReadLimits) -> None:
    """Items of encapsulated Pixel Data (PS3.5 A.4): offset table, then at least one fragment."""
    lengths = _item_lengths(value, limits.max_elements)
    if len(lengths) < 2:
        raise _mismatch("encapsulated Pixel Data has no fragment")
    frames = _frames(elements) or 1
    fragments = lengths[1:]
    if lengths[0]:
        _check_offsets(value[8 : 8 + lengths[0]], frames, sum(fragments) + 8 * len(fragments))
    elif frames > len(fragments) and _EXTENDED_OFFSETS not in elements:
        raise _mismatch("encapsulated Pixel Data has fewer fragments than frames")
    _check_extended(elements, frames)
    encoded = sum(fragments)
    if size > limits.pixel_ratio_floor and size > encoded * limits.max_pixel_ratio:
        raise UnsafeContentError(
            "the pixel description is far larger than its encoded data",
            reference="pixel-bomb",
            hint="raise max_pixel_ratio if such images are expected",
        )


def _item_lengths(value: bytes, max_items: int) -> list[int]:
    pos, end, lengths = 0, len(value), []
    while pos < end:
        if end - pos < 8:
            raise _mismatch("encapsulated Pixel Data ends inside an item header")
        group, number, length = _ITEM_HEADER(value, pos)
        if (group, number) != (0xFFFE, 0xE000) or length == _UNDEFINED or pos + 8 + length > end:
            raise _mismatch("encapsulated Pixel Data holds a malformed item")
        lengths.append(length)
        if len(lengths) > max_items:
            raise ReadLimitError(
                "encapsulated Pixel Data has more fragments than the element limit",
                reference="too-many-elements",
                hint="raise max_elements if such files are expected",
            )
        pos += 8 + length
    return lengths


def _check_offsets(table: bytes, frames: int, fragment_bytes: int) -> None:
    """Basic Offset Table (PS3.5 A.4): one offset per frame, from 0, increasing, inside the fragments."""
    if len(table) % 4:
        raise _mismatch("the Basic Offset Table length is not a multiple of 4")
    offsets = [offset for (offset,) in _OFFSET(table)]
    if len(offsets) != frames or offsets[0] != 0 or offsets[-1] >= fragment_bytes:
        raise _mismatch("the Basic Offset Table does not match the frames and fragments")
    if any(later <= earlier for earlier, later in itertools.pairwise(offsets)):
        raise _mismatch("the Basic Offset Table is not increasing")


def _check_extended(elements: dict[Any, Any], frames: int) -> None:
    elem = elements.get(_EXTENDED_OFFSETS)
    value = getattr(elem, "value", None)
    if isinstance(value, bytes) and value and (len(value) % 8 or len(value) // 8 != frames):
        raise _mismatch("the Extended Offset Table does not have one offset per frame")


def _us(elements: dict[Any, Any], tag: int, little: bool, default: int | None = None) -> int | None:
    elem = elements.get(tag)
    if elem is None:
        return default
    value = elem.value
    if isinstance(value, int):
        return value
    if not isinstance(value, bytes) or len(value) != 2:
        raise _invalid()
    return int((_US_LE if little else _US_BE)(value)[0])


def _frames(elements: dict[Any, Any]) -> int:
    """Number of Frames (IS); 1 when absent (PS3.3 C.7.6.6)."""
    elem = elements.get(_FRAMES)
    if elem is None:
        return 1
    value = elem.value
    if isinstance(value, bytes):
        text = value.strip(b" \x00")
        if not text:
            return 1
        if not text.isdigit() or len(text) > 12:
            raise _invalid()
        return int(text)
    return int(value) if value is not None else 1


def _text(elements: dict[Any, Any], tag: int) -> bytes:
    elem = elements.get(tag)
    value = getattr(elem, "value", None)
    if isinstance(value, bytes):
        return value.strip(b" \x00")
    return str(value or "").encode("ascii", "replace")


def _invalid() -> UnsafeContentError:
    return UnsafeContentError(
        "the pixel description (Rows, Columns, Samples, Bits Allocated, Frames) is missing or impossible",
        reference="pixel-description-invalid",
        hint="the image cannot be described consistently; re-export it from the source system",
    )


def _mismatch(message: str) -> UnsafeContentError:
    return UnsafeContentError(
        message, reference="pixel-length-mismatch", hint="the pixel data is damaged or forged"
    )

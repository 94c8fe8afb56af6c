"""The element-header walk (raw.extent) and the element readers' counts: limits that hold (issue 13, item 3).

Each case is a small data set built here, in the encodings pydicom reads: the
walk must refuse what reading it would refuse (a repeated tag, zero bytes
where an element should be, a length beyond the data, a flood of elements,
deep nesting) from its headers alone, and go on where the readers are lenient.
"""

from __future__ import annotations

import struct
from io import BytesIO

import pytest

from dicomcloak.errors import InputError
from dicomcloak.raw.elements import read_elements, read_fast
from dicomcloak.raw.extent import check_extent
from dicomcloak.raw.limits import ReadLimits

UNDEFINED = 0xFFFFFFFF
LONG_VRS = {b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR", b"OF", b"OD", b"OL", b"OV", b"SV", b"UV"}


def ex(tag: int, vr: bytes, value: bytes = b"", length: int | None = None) -> bytes:
    """An explicit VR little endian element (PS3.5 7.1.2)."""
    size = len(value) if length is None else length
    if vr in LONG_VRS:
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr, 0, size) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, size) + value


def im(tag: int, value: bytes = b"", length: int | None = None) -> bytes:
    """An implicit VR little endian element (PS3.5 7.1.3), or an item header (tag FFFE,xxxx)."""
    size = len(value) if length is None else length
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, size) + value


ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD


def item(body: bytes, *, undefined: bool = False) -> bytes:
    return im(ITEM, body, UNDEFINED if undefined else None) + (im(ITEM_END) if undefined else b"")


def refusal(data: bytes, implicit: bool = False, limits: ReadLimits | None = None) -> str:
    """The walk's reason code for ``data`` (a bare data set), or "" when it passes."""
    try:
        check_extent(data, 0, implicit, True, limits or ReadLimits())
    except InputError as error:
        return error.reference
    return ""


BASE = ex(0x00080016, b"UI", b"1.2\x00") + ex(0x00080018, b"UI", b"1.3\x00") + ex(0x00100010, b"PN", b"A^B ")


def test_a_well_formed_data_set_passes_in_every_shape() -> None:
    inner = ex(0x00081150, b"UI", b"1.2\x00") + ex(0x00081155, b"UI", b"1.4\x00")
    undefined_sq = ex(0x00081140, b"SQ", item(inner, undefined=True) + item(inner) + im(SEQ_END), UNDEFINED)
    pixels = ex(0x7FE00010, b"OB", im(ITEM, b"") + im(ITEM, b"abcd") + im(SEQ_END), UNDEFINED)
    assert refusal(BASE + undefined_sq + pixels) == ""
    assert refusal(BASE + ex(0x00081140, b"SQ", item(inner) + item(inner))) == ""
    assert refusal(BASE + b"\x00" * 7) == ""  # fewer than 8 zero bytes: padding
    reference = im(ITEM, im(0x00081155, b"1.4\x00")) + im(SEQ_END)
    implicit = im(0x00080018, b"1.3\x00") + im(0x00081140, reference, UNDEFINED)
    assert refusal(implicit, implicit=True) == ""


@pytest.mark.parametrize("tail", [8, 16, 1 << 20])
def test_a_zero_tail_is_trailing_bytes_at_its_first_header(tail: int) -> None:
    assert refusal(BASE + bytes(tail)) == "trailing-bytes"
    assert refusal(im(0x00080018, b"1.3\x00") + bytes(tail), implicit=True) == "trailing-bytes"


def test_zero_bytes_inside_an_undefined_length_item_are_refused() -> None:
    """The 13-minute case: a zero flood pydicom's generator reads inside an item (explicit VR, whose
    zero "VR" pydicom reads as an implicit header), refused at the first zero header."""
    flood = ex(0x00081140, b"SQ", im(ITEM, length=UNDEFINED) + ex(0x00081150, b"UI", b"1.2\x00"), UNDEFINED)
    assert refusal(BASE + flood + bytes(1 << 16)) == "trailing-bytes"


def test_a_repeated_tag_is_refused_at_any_level() -> None:
    """PS3.5 7.1: each tag at most once in a data set or item."""
    assert refusal(BASE + ex(0x00100010, b"PN", b"C^D ")) == "element-repeated"
    twice = ex(0x00081155, b"UI", b"1.4\x00") * 2
    assert refusal(BASE + ex(0x00081140, b"SQ", item(twice))) == "element-repeated"
    assert refusal(BASE + ex(0x00081140, b"SQ", item(twice, undefined=True) + im(SEQ_END), UNDEFINED)) == (
        "element-repeated"
    )
    # Not across items, nor between an item and its data set.
    once = ex(0x00100010, b"PN", b"E^F ")
    assert refusal(BASE + ex(0x00101002, b"SQ", item(once) + item(once))) == ""


@pytest.mark.parametrize("length", [0x7FFFFFF0, 0x90000000])
def test_a_value_longer_than_the_data_is_refused_from_its_header(length: int) -> None:
    data = BASE + ex(0x7FE00010, b"OW", b"\x00" * 64, length)
    limits = ReadLimits()
    expected = "element-too-large" if length > limits.max_element_bytes else "length-beyond-file"
    assert refusal(data) == expected


def test_element_and_depth_limits_count_every_header() -> None:
    flood = b"".join(ex(0x00090010 + n, b"LO", b"AB") for n in range(0x80)) + ex(0x00091000, b"UN", bytes(8))
    assert refusal(BASE + flood, limits=ReadLimits(max_elements=100)) == "too-many-elements"
    items = ex(0x00081140, b"SQ", item(b"") * 200)  # empty items count too: each is a Dataset to build
    assert refusal(BASE + items, limits=ReadLimits(max_elements=100)) == "too-many-elements"
    nested = ex(0x00081155, b"UI", b"1.4\x00")
    for _ in range(5):
        nested = ex(0x00081140, b"SQ", item(nested, undefined=True) + im(SEQ_END), UNDEFINED)
    assert refusal(BASE + nested, limits=ReadLimits(max_sequence_depth=4)) == "sequence-too-deep"
    assert refusal(BASE + nested, limits=ReadLimits(max_sequence_depth=5)) == ""


def test_a_broken_defined_length_sequence_is_skipped_as_the_sanitizer_drops_it() -> None:
    """The sanitizer drops a defined-length sequence it cannot parse; the walk must not refuse the file."""
    broken = ex(0x00081140, b"SQ", im(ITEM, b"abc", length=400))
    assert refusal(BASE + broken + ex(0x00200013, b"IS", b"1 ")) == ""
    # ... but what it can read of one still counts, and a zero flood in it is still refused.
    zeros = ex(0x00081140, b"SQ", im(ITEM, bytes(64)))
    assert refusal(BASE + zeros) == "trailing-bytes"


def test_truncations_are_refused() -> None:
    reference = item(ex(0x00081155, b"UI", b"1.4\x00"), undefined=True)
    undefined = BASE + ex(0x00081140, b"SQ", reference, UNDEFINED)
    assert refusal(undefined) == "truncated"  # no sequence delimiter
    assert refusal(BASE + ex(0x7FE00010, b"OB", im(ITEM, b"abcd"), UNDEFINED)) == "truncated"
    assert refusal(BASE + b"\x08\x00\x20\x00DA\x08\x00" + b"2024") == "length-beyond-file"
    assert refusal(BASE + b"\x01" * 9) in {"truncated", "length-beyond-file"}


def test_the_element_readers_count_repeats_and_refuse_them() -> None:
    """The count of elements read includes repeats (a dict of tags never reached the limit: issue 13)."""
    twice = BASE + ex(0x00100010, b"PN", b"C^D ")
    with pytest.raises(InputError) as info:
        read_fast(twice, 0, len(twice), False, {})
    assert info.value.reference == "element-repeated"
    zeros = BASE + bytes(8 * 1000)
    for implicit in (False, True):
        data = zeros if not implicit else im(0x00080018, b"1.3\x00") + bytes(8 * 1000)
        with pytest.raises(InputError) as info:
            read_elements(data, BytesIO(data), implicit, True, max_count=10**6)
        assert info.value.reference == "trailing-bytes"
        with pytest.raises(InputError) as info:
            read_elements(data, BytesIO(data), implicit, True, max_count=100)
        assert info.value.reference in {"too-many-elements", "trailing-bytes"}

"""Open a defined-length sequence's raw value into its items (PS3.5 7.5), or leave it to pydicom.

pydicom opens a raw sequence by reading each item through a file object
with its generic dataset reader: on a typical instance that is a quarter of
de-identification time. The common case (little endian, items of defined or
undefined length whose elements the fast element reader takes) is read here;
anything else returns None and the caller asks pydicom, so the items are
always the ones pydicom would give (tested on every bundled file).
"""

from __future__ import annotations

from struct import Struct
from typing import Any

from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dicomcloak.raw.datasets import new_dataset
from dicomcloak.raw.elements import Element, read_fast

__all__ = ["read_items"]

_HEADER = Struct("<HHL").unpack_from
_ITEM = 0xFFFEE000
_ITEM_DELIMITER = 0xFFFEE00D
_UNDEFINED = 0xFFFFFFFF


def read_items(value: bytes, implicit: bool, little: bool, charset: Any) -> list[Dataset] | None:
    """The items of a defined-length sequence value, or None when pydicom must read them.

    Parameters
    ----------
    value:
        The sequence's raw value (the bytes after its length field).
    implicit, little:
        How the enclosing data set is encoded.
    charset:
        The enclosing data set's character set (Python codec names).
    """
    if not little:
        return None
    if isinstance(charset, str):
        charset = [charset]  # as pydicom's Dataset._character_set gives it
    items: list[Dataset] = []
    pos, size = 0, len(value)
    while pos < size:
        item = _read_item(value, pos, implicit, charset)
        if item is None:
            return None
        dataset, pos = item
        items.append(dataset)
    return items


def _read_item(value: bytes, pos: int, implicit: bool, charset: Any) -> tuple[Dataset, int] | None:
    """One item at ``pos``: the dataset and where the next item starts."""
    if len(value) - pos < 8:
        return None
    group, number, length = _HEADER(value, pos)
    if group << 16 | number != _ITEM:
        return None
    start = pos + 8
    if implicit and _looks_explicit(value, start):
        return None  # pydicom switches such an item to explicit VR (pydicom issue 1067)
    elements: dict[BaseTag, Element] = {}
    if length == _UNDEFINED:
        end, own = read_fast(value, start, len(value), implicit, elements)
        if len(value) - end < 8 or _HEADER(value, end) != (0xFFFE, 0xE00D, 0):
            return None
        after = end + 8
    else:
        after = start + length
        if after > len(value):
            return None
        end, own = read_fast(value, start, after, implicit, elements)
        if end != after:
            return None
    dataset = new_dataset(
        elements, implicit, True, own or charset, parent=charset, undefined=length == _UNDEFINED
    )
    return dataset, after


def _looks_explicit(value: bytes, start: int) -> bool:
    """pydicom's test for an item whose first element has a VR: two capital letters after the tag."""
    vr = value[start + 4 : start + 6]
    return len(vr) == 2 and 0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B

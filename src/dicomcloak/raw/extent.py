"""Walk a data set's element headers, values unread, so that what reading it will cost is known first.

A hostile file is cheap to make and dear to read. A 2 GB sparse file costs
its maker nothing and costs a reader 2 GB of memory before any check runs;
eight zero bytes parse as an element, so a zero tail inside an undefined-length
item parses as millions of elements, minutes of CPU in pydicom's generator
(issue 13). :func:`check_extent` visits every element header the readers
will visit, nested sequences and items included (PS3.5 7.5), jumping over
values by their declared lengths, and refuses before anything is read whole:

- a value that ends beyond the data (``length-beyond-file``), or a data set
  that ends inside a header or before its delimiter (``truncated``), or
  bytes after the last element beyond fewer than 8 zero bytes (``truncated``);
- a tag met twice in one data set or item (``element-repeated``, PS3.5 7.1),
  eight zero bytes where an element should be (``trailing-bytes``);
- more element headers (items and fragments included) than ``max_elements``,
  a value longer than ``max_element_bytes``, nesting deeper than
  ``max_sequence_depth``: the reading limits, counted the same way.

So the work the walk does is bounded by the limits, and the work reading
does after a walk that passed is bounded too. The walk reads through a
:class:`Source`: bytes in memory, or a window on a file or zip member
(:mod:`dicomcloak.io.reader`), so a 2 GB file is judged from a few pages.

It follows the readers' own leniencies (pydicom 3.0, pinned), so that it
refuses no file they accept (tested on every bundled file and a real set):
an explicit VR header whose VR is not two capitals is read as implicit VR;
an item of an explicit VR sequence whose first element has no VR is read as
implicit VR (PS3.5 6.2.2); an undefined-length UN is a sequence; an
undefined-length value that is not a sequence ends after its items
(encapsulated Pixel Data, PS3.5 A.4) or else at the first Sequence
Delimitation Item; a defined-length item ends after the element that
crosses its end. A defined-length sequence is only opened later, by the
sanitizer, which drops one it cannot parse: the walk opens it too (its
elements count, and a repeated tag or a zero header inside it is refused),
but where its structure breaks it goes on after the sequence instead of
refusing the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from struct import Struct
from typing import Protocol

from pydicom.datadict import dictionary_VR
from pydicom.filereader import ENCODED_VR
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from dicomcloak.errors import InputError, MalformedError, ReadLimitError
from dicomcloak.raw.elements import element_repeated, element_too_large, too_many_elements, trailing_bytes
from dicomcloak.raw.limits import ReadLimits

__all__ = ["Source", "check_extent"]

_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_VRS: dict[bytes, str] = {vr: vr.decode() for vr in ENCODED_VR if len(vr) == 2}
_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_PADDING = 8  # fewer zero bytes than an element header may follow the last element


class Source(Protocol):
    """What the walk reads from: ``bytes``, or a window on a file (slices and ``find``, like ``bytes``)."""

    def __len__(self) -> int:
        """The size of the data."""

    def __getitem__(self, index: slice, /) -> bytes:
        """The bytes of a slice (shorter at the end of the data)."""

    def find(self, sub: bytes, start: int, end: int, /) -> int:
        """Where ``sub`` first occurs in ``[start, end)``, or -1."""


class _BrokenError(Exception):
    """A defined-length sequence the walk cannot follow: the sanitizer drops it, the walk goes on after it."""


@dataclass
class _Walk:
    """The state of one walk: the data, its byte order, the limits, the elements counted so far."""

    data: Source
    limits: ReadLimits
    tag_length: Struct
    explicit: Struct
    long: Struct
    delimiter: bytes
    lenient: int = 0  # how many defined-length sequences enclose the current position
    count: int = 0

    def broken(self, error: InputError) -> InputError | _BrokenError:
        """For a structure the walk cannot follow: ``error``, or inside a defined-length sequence, a skip."""
        return _BrokenError() if self.lenient else error

    def counted(self) -> None:
        """One more element header (element, item or fragment): refuse beyond ``max_elements``."""
        self.count += 1
        if self.count > self.limits.max_elements:
            raise too_many_elements()


def check_extent(data: Source, start: int, implicit: bool, little: bool, limits: ReadLimits) -> None:
    """Walk the element headers of the data set at ``start`` in ``data``; refuse what reading would refuse.

    Parameters
    ----------
    data:
        The encoded data set and what precedes it (preamble, File Meta).
    start:
        Where the data set's first element starts.
    implicit, little:
        How the data set is encoded (as the reader decided).
    limits:
        The reading limits (elements, element size, depth).

    Raises
    ------
    MalformedError
        ``length-beyond-file``, ``truncated``, ``element-repeated``, ``trailing-bytes``.
    ReadLimitError
        ``too-many-elements``, ``element-too-large``, ``sequence-too-deep``.
    """
    order = "<" if little else ">"
    walk = _Walk(
        data,
        limits,
        Struct(order + "HHL"),
        Struct(order + "HH2sH"),
        Struct(order + "L"),
        Struct(order + "HH").pack(0xFFFE, 0xE0DD),
    )
    size = len(data)
    end = _dataset(walk, start, size, size, implicit, 0)
    if end > size:
        raise _beyond()
    if end != size and (size - end >= _PADDING or data[end:size].strip(b"\x00")):
        raise _truncated()


def _dataset(walk: _Walk, pos: int, stop: int, eof: int, implicit: bool, depth: int) -> int:
    """Walk one data set from ``pos`` and return where it ends.

    It ends at ``stop`` (a defined-length item's end; the element that
    crosses it is read whole, as pydicom does), after an Item Delimitation
    Item, or where fewer than 8 bytes are left before ``eof``.
    """
    seen: set[int] = set()
    while pos < stop and eof - pos >= _PADDING:
        tag, vr, length, value = _header(walk, pos, eof, implicit)
        if tag == _ITEM_END:
            return value
        if tag in seen or not (tag or length):
            raise trailing_bytes() if not (tag or length) else element_repeated()
        seen.add(tag)
        walk.counted()
        pos = _value(walk, tag, vr, length, value, eof, implicit, depth)
    return pos


def _header(walk: _Walk, pos: int, eof: int, implicit: bool) -> tuple[int, str | None, int, int]:
    """The tag, VR (None when implicit), length and value position of the header at ``pos``.

    As pydicom's generator reads it: an explicit VR that is not two capitals
    means an implicit VR header; an unknown VR of two capitals has a 2-byte length.
    """
    head = walk.data[pos : pos + 8]
    if not implicit:
        group, number, raw_vr, short = walk.explicit.unpack(head)
        vr = _VRS.get(raw_vr)
        if vr in _LONG_VRS:
            if eof - pos < 12:
                raise walk.broken(_truncated())
            return group << 16 | number, vr, walk.long.unpack(walk.data[pos + 8 : pos + 12])[0], pos + 12
        if vr is not None or b"AA" <= raw_vr <= b"ZZ":
            return group << 16 | number, vr or raw_vr.decode("latin-1"), short, pos + 8
    group, number, length = walk.tag_length.unpack(head)
    return group << 16 | number, None, length, pos + 8


def _value(
    walk: _Walk, tag: int, vr: str | None, length: int, pos: int, eof: int, implicit: bool, depth: int
) -> int:
    """Jump over (or into) the value at ``pos``; return where the next element starts."""
    if length == _UNDEFINED:
        if vr in ("SQ", "UN") or (vr is None and _undefined_sequence(walk, tag, pos, eof)):
            return _items(walk, pos, None, eof, implicit, depth)
        return _delimited(walk, pos, eof)
    if length > walk.limits.max_element_bytes:
        raise element_too_large()
    end = pos + length
    if end > eof:
        raise walk.broken(_beyond())
    if length and (vr == "SQ" or (vr in (None, "UN") and _dictionary_vr(tag) == "SQ")):
        _defined_sequence(walk, pos, end, implicit or vr == "UN", depth)
    return end


def _undefined_sequence(walk: _Walk, tag: int, pos: int, eof: int) -> bool:
    """Whether an undefined-length value without VR is a sequence: by the dictionary, or an item follows."""
    vr = _dictionary_vr(tag)
    if vr != "":
        return vr == "SQ"
    if eof - pos < 4:
        return False
    return walk.tag_length.unpack(walk.data[pos : pos + 4] + bytes(4))[:2] == (0xFFFE, 0xE000)


@cache
def _dictionary_vr(tag: int) -> str:
    """The data dictionary's VR of ``tag`` ("" when it has none: private, unknown)."""
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return ""


def _items(walk: _Walk, pos: int, end: int | None, eof: int, implicit: bool, depth: int) -> int:
    """Walk a sequence's items from ``pos`` to ``end``, or (undefined length) to its delimitation item."""
    if depth >= walk.limits.max_sequence_depth:
        raise _too_deep()
    while end is None or pos < end:
        if eof - pos < _PADDING:
            raise walk.broken(_truncated())
        group, number, length = walk.tag_length.unpack(walk.data[pos : pos + 8])
        pos += 8
        if group << 16 | number == _SEQUENCE_END:
            return pos
        walk.counted()
        item_implicit = implicit or _item_is_implicit(walk, pos, eof)
        stop = eof if length == _UNDEFINED else pos + length
        pos = _dataset(walk, pos, stop, eof, item_implicit, depth + 1)
    return pos


def _item_is_implicit(walk: _Walk, pos: int, eof: int) -> bool:
    """pydicom reads an item of an explicit VR sequence as implicit when its first VR is not two capitals."""
    vr = walk.data[pos + 4 : min(pos + 6, eof)]
    return len(vr) == 2 and not (0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B)


def _defined_sequence(walk: _Walk, pos: int, end: int, implicit: bool, depth: int) -> None:
    """Walk a defined-length sequence's items, as the sanitizer will open them; a broken one is skipped."""
    walk.lenient += 1
    try:
        _items(walk, pos, end, end, implicit, depth)
    except _BrokenError:
        pass
    finally:
        walk.lenient -= 1


def _delimited(walk: _Walk, pos: int, eof: int) -> int:
    """An undefined-length value that is not a sequence, as pydicom reads it: items, else the first delimiter.

    Encapsulated Pixel Data is a list of items ended by a Sequence
    Delimitation Item (PS3.5 A.4); its fragments count as elements (the
    sanitizer counts them too). When the items do not lead to the delimiter,
    pydicom takes the value to the first delimiter's bytes.
    """
    start = pos
    while eof - pos >= _PADDING:
        group, number, length = walk.tag_length.unpack(walk.data[pos : pos + 8])
        tag = group << 16 | number
        if tag == _SEQUENCE_END:
            return pos + 8
        if tag != _ITEM:
            break
        walk.counted()
        pos += 8 + length
    found = walk.data.find(walk.delimiter, start, eof)
    if found < 0:
        raise walk.broken(_truncated())
    return found + 8


def _truncated() -> MalformedError:
    return MalformedError(
        "the file ends before its last element does",
        reference="truncated",
        hint="the file is damaged or incomplete; re-export it from the source system",
    )


def _beyond() -> MalformedError:
    return MalformedError(
        "an element's length points beyond the end of the file",
        reference="length-beyond-file",
        hint="the file is damaged or incomplete; re-export it from the source system",
    )


def _too_deep() -> ReadLimitError:
    return ReadLimitError(
        "sequences are nested deeper than the limit",
        reference="sequence-too-deep",
        hint="raise max_sequence_depth if such files are expected",
    )

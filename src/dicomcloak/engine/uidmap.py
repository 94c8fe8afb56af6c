"""The pseudonym-to-original pairs of one de-identified instance, for the vault's map (architecture.md, 3).

Objects made later on de-identified data (a SEG, an SR, an AI result) carry
the de-identified UIDs and pseudonyms only; re-identifying them needs the map
from each replaced UID (action U) and keyed pseudonym (action P) back to its
original. The engine records each element as it makes its pseudonyms
(:class:`Replaced`: the new values and the input element); the originals are
decoded, exactly as the input holds them, only when the vault's map is asked
for (:attr:`dicomcloak.engine.outcome.Outcome.replaced`), so sealing reads
nothing back.
:func:`replaced_pairs` reads the pairs back from the input and the output at
the paths the Outcome names (the input and the output share item indices:
de-identification never removes sequence items); the tests hold the engine's
pairs to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dicomcloak.engine.outcome import Change, TagPath
from dicomcloak.engine.values import is_single_byte
from dicomcloak.raw import read_items

__all__ = [
    "MAPPED_ACTIONS",
    "Replaced",
    "map_key",
    "mapped_pairs",
    "original_texts",
    "original_uids",
    "replaced_pairs",
]

#: Actions whose new value is a deterministic stand-in for the original (UIDs, keyed pseudonyms).
MAPPED_ACTIONS = frozenset({"U", "P"})


def map_key(tag: int, value: str, vr: str) -> str:
    """The vault map's key for a value: a UID as it is, any other pseudonym qualified by its tag.

    UIDs are unique whatever attribute holds them (a Referenced SOP Instance
    UID is some instance's SOP Instance UID), so they map by value alone. One
    patient pseudonym stands for both Patient's Name and Patient ID: the tag
    tells which original to give back.
    """
    return value if vr == "UI" else f"{tag:08X}:{value}"


class Replaced(NamedTuple):
    """One element the engine gave keyed UIDs (U) or pseudonyms (P): its pairs, decoded when asked.

    The engine keeps the new values it made and the input element; the
    originals are decoded only when the vault's map is wanted (most runs do
    not seal to a vault). ``items`` are the UIDs the engine decoded, for an
    element that is not raw. A named tuple: made for every U and P element of
    every file, it must cost next to nothing.
    """

    path: TagPath
    uid: bool
    news: Sequence[str]
    elem: DataElement | RawDataElement
    source: Dataset
    items: Sequence[str] = ()

    def pairs(self) -> Iterator[tuple[str, str]]:
        """(map key of the pseudonym, original) for each changed, non-empty value."""
        if self.uid:
            olds: Sequence[str] = original_uids(self.elem) or self.items
        else:
            olds = original_texts(self.elem, self.source)
        return mapped_pairs(self.path[-1], self.uid, self.news, olds)


def mapped_pairs(tag: int, uid: bool, news: Iterable[str], olds: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(map key of the pseudonym, original) for each changed, non-empty value of one element."""
    vr = "UI" if uid else ""
    for new, old in zip(news, olds, strict=False):
        if new and old and new != old:
            yield map_key(tag, new, vr), old


def original_uids(elem: DataElement | RawDataElement) -> list[str] | None:
    """The UIDs of a raw element, split and stripped from its bytes; None when it is not raw.

    UIDs are ASCII (PS3.5 6.2, 9.1): no conversion, no character set.
    """
    if isinstance(elem, RawDataElement) and isinstance(elem.value, bytes):
        text = elem.value.decode("latin-1").rstrip("\x00 ")
        return [part.strip(" \x00") for part in text.split("\\")]
    return None


_SHORT_TEXT = frozenset({"LO", "SH"})


def original_texts(elem: DataElement | RawDataElement, ds: Dataset) -> list[str]:
    """The text values of an element as pydicom decodes them, without storing the conversion in ``ds``.

    LO, SH and PN values in a single-byte character set (Latin-1, PS3.5
    6.1.2.3) are decoded here as pydicom's ``convert_text`` and ``convert_PN``
    do, without their per-element machinery (the tests hold both to pydicom).
    """
    value = elem.value
    raw = isinstance(elem, RawDataElement) and isinstance(value, bytes)
    if raw and isinstance(value, bytes) and is_single_byte(ds.original_character_set):
        if elem.VR in _SHORT_TEXT:
            return [part.rstrip("\x00 ") for part in value.decode("latin-1").split("\\")]
        if elem.VR == "PN":
            # convert_PN strips the whole value; a PersonName made from text drops trailing empty groups.
            return [part.rstrip("=") for part in value.rstrip(b"\x00 ").decode("latin-1").split("\\")]
    decoded = value if isinstance(elem, DataElement) else _decoded(elem, ds)
    values = decoded if isinstance(decoded, MultiValue | list) else [decoded]
    return ["" if single is None else str(single) for single in values]


def replaced_pairs(source: Dataset, out: Dataset, changes: Iterable[Change]) -> tuple[tuple[str, str], ...]:
    """Distinct (map key of the pseudonym, original) pairs of every U or P change; empty values skipped."""
    pairs: dict[str, str] = {}
    reader = _Reader()
    for change in changes:
        if change.action not in MAPPED_ACTIONS:
            continue
        vr = "UI" if change.action == "U" else ""
        uid = change.action == "U"
        news = reader.values(out, change.path, uid)
        for new, old in zip(news, reader.values(source, change.path, uid), strict=False):
            if new and old and new != old:
                pairs[map_key(change.path[-1], new, vr)] = old
    return tuple(pairs.items())


class _Reader:
    """Reads values at tag paths; each data set's keys are mapped to ints and each sequence opened once.

    An int looked up among pydicom's BaseTag keys calls BaseTag's Python-level ``__eq__``;
    mapping a data set's keys once makes every later lookup a plain int one.
    """

    def __init__(self) -> None:
        self._keys: dict[int, dict[int, Any]] = {}
        self._opened: dict[tuple[int, int], list[Dataset]] = {}

    def _element(self, ds: Dataset, tag: int) -> Any:
        keys = self._keys.get(id(ds))
        if keys is None:
            keys = self._keys[id(ds)] = {int(key): key for key in ds._dict}  # noqa: SLF001
        key = keys.get(tag)
        return None if key is None else ds._dict[key]  # noqa: SLF001 - the element as stored

    def values(self, ds: Dataset, path: TagPath, uid: bool) -> Iterator[str]:
        """The text values of the element at ``path`` (none when the path no longer resolves)."""
        current = ds
        for position in range(0, len(path) - 1, 2):
            tag, index = path[position], path[position + 1]
            items = self._opened.get((id(current), tag))
            if items is None:
                if self._element(current, tag) is None:
                    return
                items = self._opened[(id(current), tag)] = _items(current, tag)
            if index >= len(items):
                return
            current = items[index]
        elem = self._element(current, path[-1])
        if elem is None:
            return
        if uid and isinstance(elem, RawDataElement) and isinstance(elem.value, bytes):
            # UIDs are ASCII (PS3.5 6.2, 9.1): split and strip the raw bytes, no conversion. Names and
            # IDs may use the data set's character set: pydicom decodes them.
            text = elem.value.decode("latin-1").rstrip("\x00 ")
            yield from (part.strip(" \x00") for part in text.split("\\"))
            return
        value = elem.value if isinstance(elem, DataElement) else _decoded(elem, current)
        values = value if isinstance(value, MultiValue | list) else [value]
        for single in values:
            yield "" if single is None else str(single)


def _decoded(elem: RawDataElement, ds: Dataset) -> Any:
    """The element's value, decoded without storing the conversion in ``ds``.

    ``ds[tag]`` would replace the raw element in the data set by its decoded
    form: the output would then be re-encoded by pydicom instead of copied,
    and the input would change under its reader.
    """
    return convert_raw_data_element(elem, encoding=ds.original_character_set, ds=ds).value


def _items(ds: Dataset, tag: int) -> list[Dataset]:
    """A sequence's items, through the fast raw reader when it can (as the engine opens them)."""
    elem: object = ds.get_item(tag)
    if isinstance(elem, RawDataElement) and isinstance(elem.value, bytes) and elem.length != 0xFFFFFFFF:
        items = read_items(elem.value, elem.is_implicit_VR, elem.is_little_endian, ds.original_character_set)
        if items is not None:
            return items
        return list(_decoded(elem, ds) or [])
    return list(ds[tag].value or [])

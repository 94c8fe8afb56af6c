"""Read the identifying values of an ORIGINAL data set, before de-identification replaces them.

Which elements: every attribute that PS3.15 Table E.1-1's Basic Profile does
not keep (its action is not K), read from the packaged table
(:func:`dicomcloak.standard.table.table_rows`), restricted to values a
device could burn into an image:

* person names (PN), dates (DA, DT) and times (TM), all of them;
* text (LO, SH, ST, LT, UC, UT, AE) when the keyword names an identity:
  it holds ``ID``, ``Number``, ``Name``, ``Address``, ``Telephone``,
  ``Institution``, ``Station``, ``Location``... (:data:`_HINTS`) and is no
  description, protocol, label or comment (:data:`_NOT_IDENTITY`): a Study
  Description ``US ABDOMEN`` is removed by the profile because it *may*
  hold PHI, not because ``ABDOMEN`` on the screen identifies anyone.

Values are decoded without caching them in the data set (the same
:func:`dicomcloak.engine.values.decode` the engine uses); sequences are
walked a few levels deep, skipping the per-frame functional groups.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dicomcloak.engine.values import decode, element_vr
from dicomcloak.standard.table import Action, table_rows

__all__ = ["identity_keywords", "read_values"]

_ALWAYS = frozenset({"PN", "DA", "DT", "TM"})
_TEXT = frozenset({"LO", "SH", "ST", "LT", "UC", "UT", "AE"})
_HINTS = (
    "ID", "Number", "Name", "Address", "Telephone", "Telecom", "Phone", "Institution", "Department",
    "Station", "Location", "Residence", "Organization", "Locator", "Identifier", "Rank", "Occupation",
    "Religious", "Ethnic", "Country", "Region", "Author", "Owner",
)
_NOT_IDENTITY = ("Protocol", "Description", "Label", "Comment", "Selector", "ROI", "StructureSet", "Plan")
#: Big per-frame sequences hold geometry, not identity (PS3.3 C.7.6.16).
_SKIP_SEQUENCES = frozenset({0x52009230, 0x52009229})
_MAX_DEPTH = 3
_MAX_ITEMS = 64


@cache
def identity_keywords() -> frozenset[str]:
    """Keywords whose values :func:`read_values` collects (Basic Profile action not K, see module doc)."""
    found: set[str] = set()
    for row in table_rows():
        tag = tag_for_keyword(row.keyword) if row.keyword else None
        if tag is not None and row.basic is not Action.K and _burnable(row.keyword, dictionary_VR(tag)):
            found.add(row.keyword)
    return frozenset(found)


def _burnable(keyword: str, vr: str) -> bool:
    if vr in _ALWAYS:
        return True
    if vr not in _TEXT or any(word in keyword for word in _NOT_IDENTITY):
        return False
    return any(word in keyword for word in _HINTS)


def read_values(ds: Dataset, depth: int = 0) -> Iterator[tuple[str, str, str]]:
    """Yield ``(keyword, vr, text)`` for every identifying value in ``ds`` and its sequences."""
    wanted = identity_keywords()
    charset = ds.original_character_set
    for tag in sorted(ds.keys()):
        elem = ds.get_item(tag)
        vr = element_vr(elem)
        if vr == "SQ":
            yield from _read_sequence(ds, tag, depth)
            continue
        keyword = keyword_for_tag(tag)
        if keyword in wanted:
            for text in _strings(decode(elem, vr, ds, charset)):
                yield keyword, vr, text


def _read_sequence(ds: Dataset, tag: int, depth: int) -> Iterator[tuple[str, str, str]]:
    if depth >= _MAX_DEPTH or tag in _SKIP_SEQUENCES:
        return
    for item in list(ds[tag].value or [])[:_MAX_ITEMS]:
        yield from read_values(item, depth + 1)


def _strings(value: Any) -> Iterator[str]:
    items = value if isinstance(value, MultiValue | list | tuple) else [value]
    for item in items:
        text = "" if item is None else str(item).strip()
        if text:
            yield text

"""Which keys a Q/R identifier may match on, and the checks on their values (PS3.4 C.2.2.2).

:mod:`dicomcloak.net.query` translates what passes; everything else is
refused here with ``query-not-translatable``, naming the keyword, never the
value (docs/gateway.md, "What is refused, and why").
"""

from __future__ import annotations

import re

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue

from dicomcloak.engine import dates
from dicomcloak.errors import UsageError
from dicomcloak.keys.pseudonyms import DateShift

__all__ = [
    "ACCESSION",
    "CHARSET",
    "DATE_KEYS",
    "ID_KEYS",
    "ISSUER",
    "LEVEL",
    "LEVELS",
    "PASSED",
    "PATIENT_ID",
    "QUERY_NOT_TRANSLATABLE",
    "UID_KEYS",
    "QueryRefusedError",
    "check_keys",
    "date_bounds",
    "is_return_key",
    "refuse",
    "text",
    "values",
]

QUERY_NOT_TRANSLATABLE = "query-not-translatable"
#: Query/Retrieve Level values (PS3.4 C.6.1.1, C.6.2.1).
LEVELS = frozenset({"PATIENT", "STUDY", "SERIES", "IMAGE"})

LEVEL, CHARSET = 0x00080052, 0x00080005
PATIENT_ID, ISSUER = 0x00100020, 0x00100021
ACCESSION = 0x00080050
UID_KEYS = frozenset({0x0020000D, 0x0020000E, 0x00080018})  # Study, Series, SOP Instance UID
ID_KEYS = frozenset({PATIENT_ID, ACCESSION})
DATE_KEYS = frozenset({0x00080020, 0x00080021})  # Study Date, Series Date
PASSED = frozenset({0x00080060, 0x00080061})  # Modality, Modalities in Study: identify no one
_WILDCARDS = ("*", "?")  # PS3.4 C.2.2.2.4
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")  # PS3.5 9.1
_DATE_RANGE = re.compile(r"^(\d{8})?-(\d{8})?$")  # PS3.4 C.2.2.2.5


class QueryRefusedError(UsageError):
    """A C-FIND, C-MOVE or C-GET identifier the gateway cannot translate safely; never forwarded.

    The message names the attribute's keyword and why, never its value.
    """

    default_reference = QUERY_NOT_TRANSLATABLE
    keyword: str = ""  # the refused key's keyword, or its tag when it has none
    tag: int = 0


def refuse(tag: int, why: str) -> QueryRefusedError:
    """The refusal of the key ``tag``, named by its keyword; ``why`` is a fixed phrase, never a value."""
    name = keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    error = QueryRefusedError(
        f"cannot translate the query key {name} ({why})",
        hint="match on Patient ID, Accession Number, Study/Series/SOP Instance UID or (with Patient ID) "
        "Study/Series Date; send every other attribute as an empty return key "
        "(docs/gateway.md, 'What is refused, and why')",
    )
    error.keyword, error.tag = name, tag
    return error


def date_bounds(tag: int, value: str) -> tuple[str, str]:
    """(low, high) of a single date or a range (PS3.4 C.2.2.2.5); anything else is refused."""
    if "-" not in value:
        low = high = value
    else:
        match = _DATE_RANGE.match(value)
        if match is None or value == "-":
            raise refuse(tag, "not a date or a date range")
        low, high = match[1] or "", match[2] or ""
    for bound in (low, high):
        if bound and dates.shift_date(bound, None, DateShift(0, 0)) is None:
            raise refuse(tag, "not a date or a date range")
    return low, high


def check_keys(matching: dict[int, DataElement]) -> None:
    """Refuse every matching key but the translatable ones, and their values the engine cannot key."""
    for tag, elem in matching.items():
        if tag in ID_KEYS or tag == ISSUER:
            _check_single(tag, elem)
        elif tag in UID_KEYS:
            if not all(_UID.match(uid) for uid in values(elem)):
                raise refuse(tag, "not a UID or a list of UIDs")
        elif tag not in DATE_KEYS:
            raise refuse(tag, "not a translatable matching key")
    if ISSUER in matching and PATIENT_ID not in matching:
        raise refuse(ISSUER, "only with Patient ID")


def _check_single(tag: int, elem: DataElement) -> None:
    given = values(elem)
    if len(given) != 1:
        raise refuse(tag, "not a single value")
    if any(wildcard in given[0] for wildcard in _WILDCARDS):
        raise refuse(tag, "a wildcard cannot be keyed")


def values(elem: DataElement) -> list[str]:
    """Each value of an element, as text (one for a single value)."""
    value = elem.value
    items = list(value) if isinstance(value, MultiValue | list) else [value]
    return [str(item).strip() for item in items]


def text(elem: DataElement | None) -> str:
    """The element's value as one stripped text ("" when absent or empty), values joined by backslashes."""
    if elem is None or elem.value is None:
        return ""
    value = elem.value
    if isinstance(value, MultiValue | list):
        return "\\".join(str(item).strip() for item in value)
    return str(value).strip()


def is_return_key(elem: DataElement) -> bool:
    """An empty value (universal match, PS3.4 C.2.2.2.3) or a sequence of empty items (C.2.2.2.6)."""
    if elem.VR == "SQ":
        return all(all(is_return_key(inner) for inner in item) for item in elem.value or [])
    value = elem.value
    if value is None:
        return True
    if isinstance(value, bytes):
        return not value
    if isinstance(value, MultiValue | list):
        return all(str(item).strip() == "" for item in value)
    return str(value).strip() == ""



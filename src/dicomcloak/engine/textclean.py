"""The C (clean) action for free text: remove the instance's identifying values wherever they appear.

PS3.15 E.1.1 defines C as "replace with values of similar meaning known not to
contain identifying information". What dicomcloak removes from a cleaned text
value (docs/policy.md, "Clean"):

1. every identifying value of the same instance: the value of every element
   the policy changes or removes (names, IDs, accession, institution,
   addresses, station, ...), matched case-insensitively;
2. person-name components (family, given, middle of 3+ characters) of those
   values, in any order;
3. those values' dates in the common formats (YYYYMMDD, YYYY-MM-DD,
   YYYY/MM/DD, MM/DD/YYYY, DD.MM.YYYY, DD/MM/YYYY, YYYY.MM.DD);
4. any date-like, telephone-like or e-mail-like pattern, and any run of 6 or
   more digits (identifiers), identifying or not.

Each removed span becomes ``*``; the rest of the text (clinical words) stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["TextCleaner", "date_variants", "name_components"]

_PATTERNS = (
    r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b",  # ISO-like dates
    r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b",  # US/European dates
    r"\+?\d[\d ()-]{7,}\d",  # telephone numbers
    r"[\w.+-]+@[\w-]+\.[\w.-]+",  # e-mail addresses
    r"\d{6,}",  # long digit runs: identifiers, compact dates
)
_MIN_VALUE = 2
_MIN_COMPONENT = 3


def date_variants(value: str) -> set[str]:
    """The common written forms of a DA value (YYYYMMDD)."""
    if len(value) != 8 or not value.isdigit():
        return set()
    y, m, d = value[:4], value[4:6], value[6:]
    return {
        value, f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{m}/{d}/{y}", f"{d}.{m}.{y}", f"{d}/{m}/{y}", f"{y}.{m}.{d}",
    }


def name_components(value: str) -> set[str]:
    """Components of a PN value (all groups), 3+ characters long."""
    parts = re.split(r"[\^=\s,]+", value)
    return {part for part in parts if len(part) >= _MIN_COMPONENT}


class TextCleaner:
    """Removes a fixed set of identifying values, and generic patterns, from text.

    Parameters
    ----------
    values:
        The identifying values of the instance (already split into components
        and date variants by the caller, or not: both are fine).
    """

    def __init__(self, values: Iterable[str]) -> None:
        terms = {v.strip() for v in values if len(v.strip()) >= _MIN_VALUE}
        # Longest first, so a full name is removed before its components.
        ordered = sorted(terms, key=lambda t: (-len(t), t))
        alternatives = [re.escape(term) for term in ordered] + list(_PATTERNS)
        self._regex = re.compile("|".join(alternatives), re.IGNORECASE)

    def clean(self, text: str) -> str:
        """Return ``text`` with every identifying span replaced by ``*``."""
        cleaned = self._regex.sub("*", text)
        return re.sub(r"\*(\s*\*)+", "*", cleaned)

"""Find many identifying strings in element text at once, without ever reporting the string.

A :class:`NeedleIndex` holds lower-cased needles, each with a *kind*
(``person-name``, ``name-part``, ``date``, ``time``, ``text``). Matching is a
case-insensitive substring search with three precision rules, chosen to keep
false alarms rare on real headers:

* values shorter than 4 characters are ignored, except person-name parts of
  3 characters, which must then stand as a whole word (no letter either side);
* "pure numbers" (digits with ``.``, ``+``, ``-``, space) with fewer than 6
  digits are ignored: ages, weights, counts and slice positions collide with
  them by chance;
* pure numbers of 6 digits or more (dates, times, long IDs) must not touch
  another digit or ``.`` either side, so ``135803`` (a time) is not found
  inside the decimal ``-158.135803``.

Small indexes are searched needle by needle with ``str.find`` (C speed); big
ones (the union of a whole tree) through a dictionary keyed by each needle's
first three characters, one probe per position of the searched text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Needle", "NeedleIndex", "normalize"]

_PREFIX = 3
_MIN_CHARS = 4
_MIN_DIGITS = 6
_SMALL = 64
_NUMBER = re.compile(r"^[0-9.+\- ]+$")
_DIGIT_EDGE = frozenset("0123456789.")


def normalize(value: str) -> str:
    """The searchable form of a value: padding stripped, lower case."""
    return value.replace("\x00", " ").strip().lower()


@dataclass(frozen=True, slots=True)
class Needle:
    """One searched value (lower case) and what kind of value it was."""

    text: str
    kind: str
    edge: str  # "" (anywhere), "digit" (not inside a number), "alpha" (whole word)

    def fits(self, hay: str, start: int) -> bool:
        """True when the match at ``start`` respects this needle's edge rule."""
        if not self.edge:
            return True
        end = start + len(self.text)
        before = hay[start - 1] if start > 0 else ""
        after = hay[end] if end < len(hay) else ""
        if self.edge == "digit":
            return before not in _DIGIT_EDGE and after not in _DIGIT_EDGE
        return not (before.isalpha() or after.isalpha())


def make_needle(value: str, kind: str) -> Needle | None:
    """Apply the precision rules of the module docstring; None when the value is not searched."""
    text = normalize(value)
    if _NUMBER.match(text):
        digits = sum(ch.isdigit() for ch in text)
        return Needle(text, kind, "digit") if digits >= _MIN_DIGITS else None
    if len(text) >= _MIN_CHARS:
        return Needle(text, kind, "")
    if kind == "name-part" and len(text) == _MIN_CHARS - 1:
        return Needle(text, kind, "alpha")
    return None


class NeedleIndex:
    """A set of needles searched together; the first kind given for a text wins."""

    def __init__(self) -> None:
        self._needles: dict[str, Needle] = {}
        self._by_prefix: dict[str, list[Needle]] | None = None

    def __len__(self) -> int:
        return len(self._needles)

    def add(self, value: str, kind: str) -> None:
        """Add one value (ignored when the precision rules say so)."""
        needle = make_needle(value, kind)
        if needle is not None and needle.text not in self._needles:
            self._needles[needle.text] = needle
            self._by_prefix = None

    def discard(self, value: str) -> None:
        """Stop searching for ``value`` (e.g. because the policy keeps it)."""
        if self._needles.pop(normalize(value), None) is not None:
            self._by_prefix = None

    def update(self, other: NeedleIndex) -> None:
        """Add every needle of ``other``."""
        for needle in other._needles.values():
            self._needles.setdefault(needle.text, needle)
        self._by_prefix = None

    def texts(self) -> set[str]:
        """The searched texts (for set algebra between indexes; never for output)."""
        return set(self._needles)

    def search(self, hay: str) -> Iterator[tuple[int, Needle]]:
        """Yield ``(position, needle)`` for every match in ``hay`` (already lower case)."""
        if len(self._needles) <= _SMALL:
            yield from self._search_each(hay)
        else:
            yield from self._search_prefix(hay)

    def _search_each(self, hay: str) -> Iterator[tuple[int, Needle]]:
        for needle in self._needles.values():
            start = hay.find(needle.text)
            while start >= 0:
                if needle.fits(hay, start):
                    yield start, needle
                start = hay.find(needle.text, start + 1)

    def _prefix_table(self) -> dict[str, list[Needle]]:
        if self._by_prefix is None:
            table: dict[str, list[Needle]] = {}
            for needle in self._needles.values():
                table.setdefault(needle.text[:_PREFIX], []).append(needle)
            self._by_prefix = table
        return self._by_prefix

    def _search_prefix(self, hay: str) -> Iterator[tuple[int, Needle]]:
        table = self._prefix_table()
        get = table.get
        for start in range(len(hay) - _PREFIX + 1):
            found = get(hay[start:start + _PREFIX])
            if found is None:
                continue
            for needle in found:
                if hay.startswith(needle.text, start) and needle.fits(hay, start):
                    yield start, needle

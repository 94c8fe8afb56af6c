"""Find many identifying strings in element text at once, without ever reporting the string.

A :class:`NeedleIndex` holds lower-cased needles, each with a *kind* (what the
value was in its original, see :mod:`dicomcloak.verify.kinds`), the original
it came from and the element that held it. Matching is a case-insensitive
substring search with precision rules chosen to keep false alarms rare on
real headers while every real value of an identifying attribute stays found:

* a needle must hold a letter or a digit (``^^^^`` or ``----`` identify no one),
  and at least 4 characters, except person-name parts of 3 characters;
* a needle never matches inside a longer word: where it begins (ends) with a
  letter or digit, the character before (after) the match must not be one;
* "pure numbers" (digits with ``.``, ``+``, ``-``, space) with fewer than 4
  digits are ignored: ages, weights, counts collide with them by chance; with
  4 or 5 digits they count only as a whole token (no letter, digit or ``.``
  either side), so ``0010`` is not found inside ``19000101``; with 6 digits or
  more (dates, times, long IDs) they must not touch another digit or ``.``,
  so ``135803`` (a time) is not found inside the decimal ``-158.135803`` but
  ``123456`` is found in ``MRN123456``.

Small indexes are searched needle by needle with ``str.find`` (C speed); big
ones (the union of a whole tree) through a dictionary keyed by each needle's
first three characters, one probe per position of the searched text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from dicomcloak.engine.outcome import TagPath

__all__ = ["Needle", "NeedleIndex", "make_needle", "normalize"]

_PREFIX = 3
_MIN_CHARS = 4
_MIN_DIGITS = 4
_LONG_DIGITS = 6
_SMALL = 64
_NUMBER = re.compile(r"^[0-9.+\- ]+$")
_ALNUM = re.compile(r"[^\W_]")
_DIGITS = re.compile(r"[0-9]")
_DIGIT_EDGE = frozenset("0123456789.")
_NAME_PART = "name-part"


def normalize(value: str) -> str:
    """The searchable form of a value: padding stripped, lower case."""
    return value.replace("\x00", " ").strip().lower()


def _word_char(ch: str) -> bool:
    return ch.isalnum()


class Needle(NamedTuple):
    """One searched value (lower case), its kind, and where it came from (never printed).

    ``edge`` is the match rule: ``"word"`` (not inside a longer word),
    ``"token"`` (a short number: a whole token) or ``"number"`` (a long number:
    not inside another number). ``owner`` indexes the original instance,
    ``source`` is the tag path of the element that held the value.
    """

    text: str
    kind: str
    edge: str
    owner: int
    source: TagPath

    def fits(self, hay: str, start: int) -> bool:
        """True when the match at ``start`` respects this needle's edge rule."""
        end = start + len(self.text)
        before = hay[start - 1] if start > 0 else ""
        after = hay[end] if end < len(hay) else ""
        if self.edge == "number":
            return before not in _DIGIT_EDGE and after not in _DIGIT_EDGE
        if self.edge == "token":
            return not (_word_char(before) or before == "." or _word_char(after) or after == ".")
        text = self.text
        return not (_word_char(text[0]) and _word_char(before)) and not (
            _word_char(text[-1]) and _word_char(after)
        )


def make_needle(value: str, kind: str, owner: int = 0, source: TagPath = ()) -> Needle | None:
    """Apply the precision rules of the module docstring; None when the value is not searched."""
    text = normalize(value)
    if _ALNUM.search(text) is None:
        return None
    if _NUMBER.match(text):
        digits = len(_DIGITS.findall(text))
        if digits < _MIN_DIGITS:
            return None
        return Needle(text, kind, "number" if digits >= _LONG_DIGITS else "token", owner, source)
    if len(text) >= _MIN_CHARS or (kind == _NAME_PART and len(text) == _MIN_CHARS - 1):
        return Needle(text, kind, "word", owner, source)
    return None


class NeedleIndex:
    """A set of needles searched together; the first needle given for a text wins."""

    def __init__(self, needles: Iterable[Needle] = ()) -> None:
        self._needles: dict[str, Needle] = {}
        self._by_prefix: dict[str, list[Needle]] | None = None
        for needle in needles:
            self.put(needle)

    def __len__(self) -> int:
        return len(self._needles)

    def __contains__(self, text: object) -> bool:
        return text in self._needles

    def put(self, needle: Needle) -> None:
        """Add a needle unless one with the same text is there already."""
        if needle.text not in self._needles:
            self._needles[needle.text] = needle
            self._by_prefix = None

    def add(self, value: str, kind: str, owner: int = 0, source: TagPath = ()) -> None:
        """Add one value (ignored when the precision rules say so)."""
        needle = make_needle(value, kind, owner, source)
        if needle is not None:
            self.put(needle)

    def discard(self, value: str) -> None:
        """Stop searching for ``value``."""
        if self._needles.pop(normalize(value), None) is not None:
            self._by_prefix = None

    def needles(self) -> Iterator[Needle]:
        """The needles, in the order they were added."""
        return iter(self._needles.values())

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

"""The instance's own identifying header values, normalised, and fuzzy matching of OCR text against them.

Burned-in text usually repeats the header: the device printed the patient's
name, ID and dates from the same attributes (PS3.3 C.7.6.1.1.2, Burned In
Annotation). :meth:`HeaderValues.capture` reads them from the ORIGINAL data
set (before de-identification replaces them) and keeps only normalised forms
(:mod:`.normalise`); :meth:`HeaderValues.match` says which attribute a text
region repeats, never the value.

Matching rules (a *form* is a normalised header value):

* forms shorter than 3 characters are never kept (``JO``, ``M``), nor
  forms of one repeated character (``000000000``, a device's dummy);
* forms of 3-4 characters match a whole word of the text only (``LEE``
  does not match ``SLEEP``);
* longer forms match anywhere in the compact text, or with at most
  ``floor(0.2 * length)`` edits (similarity ratio >= 0.8, :mod:`.fuzzy`);
  all-digit forms (IDs, dates) are searched among the text's digits, with
  one edit allowed from 8 digits on;
* a text of 5 characters or more (6 for digits) that is a piece of a longer
  form also matches: OCR splits ``ST. MARY'S`` from ``HOSPITAL``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn

from pydicom.dataset import Dataset

from dicomcloak.pixels.classify.collect import read_values
from dicomcloak.pixels.classify.dates import date_forms, time_forms
from dicomcloak.pixels.classify.fuzzy import allowed_edits, bigrams, may_contain, within
from dicomcloak.pixels.classify.normalise import compact, digit_view, tokens, words

__all__ = ["HeaderValues"]

_MIN_FORM = 3
_WORD_ONLY = 5
_MIN_PIECE = 5
_MIN_DIGIT_PIECE = 6
_FUZZY_DIGITS = 8
_MAX_FUZZY = 64
_MAX_WORDS = 12
_KIND_BY_VR = {"PN": "person-name", "DA": "date", "DT": "date", "TM": "time"}
_KIND_BY_WORD = (
    ("Institution", "institution"), ("Department", "institution"), ("Organization", "institution"),
    ("Issuer", "institution"),
    ("Address", "location"), ("Location", "location"), ("Residence", "location"),
    ("Country", "location"), ("Region", "location"), ("Telephone", "phone"), ("Phone", "phone"),
    ("Telecom", "phone"),
)
_PN_SPLIT = re.compile(r"[\^=,\s]+")


@dataclass(frozen=True, slots=True)
class _Form:
    """One normalised header value, with what it was (keyword, kind) and how it may match."""

    form: str
    keyword: str
    kind: str
    digits: bool
    edits: int
    grams: tuple[str, ...]
    spans: frozenset[str]  # runs of whole words of the value, 5+ characters


class HeaderValues:
    """Normalised identifying values of one ORIGINAL instance; never shown, logged or pickled.

    Build it with :meth:`capture` before the header is de-identified; pass it
    to :func:`dicomcloak.pixels.classify.classify`. Its ``repr`` shows only
    how many forms it holds.
    """

    __slots__ = ("_forms", "_fuzzy", "_long", "_pieces", "_short")

    def __init__(self, forms: Iterable[_Form] = ()) -> None:
        unique: dict[str, _Form] = {}
        for form in forms:
            unique.setdefault(form.form, form)
        # Longest first: the most specific attribute names the rule.
        self._forms = tuple(sorted(unique.values(), key=lambda f: (-len(f.form), f.form)))
        self._short = {f.form: f for f in self._forms if len(f.form) < _WORD_ONLY}
        self._long = tuple(f for f in self._forms if len(f.form) >= _WORD_ONLY)
        self._fuzzy = tuple(f for f in self._long if f.edits)
        self._pieces: dict[tuple[bool, str], _Form] = {}
        for form in reversed(self._long):
            self._pieces.update(((form.digits, span), form) for span in form.spans)

    @classmethod
    def capture(cls, ds: Dataset) -> HeaderValues:
        """Read the identifying values of ``ds`` (the original, before de-identification)."""
        return cls.from_values(read_values(ds))

    @classmethod
    def from_values(cls, values: Iterable[tuple[str, str, str]]) -> HeaderValues:
        """Build from ``(keyword, vr, text)`` triples, as :func:`.collect.read_values` yields them."""
        return cls(form for keyword, vr, text in values for form in _forms_of(keyword, vr, text))

    def __len__(self) -> int:
        return len(self._forms)

    def __repr__(self) -> str:
        return f"HeaderValues(<{len(self._forms)} forms>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("HeaderValues holds identifying values: it is never pickled or sent elsewhere")

    def match(self, text: str) -> tuple[str, str] | None:
        """``(keyword, kind)`` of the header value ``text`` shows, or ``None``.

        Exact matches are tried before pieces, pieces before fuzzy matches.
        """
        if not self._forms:
            return None
        view = _View(text)
        found = self._exact(view) or self._piece(view) or self._near(view)
        return (found.keyword, found.kind) if found else None

    def _exact(self, view: _View) -> _Form | None:
        hit = next((self._short[t] for t in view.tokens if t in self._short), None)
        return hit or next((f for f in self._long if f.form in view.haystack(f.digits)), None)

    def _piece(self, view: _View) -> _Form | None:
        return self._pieces.get((False, view.compact)) or self._pieces.get((True, view.digits))

    def _near(self, view: _View) -> _Form | None:
        for form in self._fuzzy:
            grams = view.digit_grams if form.digits else view.grams
            if may_contain(form.grams, grams, form.edits) and within(
                form.form, view.haystack(form.digits), form.edits
            ):
                return form
        return None


class _View:
    """The views of one OCR text that header forms are searched in."""

    __slots__ = ("compact", "digit_grams", "digits", "grams", "tokens")

    def __init__(self, text: str) -> None:
        self.compact = compact(text)
        self.digits = digit_view(text)
        self.tokens = tokens(text)
        self.grams = frozenset(bigrams(self.compact))
        self.digit_grams = frozenset(bigrams(self.digits))

    def haystack(self, digits: bool) -> str:
        return self.digits if digits else self.compact


def _forms_of(keyword: str, vr: str, text: str) -> list[_Form]:
    kind = _kind_of(keyword, vr)
    made = (_make(form, keyword, kind) for form in _written_forms(vr, text))
    # Dummies like ``000000000`` or ``XXXX`` identify no one and would match any such run.
    return [form for form in made if len(form.form) >= _MIN_FORM and len(set(form.form)) > 1]


def _kind_of(keyword: str, vr: str) -> str:
    if vr in _KIND_BY_VR:
        return _KIND_BY_VR[vr]
    return next((kind for word, kind in _KIND_BY_WORD if word in keyword), "id")


def _written_forms(vr: str, text: str) -> set[str]:
    if vr == "PN":
        return _name_forms(text)
    if vr == "DA":
        return date_forms(text)
    if vr == "DT":
        return date_forms(text[:8]) | time_forms(text[8:])
    if vr == "TM":
        return time_forms(text)
    return {text}


def _name_forms(text: str) -> set[str]:
    """Each name part of 3+ characters, and the family and given names together in both orders."""
    parts = [part for part in _PN_SPLIT.split(text) if part]
    forms = {part for part in parts if len(compact(part)) >= _MIN_FORM}
    if len(parts) >= 2:
        family, given = parts[0], parts[1]
        forms |= {family + given, given + family, "".join(parts)}
    return forms


def _make(text: str, keyword: str, kind: str) -> _Form:
    digits = not any(ch.isalpha() for ch in text)
    form = digit_view(text) if digits else compact(text)
    edits = (1 if len(form) >= _FUZZY_DIGITS else 0) if digits else allowed_edits(len(form))
    if len(form) > _MAX_FUZZY:
        edits = 0  # long free text: exact containment only, the quadratic step stays small
    return _Form(form, keyword, kind, digits, edits, bigrams(form), _spans(text, form, digits))


def _spans(text: str, form: str, digits: bool) -> frozenset[str]:
    """Runs of whole words of ``text`` (normalised), shorter than the whole, of 5+ (digits 6+) characters."""
    parts = [digit_view(word) if digits else compact(word) for word in words(text)[:_MAX_WORDS]]
    least = _MIN_DIGIT_PIECE if digits else _MIN_PIECE
    runs = {"".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)}
    return frozenset(run for run in runs if len(run) >= least and run != form)

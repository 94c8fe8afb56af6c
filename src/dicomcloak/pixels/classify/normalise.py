"""Normalise OCR text and header values the same way, so that OCR noise does not defeat matching.

OCR confuses glyphs that look alike: ``O``/``0``, ``I``/``1``/``l``/``|``,
``S``/``5``, ``B``/``8``, ``Z``/``2``. Both sides of every comparison (the
text read from the pixels and the header value it may show) go through the
same folding, so a misread character matches its look-alike. Spaces and
punctuation are dropped for matching: a header's ``SMITH^JOHN`` is shown as
``SMITH, JOHN`` or ``JOHN SMITH`` on screen.

Three views of one text:

* :func:`compact`: casefolded, look-alikes folded, only letters and digits;
* :func:`tokens`: the compact form of each word (apostrophes inside a word
  kept together: ``O'BRIEN`` is one token);
* :func:`digit_view`: the digits of every mostly-numeric word, with
  look-alike letters read as digits (``O8/29/l951`` gives ``08291951``).
"""

from __future__ import annotations

import re

__all__ = ["compact", "digit_fold", "digit_view", "fold", "letter_fold", "tokens", "words"]

#: Look-alike glyphs folded to one representative (casefolded input).
_FOLD = str.maketrans({"o": "0", "i": "1", "l": "1", "|": "1", "s": "5", "b": "8", "z": "2"})
#: In a mostly-numeric word, letters OCR reads for digits.
_TO_DIGIT = str.maketrans({
    "O": "0", "o": "0", "I": "1", "i": "1", "l": "1", "|": "1",
    "S": "5", "s": "5", "B": "8", "Z": "2", "z": "2",
})
#: In a mostly-alphabetic word, digits OCR reads for letters (``1`` is ``I`` or ``L``: ``I`` here).
_TO_LETTER = str.maketrans({"0": "O", "1": "I", "5": "S", "8": "B", "2": "Z", "|": "I"})
_LOOKALIKES = frozenset("OoIil|SsBZz")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_WORD = re.compile(r"[0-9A-Za-z\u00c0-\u024f|]+(?:['\u2019][0-9A-Za-z\u00c0-\u024f]+)*")
_DIGIT_WORD = re.compile(r"[0-9A-Za-z|]+")
#: A run of characters and date/time separators with no space: ``2OIS-O7-2I``, ``II:02:0O``.
_CHUNK = re.compile(r"[0-9A-Za-z|]+(?:[/.:\-][0-9A-Za-z|]+)*")


def fold(text: str) -> str:
    """Casefold and replace look-alike glyphs by one representative (``Boston`` -> ``80510n``)."""
    return text.casefold().translate(_FOLD)


def compact(text: str) -> str:
    """The folded text with everything but letters and digits dropped (``Smith, J.`` -> ``5m1thj``)."""
    return _NOT_ALNUM.sub("", fold(text))


def words(text: str) -> list[str]:
    """The words of ``text`` as written (letters, digits, inner apostrophes), in order."""
    return _WORD.findall(text)


def tokens(text: str) -> list[str]:
    """The compact form of each word of ``text``, in order (empty forms dropped)."""
    return [form for form in (compact(word) for word in words(text)) if form]


def digit_fold(text: str) -> str:
    """``text`` with look-alike letters read as digits where the context is numeric.

    A run like ``2OIS-O7-2I`` (no spaces, separators ``/.:-``) whose letters
    are all look-alikes and whose characters are at least a third real digits
    is read whole (``2015-07-21``); elsewhere a word counts as numeric when
    at least half its characters are digits, so ``O8/29/l951`` becomes
    ``08/29/1951`` while ``BOSTON`` stays as is.
    """
    return _CHUNK.sub(_fold_numeric_chunk, text)


def _fold_numeric_chunk(match: re.Match[str]) -> str:
    chunk = match.group()
    alnum = [ch for ch in chunk if ch.isalnum() or ch == "|"]
    digits = sum(ch.isdigit() for ch in alnum)
    if digits and digits * 3 >= len(alnum) and all(ch.isdigit() or ch in _LOOKALIKES for ch in alnum):
        return chunk.translate(_TO_DIGIT)
    return _DIGIT_WORD.sub(_fold_numeric_word, chunk)


def _fold_numeric_word(match: re.Match[str]) -> str:
    word = match.group()
    digits = sum(ch.isdigit() for ch in word)
    return word.translate(_TO_DIGIT) if digits * 2 >= len(word) and digits else word


def letter_fold(text: str) -> str:
    """``text`` with digits read as look-alike letters inside mostly-alphabetic words (``P0RTLAND, 1L``)."""
    return _DIGIT_WORD.sub(_fold_alphabetic_word, text)


def _fold_alphabetic_word(match: re.Match[str]) -> str:
    word = match.group()
    letters = sum(ch.isalpha() for ch in word)
    return word.translate(_TO_LETTER) if letters and letters * 2 >= len(word) else word


def digit_view(text: str) -> str:
    """Only the digits of ``text`` after :func:`digit_fold` (``DOB: O8/29/1951`` -> ``08291951``)."""
    return "".join(ch for ch in digit_fold(text) if ch.isdigit())

"""Approximate substring search: is a header value in the OCR text with at most k edits?

A small bounded edit distance (Sellers' algorithm: Levenshtein distance of
the pattern to the best-matching substring of the text) rather than a
dependency: the values are short (names, IDs) and a bigram filter
(:func:`may_contain`) rules out almost every pair before the quadratic step.
The bigram filter is the q-gram lemma (Ukkonen 1992): a substring within
``k`` edits of a pattern of length ``m`` shares at least ``m - 1 - 2k`` of
the pattern's bigrams.
"""

from __future__ import annotations

__all__ = ["allowed_edits", "bigrams", "may_contain", "within"]

#: A value matches when its similarity ratio is at least 0.8: k = floor(0.2 * length).
_RATIO = 0.8
_MIN_FUZZY = 5


def allowed_edits(length: int) -> int:
    """Edits tolerated for a value of ``length`` characters (0 below 5 characters)."""
    if length < _MIN_FUZZY:
        return 0
    return int(length * (1 - _RATIO) + 1e-9)


def bigrams(text: str) -> tuple[str, ...]:
    """The bigrams of ``text`` in order (with repeats)."""
    return tuple(text[i : i + 2] for i in range(len(text) - 1))


def may_contain(pattern_bigrams: tuple[str, ...], text_bigrams: frozenset[str], edits: int) -> bool:
    """False when the text cannot hold the pattern within ``edits`` edits (q-gram lemma)."""
    need = len(pattern_bigrams) - 2 * edits
    if need <= 0:
        return True
    return sum(gram in text_bigrams for gram in pattern_bigrams) >= need


def within(pattern: str, text: str, edits: int) -> bool:
    """True when some substring of ``text`` is at most ``edits`` edits from ``pattern``."""
    if not pattern:
        return True
    previous = list(range(len(pattern) + 1))
    for ch in text:
        current = [0]
        for j, pch in enumerate(pattern, 1):
            cost = previous[j - 1] + (pch != ch)
            current.append(min(cost, previous[j] + 1, current[j - 1] + 1))
        if current[-1] <= edits:
            return True
        previous = current
    return previous[-1] <= edits

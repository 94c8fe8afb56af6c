"""Classify text regions with their neighbours on the same text line.

OCR back-ends cut a line of burned-in text into boxes where the gaps are
wide: ``DOB:`` apart from ``08/29/1951``, ``SCOTT`` apart from ``KAUFMAN``.
Each box is classified alone first (:func:`dicomcloak.pixels.classify.classify`);
then, for each pair of boxes that follow each other closely on one line:

* a box ending with a PHI label makes the next box PHI (``label:DOB+next``);
* a first name and a surname (or surname and first name) split over two
  boxes make both PHI (``names:first+last``, ``names:last,first``);
* a title box (``Dr.``) makes the next box PHI when it is a word (``names:title``).

Two boxes are on one line when their vertical centres are within half a box
height; they follow each other when the gap between them is at most
:data:`GAP` box heights (a word space is about a third of one).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from dicomcloak.pixels.classify.labels import LABELS, trailing_label
from dicomcloak.pixels.classify.names import pair_rule
from dicomcloak.pixels.classify.normalise import letter_fold
from dicomcloak.pixels.model import Rect, TextBox, Verdict

__all__ = ["GAP", "neighbours", "with_neighbours"]

#: Largest gap between two boxes of one phrase, in box heights.
GAP = 2.0
_OVERLAP = 0.5
_TITLE_END = re.compile(r"(?<![A-Za-z])(?:DR|DOCTOR|MR|MRS|MS|PROF)\.?\s*$", re.I)
_LAST_WORD = re.compile(r"([A-Za-z][A-Za-z'\u2019\-]+)\s*([,^]?)\s*$")
_FIRST_WORD = re.compile(r"^\s*([A-Za-z][A-Za-z'\u2019\-]+)")


def neighbours(boxes: Sequence[TextBox]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``: box ``j`` follows box ``i`` closely on the same text line."""
    pairs: list[tuple[int, int]] = []
    for line in _lines(boxes):
        pairs.extend((i, j) for i, j in itertools.pairwise(line)
                     if _follows(boxes[i].rect, boxes[j].rect))
    return pairs


def _lines(boxes: Sequence[TextBox]) -> list[list[int]]:
    order = sorted(range(len(boxes)), key=lambda i: _centre(boxes[i].rect))
    lines: list[list[int]] = []
    for index in order:
        rect = boxes[index].rect
        line = next((line for line in lines if _same_line(boxes[line[0]].rect, rect)), None)
        if line is None:
            lines.append([index])
        else:
            line.append(index)
    return [sorted(line, key=lambda i: boxes[i].rect.left) for line in lines]


def _centre(rect: Rect) -> float:
    return (rect.top + rect.bottom) / 2


def _height(rect: Rect) -> int:
    return max(1, rect.bottom - rect.top)


def _same_line(a: Rect, b: Rect) -> bool:
    return abs(_centre(a) - _centre(b)) <= _OVERLAP * max(_height(a), _height(b))


def _follows(a: Rect, b: Rect) -> bool:
    gap = b.left - a.right
    return -_OVERLAP * _height(a) <= gap <= GAP * max(_height(a), _height(b))


def with_neighbours(boxes: Sequence[TextBox], verdicts: list[Verdict]) -> list[Verdict]:
    """``verdicts`` (one per box, each box alone) updated by the neighbour rules."""
    result = list(verdicts)
    for i, j in neighbours(boxes):
        before, after = boxes[i].text or "", boxes[j].text or ""
        label = trailing_label(letter_fold(before))
        if label and not result[j].phi:
            result[j] = Verdict(True, LABELS[label], f"label:{label}+next")
        names = _split_name(before, after)
        if names:
            result[i] = _flag(result[i], "person-name", names)
            result[j] = _flag(result[j], "person-name", names)
        if _TITLE_END.search(before) and _FIRST_WORD.match(after):
            result[i] = _flag(result[i], "person-name", "names:title")
            result[j] = _flag(result[j], "person-name", "names:title")
    return result


def _split_name(before: str, after: str) -> str | None:
    last, first = _LAST_WORD.search(before), _FIRST_WORD.match(after)
    if not last or not first:
        return None
    return pair_rule(last.group(1), first.group(1), last.group(2) or " ")


def _flag(verdict: Verdict, kind: str, rule: str) -> Verdict:
    return verdict if verdict.phi else Verdict(True, kind, rule)

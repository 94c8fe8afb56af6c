"""Person names that are not in the header: a first name next to a surname, from the US Census lists.

The lists (1990 US Census, public domain; shipped by the ``names`` package
0.3.0, see ``pixels/data/census-names.PROVENANCE.md``) are loaded lazily,
once per process. The surname list holds 88,799 names, among them most
English words an annotation uses (LEFT, GAIN, KIDNEY, LONG, HEAD), so a
surname alone is never flagged. A person is flagged when:

* a first name is followed by a surname (``SCOTT KAUFMAN``, ``Scott J. Kaufman``);
* a surname is followed by a first name (``KAUFMAN, SCOTT``, ``KAUFMAN^SCOTT``,
  ``KAUFMAN SCOTT``);
* a title precedes a name (``Dr. Okafor``; without the dot, ``DR SMITH``,
  only for a listed name);

and never when both words are annotation vocabulary that happens to be a
name (:func:`stop_words`: ``MARK``, ``ROSE``, ``LONG``, ``GAIN``...). A lone
first name is PHI only after a label (:mod:`.labels`, :mod:`.lines`).
"""

from __future__ import annotations

import gzip
import itertools
import re
from functools import cache
from importlib import resources

from dicomcloak.pixels.classify.normalise import compact, fold

__all__ = ["find_person", "first_names", "pair_rule", "stop_words", "surnames"]


_TITLE = re.compile(r"(?<![A-Za-z])(DR|DOCTOR|MR|MRS|MS|MISS|PROF)(\.?)\s+([A-Za-z][A-Za-z'\u2019\-]+)", re.I)
_WORD = re.compile(r"[0-9A-Za-z|]+(?:['\u2019\-][0-9A-Za-z|]+)*")
_NAME_SEPARATOR = re.compile(r"\s*[,^]\s*")
_MIN_TITLED = 2


@cache
def stop_words() -> frozenset[str]:
    """Annotation words that are also names (``data/name-stop-words.txt``): they never pair together."""
    data = resources.files("dicomcloak.pixels").joinpath("data", "name-stop-words.txt").read_text("utf-8")
    lines = (line.split("#", 1)[0].strip() for line in data.splitlines())
    return frozenset(compact(line) for line in lines if line)


@cache
def first_names() -> frozenset[str]:
    """Census first names (male and female), folded."""
    return _load("census-first-names.txt.gz")


@cache
def surnames() -> frozenset[str]:
    """Census surnames, folded."""
    return _load("census-surnames.txt.gz")


def _load(name: str) -> frozenset[str]:
    """The list's names, folded like OCR text (:func:`.normalise.compact`), so ``MI1LER`` finds ``MILLER``."""
    data = resources.files("dicomcloak.pixels").joinpath("data", name).read_bytes()
    # The lists hold letters only: folding the whole text at once equals compact() on each name.
    return frozenset(fold(gzip.decompress(data).decode("ascii")).split())


def _key(word: str) -> str:
    return compact(word)


def _is_word(word: str) -> bool:
    """A word of a name: two or more characters, letters at least half of them."""
    letters = sum(ch.isalpha() for ch in word)
    return len(word) > 1 and letters * 2 >= len(word)


def find_person(text: str) -> str | None:
    """The rule (``names:first+last``, ``names:last,first``, ``names:title``) a name in ``text`` meets."""
    if _titled(text):
        return "names:title"
    found = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    named = [(word, start, end) for word, start, end in found if _is_word(word)]
    for (a, _, a_end), (b, b_start, _) in itertools.pairwise(named):
        rule = pair_rule(a, b, text[a_end:b_start])
        if rule:
            return rule
    return None


def pair_rule(first: str, second: str, between: str) -> str | None:
    """The name rule two neighbouring words meet, with ``between`` the text that separates them."""
    a, b = _key(first), _key(second)
    if a in stop_words() and b in stop_words():
        return None
    if not _only_initials(between):
        return None
    if a in first_names() and b in surnames():
        return "names:first+last"
    if a in surnames() and b in first_names():
        return "names:last,first"
    return None


def _only_initials(between: str) -> bool:
    """True when only spaces, a comma or caret, and middle initials (``J.``) separate two words."""
    rest = re.sub(r"(?<![A-Za-z])[A-Za-z]\.?(?![A-Za-z])", " ", between)
    return bool(_NAME_SEPARATOR.fullmatch(rest) or not rest.strip())


def _titled(text: str) -> bool:
    for match in _TITLE.finditer(text):
        word = _key(match.group(3))
        if len(word) < _MIN_TITLED or word in stop_words():
            continue
        if match.group(2) or word in first_names() or word in surnames():
            return True
    return False

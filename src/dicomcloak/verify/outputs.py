"""Check one output instance: which original identifying values it holds where the policy did not keep them.

Each element of the output is given a *scope* by its rule under the policy
and by whether it is unchanged from its original's element at the same path
(same 64-bit digest of path and value, :func:`~dicomcloak.verify.walk.leaf_key`):

* ``skip``: kept as it was (rule K, or a C that keeps its value: codes,
  numbers, private values under Retain Safe Private); a date or time the
  policy shifts (C), changed (so shifted: that it equals another date of the
  instance is chance, the shift being uniform over ten years and a day); a
  private creator left as it was; a kept definition UID; a value dicomcloak
  writes itself (:class:`~dicomcloak.verify.kinds.DummyValues`); ciphertext
  (Encrypted Content, PS3.15 E.1.2); pixel data; binary numbers.
* ``cleaned``: free text under C, changed or not. C removes the instance's
  own identifying values (names, IDs, other text values, dates) and keeps
  the clinical words, so it is searched for those of its original, and for
  the person names and IDs of every original.
* ``full``: anything else (changed, added, or a value the policy changes left
  as it was): searched for every identifying value of its original, and for
  the person names, IDs and other text values of every original (a value of
  another instance, as a batch mix-up would leave, is a leak too). Names
  parts, dates and times of other originals are not searched: a shifted date
  or a common given name equals another patient's by chance.

UIDs are compared whole, component by component, with the instance UIDs of
its original and of every original.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import NamedTuple

from dicomcloak.engine.outcome import TagPath
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Action
from dicomcloak.verify.kinds import DummyValues
from dicomcloak.verify.needles import Needle, NeedleIndex
from dicomcloak.verify.originals import (
    BINARY_NUMBERS,
    DATE_VRS,
    OriginalRecord,
    is_creator,
    keeps_uid,
)
from dicomcloak.verify.walk import PIXEL_TAGS, Leaf, leaf_texts

__all__ = [
    "CLEANED_KINDS", "UNION_KINDS", "Finding", "Haystack", "Scope", "UidIndex", "never_searched", "scope_of",
    "search_texts", "search_uids",
]

#: Kinds searched in every output for every original's values (module docstring).
UNION_KINDS = frozenset({"person-name", "id", "text"})
#: Kinds of its own original searched in free text under C.
CLEANED_KINDS = frozenset({"person-name", "name-part", "id", "text", "date"})
_UNION_IN_CLEANED = frozenset({"person-name", "id"})
_CLEANABLE_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_ENCRYPTED_CONTENT = 0x04000520  # PS3.15 E.1.2: CMS EnvelopedData, ciphertext
#: A DICOMDIR record's type: an enumerated term (PS3.3 F.5, PATIENT, STUDY, SERIES, RT STRUCTURE ...), the
#: structure of the media directory, which equals an original's free text (an ROI named PATIENT) by chance.
_DIRECTORY_RECORD_TYPE = 0x00041430
_UNPARSED: TagPath = ()


class Finding(NamedTuple):
    """One output element holding an identifying value of an original (the value is never kept).

    ``path`` is the element in the output (``()`` for a file that did not parse);
    ``source`` the element of the original that held the value; ``length`` the
    number of characters of the matched value.
    """

    output: str
    path: TagPath
    kind: str
    original: str
    source: TagPath
    length: int


class Scope:
    """The scopes of the module docstring."""

    SKIP = "skip"
    CLEANED = "cleaned"
    FULL = "full"


def never_searched(leaf: Leaf) -> bool:
    """Binary numbers, pixel data, ciphertext and a DICOMDIR's record types: no value of a person there."""
    return (leaf.vr in BINARY_NUMBERS or leaf.tag in PIXEL_TAGS
            or leaf.tag in (_ENCRYPTED_CONTENT, _DIRECTORY_RECORD_TYPE))


def scope_of(leaf: Leaf, unchanged: bool, policy: Policy) -> str:
    """The scope of one output element (module docstring)."""
    if never_searched(leaf):
        return Scope.SKIP
    if is_creator(leaf.tag):
        return Scope.SKIP if unchanged else Scope.FULL
    action = policy.rule(leaf.tag, leaf.vr, leaf.creator).action
    if leaf.vr == "UI":
        return Scope.SKIP if unchanged and keeps_uid(leaf.tag, action, policy) else Scope.FULL
    if action is Action.C and leaf.vr in _CLEANABLE_VRS:
        return Scope.CLEANED
    if not unchanged:
        # A date the policy shifts, shifted: another date of the instance it equals, it equals by chance.
        return Scope.SKIP if action is Action.C and leaf.vr in DATE_VRS else Scope.FULL
    if action is Action.K or (action is Action.C and leaf.vr not in DATE_VRS):
        return Scope.SKIP
    return Scope.FULL


class UidIndex:
    """Instance UIDs of the originals, each with the first original and element that held it."""

    def __init__(self, originals: list[OriginalRecord]) -> None:
        self.owners: dict[str, tuple[int, TagPath]] = {}
        for record in originals:
            for uid, path in record.uids.items():
                self.owners.setdefault(uid, (record.index, path))


class Haystack:
    """The searched text of one output, element by element, joined for one search per index."""

    def __init__(self, dummies: DummyValues) -> None:
        self._dummies = dummies
        self.entries: dict[str, list[tuple[TagPath, str]]] = {Scope.FULL: [], Scope.CLEANED: []}
        self.uids: list[tuple[TagPath, str]] = []

    def add(self, leaf: Leaf, scope: str) -> None:
        """Add the element's searchable text (dummies left out) under ``scope``."""
        texts = leaf_texts(leaf)
        if leaf.vr == "UI":
            self.uids += [(leaf.path, text) for text in texts]
            return
        for text in texts:
            part = self._dummies.searched_part(text)
            if part:
                self.entries[scope].append((leaf.path, part))

    def search(
        self, scope: str, index: NeedleIndex, kinds: frozenset[str] | None
    ) -> Iterator[tuple[TagPath, Needle]]:
        """Yield ``(element path, needle)`` for every match of ``index`` (of ``kinds``) in ``scope``."""
        entries = self.entries[scope]
        if not entries or not len(index):
            return
        starts: list[int] = []
        position = 0
        for _, text in entries:
            starts.append(position)
            position += len(text) + 1
        blob = "\x00".join(text for _, text in entries)
        for start, needle in index.search(blob):
            if kinds is None or needle.kind in kinds:
                yield entries[bisect.bisect_right(starts, start) - 1][0], needle


def search_texts(
    hay: Haystack, own: NeedleIndex | None, union: NeedleIndex
) -> Iterator[tuple[TagPath, Needle]]:
    """Every (element, needle) match of the output's text, scope by scope (module docstring)."""
    if own is not None:
        yield from hay.search(Scope.FULL, own, None)
        yield from hay.search(Scope.CLEANED, own, CLEANED_KINDS)
    owned = own if own is not None else NeedleIndex()
    for path, needle in hay.search(Scope.FULL, union, None):
        if needle.text not in owned:
            yield path, needle
    for path, needle in hay.search(Scope.CLEANED, union, _UNION_IN_CLEANED):
        if needle.text not in owned:
            yield path, needle


def search_uids(
    hay: Haystack, own: OriginalRecord | None, union: UidIndex
) -> Iterator[tuple[TagPath, str, int, TagPath]]:
    """Yield ``(element path, uid, owner, source)`` for every original instance UID in the output."""
    for path, uid in hay.uids:
        if own is not None and uid in own.uids:
            yield path, uid, own.index, own.uids[uid]
        elif uid in union.owners:
            owner, source = union.owners[uid]
            yield path, uid, owner, source

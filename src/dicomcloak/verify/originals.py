"""What one original instance must not leak under a policy, and how to recognise its output.

An *identifying value* is a value of an element the policy changes: its rule
is neither K nor a C that leaves the value as it is. In the engine's terms
(docs/policy.md): K keeps a value; C on free text cleans it (its identifying
content is the other elements' values, searched for on their own); C on
dates and times shifts them (their values are identifying); C on anything
else keeps it; every other action removes or replaces the value. UIDs are
the exception the engine makes for K and C too: an instance UID is replaced
unless the option Retain UIDs is in force or the attribute names a definition
(SOP Class, Transfer Syntax, ...), so it is identifying unless kept that way.

Besides the values, an :class:`OriginalRecord` keeps a 64-bit digest of every
element (path and value, :func:`~dicomcloak.verify.walk.leaf_key`): an output
element whose digest is among its original's was left as it was, and the
digests also match an output to its original by content.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pydicom._uid_dict import UID_dictionary  # = pydicom.uid.UID_dictionary, the UID registry
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dicomcloak.engine.outcome import TagPath
from dicomcloak.engine.values import DEFINITION_UID_KEYWORDS
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Action, Option
from dicomcloak.verify.kinds import DummyValues, kind_of
from dicomcloak.verify.needles import Needle, NeedleIndex, make_needle
from dicomcloak.verify.walk import PIXEL_TAGS, Leaf, leaf_key, leaf_texts, leaves

__all__ = [
    "BINARY_NUMBERS", "DATE_VRS", "OriginalRecord", "collect", "date_variants", "is_creator",
    "is_identifying", "keeps_uid", "sop_instance_uid",
]

#: Binary numbers hold no text a person could be identified by (and no text to search).
BINARY_NUMBERS = frozenset(
    {"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT", "OF", "OD", "OL", "OV"}
)
#: Dates and times: C shifts them (PS3.15 E.3.6, Retain Longitudinal Temporal Information, Modified Dates).
DATE_VRS = frozenset({"DA", "DT", "TM"})
_SOP_INSTANCE_UID = 0x00080018
_MIN_ASCII_IN_BINARY = 3


@dataclass(frozen=True, slots=True)
class OriginalRecord:
    """The identifying values of one original instance and the digests of all its elements.

    Attributes
    ----------
    rel:
        Path of the original relative to the ORIGINAL argument.
    index:
        Its position in the sorted walk of ORIGINAL (the needles' ``owner``).
    sop_uid:
        Its SOP Instance UID ("" when absent).
    needles:
        Text needles of its identifying values (:mod:`dicomcloak.verify.needles`).
    uids:
        Its identifying instance UIDs, each with the tag path that held it.
    values:
        :func:`~dicomcloak.verify.walk.leaf_key` of every element but binary numbers.
    """

    rel: str
    index: int
    sop_uid: str
    needles: tuple[Needle, ...]
    uids: dict[str, TagPath]
    values: frozenset[bytes]

    def index_of_needles(self) -> NeedleIndex:
        """The needles as a searchable index."""
        return NeedleIndex(self.needles)


def is_creator(tag: int) -> bool:
    """True for a private creator element (PS3.5 7.8.1): it names a vendor, not a person."""
    return (tag >> 16) % 2 == 1 and 0x0010 <= tag & 0xFFFF <= 0x00FF


def keeps_uid(tag: int, action: Action, policy: Policy) -> bool:
    """True when the engine keeps the UIDs of this element as they are (PS3.15 E.1.1 U, K)."""
    if action not in (Action.K, Action.C):
        return False
    return Option.RETAIN_UIDS in policy.options or _names_definition(tag)


@lru_cache(maxsize=1 << 12)
def _names_definition(tag: int) -> bool:
    return keyword_for_tag(tag) in DEFINITION_UID_KEYWORDS


def is_identifying(leaf: Leaf, action: Action, policy: Policy) -> bool:
    """True when the policy changes this element's value (module docstring)."""
    if leaf.vr == "UI":
        return not keeps_uid(leaf.tag, action, policy)
    if action is Action.K:
        return False
    return action is not Action.C or leaf.vr in DATE_VRS


@dataclass
class _Collector:
    index: int
    dummies: DummyValues
    needles: NeedleIndex
    uids: dict[str, TagPath]
    kept_uids: set[str]

    def add(self, leaf: Leaf, text: str) -> None:
        kind = kind_of(leaf.tag, leaf.vr)
        if kind == "uid":
            if text not in UID_dictionary:
                self.uids.setdefault(text, leaf.path)
            return
        if kind == "binary" and sum(ch.isascii() and ch.isalnum() for ch in text) < _MIN_ASCII_IN_BINARY:
            return
        self._needle(text, kind, leaf.path)
        if kind == "person-name":
            for part in _name_parts(text):
                self._needle(part, "name-part", leaf.path)
        elif kind == "date":
            for variant in date_variants(text.strip()[:8]):
                self._needle(variant, "date", leaf.path)

    def _needle(self, text: str, kind: str, path: TagPath) -> None:
        needle = make_needle(text, kind, self.index, path)
        if needle is not None and needle.text not in self.dummies.texts:
            self.needles.put(needle)


def _name_parts(text: str) -> list[str]:
    parts: list[str] = []
    for group in text.split("="):
        parts += group.split("^")[:2]  # PS3.5 6.2: family name, given name
    return parts


def date_variants(d: str) -> set[str]:
    """A YYYYMMDD date and the same date as YYYY-MM-DD, YYYY/MM/DD, MM/DD/YYYY, DD.MM.YYYY, ... ."""
    if len(d) != 8 or not d.isdigit():
        return set()
    y, m, dd = d[:4], d[4:6], d[6:8]
    return {d, f"{y}-{m}-{dd}", f"{y}/{m}/{dd}", f"{m}/{dd}/{y}", f"{dd}.{m}.{y}", f"{dd}/{m}/{y}",
            f"{y}.{m}.{dd}"}


def _searchable(leaf: Leaf) -> bool:
    return not (leaf.tag in PIXEL_TAGS or is_creator(leaf.tag))


def collect(ds: Dataset, rel: str, index: int, policy: Policy, dummies: DummyValues) -> OriginalRecord:
    """Collect what the original ``ds`` must not leak under ``policy`` (module docstring)."""
    collector = _Collector(index, dummies, NeedleIndex(), {}, set())
    values: set[bytes] = set()
    for leaf in leaves(ds):
        if leaf.vr in BINARY_NUMBERS:
            continue
        values.add(leaf_key(leaf))
        if not _searchable(leaf):
            continue
        action = policy.rule(leaf.tag, leaf.vr, leaf.creator).action
        if is_identifying(leaf, action, policy):
            for text in leaf_texts(leaf):
                collector.add(leaf, text)
        elif leaf.vr == "UI":
            collector.kept_uids.update(leaf_texts(leaf))
    uids = {uid: path for uid, path in collector.uids.items() if uid not in collector.kept_uids}
    return OriginalRecord(
        rel, index, sop_instance_uid(ds), tuple(collector.needles.needles()), uids, frozenset(values)
    )


def sop_instance_uid(ds: Dataset) -> str:
    """The SOP Instance UID of a data set as read ("" when absent)."""
    elem = ds._dict.get(BaseTag(_SOP_INSTANCE_UID))  # noqa: SLF001 - raw access (see walk._level)
    texts = leaf_texts(Leaf((_SOP_INSTANCE_UID,), "UI", elem.value, (), None)) if elem is not None else []
    return texts[0] if texts else ""

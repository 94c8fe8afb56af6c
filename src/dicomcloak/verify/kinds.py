"""What an identifying value was (its *kind*), and the values dicomcloak itself writes (its dummies).

Kinds name the original element's sort of value, so a reader of the report
knows what leaked without seeing it: ``uid``, ``person-name`` (a whole PN
value), ``name-part`` (a family or given name), ``date`` (DA, DT and their
common written forms), ``time`` (TM), ``id`` (a textual identifier: an
attribute named ``...ID`` or ``...Number``), ``text`` (other character
text), ``code`` (CS and AS), ``number`` (IS and DS) and ``binary`` (a
printable run inside an opaque value).

The dummies are read from the engine itself, never copied: the D values of
every text VR (``engine.values.dummy_value``), the markers the engine adds
(``engine.markers.add_markers``, Patient Identity Removed, the method and its
codes), the implementation version name, and the prefix of keyed dummy person
names. An original value equal to one of them cannot be told apart from the
tool's own writing and is not searched; an output value equal to one is not
searched either.
"""

from __future__ import annotations

from functools import lru_cache

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

from dicomcloak.engine import markers
from dicomcloak.engine.values import dummy_value
from dicomcloak.keys.pseudonyms import PERSON_NAME_PREFIX
from dicomcloak.policy.model import Policy
from dicomcloak.verify.needles import normalize
from dicomcloak.verify.walk import STRING_VRS, leaf_texts, leaves

__all__ = ["DummyValues", "kind_of"]

_TEXT_ID_VRS = frozenset({"LO", "SH", "UC", "LT", "ST", "UT"})
_BY_VR = {
    "UI": "uid", "PN": "person-name", "DA": "date", "DT": "date", "TM": "time",
    "CS": "code", "AS": "code", "IS": "number", "DS": "number",
}
_ID_SUFFIXES = ("ID", "IDs", "Number", "Numbers")


@lru_cache(maxsize=1 << 14)
def kind_of(tag: int, vr: str) -> str:
    """The kind of a value held by element ``tag`` with ``vr`` (module docstring)."""
    found = _BY_VR.get(vr)
    if found is not None:
        return found
    if vr in _TEXT_ID_VRS and keyword_for_tag(tag).endswith(_ID_SUFFIXES):
        return "id"
    return "text" if vr in STRING_VRS else "binary"


class DummyValues:
    """The values dicomcloak writes in place of original ones under ``policy`` (normalized)."""

    def __init__(self, policy: Policy) -> None:
        texts = {str(dummy_value(vr)) for vr in STRING_VRS if isinstance(dummy_value(vr), str)}
        texts.add(markers.IMPLEMENTATION_VERSION_NAME)
        added = Dataset()
        markers.add_markers(added, policy, [], (False, True))
        for leaf in leaves(added):
            texts.update(leaf_texts(leaf))
        self.texts = frozenset(normalize(text) for text in texts)
        self._prefix = normalize(PERSON_NAME_PREFIX)

    def searched_part(self, piece: str) -> str:
        """The part of an output value to search: "" for a dummy, a keyed name without its prefix."""
        text = normalize(piece)
        if text in self.texts:
            return ""
        if text.startswith(self._prefix):
            return text[len(self._prefix):]
        return text

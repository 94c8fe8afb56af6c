"""Rebuild one data set level from its valid elements, recursively, recording what was dropped.

The walk reads the raw elements the reader left (and the items the fast
item reader opens), validates each against its VR (:mod:`.values`), applies
the private-element policy and the content choices, and returns a new level
only when something changed; an untouched level (or sequence) is reused as it
is, so a clean instance costs one dictionary pass and one check per element.
Sequence *items* are never removed or reordered: a bad element inside an item
is removed from the item, so tag paths (and item indices) stay valid for the
de-identification that follows and for re-identification (issue 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydicom.charset import python_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomcloak.engine.outcome import Change, TagPath
from dicomcloak.engine.values import dictionary_vr
from dicomcloak.errors import ReadLimitError, UnsafeContentError
from dicomcloak.policy.cdr import Disposition, SanitizeSettings
from dicomcloak.policy.model import Policy
from dicomcloak.raw import new_dataset, read_items
from dicomcloak.raw.elements import charset_unknown, trailing_bytes
from dicomcloak.sanitize.pixels import check_pixels
from dicomcloak.sanitize.values import UNITS, Check, max_short_length, validator
from dicomcloak.standard.table import Action

__all__ = ["Walk", "charset_checks", "copy_level", "dictionary_vr", "sanitize_level"]

Element = DataElement | RawDataElement
_UNDEFINED = 0xFFFFFFFF
_CHARSET = 0x00080005
_ICONS = 0x00880200
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_TRAILING_PADDING = 0xFFFCFFFC
_ZERO = 0x00000000  # eight zero bytes read as an element: (0000,0000), length 0
# pydicom's codecs for the single-byte character sets (PS3.3 Table C.12-2; ISO_IR 13 is JIS X 0201).
_SINGLE_BYTE_CODECS = frozenset(
    {"iso8859", "latin_1", "iso8859_2", "iso8859_3", "iso8859_4", "iso8859_5", "iso8859_6", "iso8859_7",
     "iso8859_8", "iso8859_9", "iso8859_11", "iso8859_15", "tis_620", "shift_jis", "ascii"}
)


_PLANS: dict[tuple[int, bool, int], tuple[Policy, dict[tuple[int, str | None], Any]]] = {}


@dataclass
class Walk:
    """State of one sanitization: settings, the policy, the change log and the element budget.

    ``moot`` is set when de-identification follows with the same policy: an
    element whose bytes that policy never copies (removed, emptied, replaced
    by a dummy or a pseudonym) is then left to it instead of being validated
    here first (docs/security.md).
    """

    settings: SanitizeSettings
    policy: Policy
    moot: bool
    checks: dict[str, Check]
    changes: list[Change] = field(default_factory=list)
    count: int = 0

    def plans(self) -> dict[tuple[int, str | None], Any]:
        """The memo of element plans for this policy, mode and character set (process-wide)."""
        key = (id(self.policy), self.moot, id(self.checks))
        found = _PLANS.get(key)
        if found is None or found[0] is not self.policy:
            if len(_PLANS) > 32:
                _PLANS.clear()
            found = _PLANS[key] = (self.policy, {})
        return found[1]

    def drop(self, path: TagPath, reason: str) -> None:
        """Record the removal of the element at ``path`` (a tag path of the input)."""
        self.changes.append(Change(path, "X", f"sanitize:{reason}"))


def charset_checks(value: Any) -> dict[str, Check]:
    """The value checks for a Specific Character Set value, or ``charset-unknown``.

    Every term must be one pydicom can decode (PS3.3 C.12.1.1.2); otherwise no
    text of the instance can be read reliably, and the instance is refused.
    """
    terms = _terms(value)
    if any(term not in python_encoding for term in terms):
        raise charset_unknown()
    codecs = {python_encoding[term] for term in terms}
    utf8 = "utf_8" in codecs
    multi = utf8 or any(codec not in _SINGLE_BYTE_CODECS for codec in codecs) or len(terms) > 1
    return validator(multi, utf8)


def _terms(value: Any) -> list[str]:
    if isinstance(value, bytes):
        return [term.strip(" \x00") for term in value.decode("latin-1").split("\\")]
    if isinstance(value, str):
        return [value.strip()]
    return [str(term).strip() for term in value or []]


def sanitize_level(ds: Dataset, path: TagPath, depth: int, walk: Walk) -> Dataset | None:
    """Sanitize one level; a new Dataset when something changed, None when ``ds`` is clean as it is."""
    elements: dict[Any, Element] = ds._dict  # type: ignore[assignment]  # noqa: SLF001 - raw storage
    walk.count += len(elements)
    limits = walk.settings.limits
    if walk.count > limits.max_elements:
        raise ReadLimitError(
            "the data set has more elements than the limit",
            reference="too-many-elements",
            hint="raise max_elements if such files are expected",
        )
    zero = elements.get(_ZERO)
    if zero is not None and getattr(zero, "length", None) == 0:
        raise trailing_bytes()  # eight zero bytes in an item pydicom read (the fast readers refuse them)
    little = ds._read_little is not False  # noqa: SLF001
    if _CHARSET in elements:
        walk.checks = charset_checks(elements[_CHARSET].value)
    if _PIXEL_TAGS.intersection(elements):
        check_pixels(elements, little, limits)
    removed: list[Any] = []
    replaced: dict[Any, Element] = {}
    private: list[Any] = []
    plans = walk.plans()
    for tag, elem in elements.items():
        number = int(tag)
        if number & 0x10000:
            private.append(tag)
            continue
        evr = elem.VR
        plan = plans.get((number, evr))
        if plan is None:
            plan = plans[(number, evr)] = _plan(number, evr, walk)
        if plan is _SKIP:
            continue
        if plan.__class__ is str:
            removed.append(tag)
            walk.drop((*path, number), plan)
        elif plan is _SEQ:
            new = _sequence(ds, elem, (*path, number), depth, walk)
            if new is _REMOVE:
                removed.append(tag)
            elif new is not None:
                replaced[tag] = new
        elif elem.__class__ is RawDataElement:
            match, unit, relabel = plan
            length = elem.length
            if not (relabel or length == _UNDEFINED or (
                length and ((unit and length % unit) or (match is not None and not match(elem.value)))
            )):
                continue  # the common case: a valid value, kept as it is
            fixed = _checked(elem, number, plan)
            if fixed is not elem:
                if fixed is None:
                    removed.append(tag)
                    walk.drop((*path, number), "invalid-value")
                else:
                    replaced[tag] = fixed
    if private:
        _private(ds, elements, private, path, removed, walk)
    if not removed and not replaced:
        return None
    kept = dict(elements)  # removed keys are the dict's own objects: found by identity, not BaseTag.__eq__
    for tag in removed:
        kept.pop(tag, None)
    kept.update(replaced)
    return copy_level(ds, kept)


class _Removed:
    """Marker: the sequence element is removed (recorded by the caller's callee)."""


_REMOVE: Any = _Removed()


def _structural(number: int) -> str:
    """A reason to remove a public element whatever its value, or ""."""
    group, element = number >> 16, number & 0xFFFF
    if element == 0 and group != 0:
        return "group-length"  # recomputed on write (PS3.5 7.2)
    if group in (0x0000, 0x0002, 0xFFFE) or number == _TRAILING_PADDING:
        return "structural-element"  # command, File Meta, item tags, trailing padding (PS3.10 7.2)
    return ""


#: Plans: skip (de-identification removes it), a removal reason, a sequence, or (check, VR to relabel).
_SKIP: Any = object()
# Actions whose result never holds the element's bytes: removed, emptied, or a dummy or keyed
# pseudonym (combined actions resolve to one of these); the engine may decode the value to derive a
# pseudonym, never to copy it (engine/actions.py).
_VALUE_FREE = frozenset(
    {Action.X, Action.Z, Action.D, Action.ZD, Action.XZ, Action.XD, Action.XZD}
)
# For a sequence, only removing or emptying it spares its items: any other action cleans them.
_ITEM_FREE = frozenset({Action.X, Action.Z, Action.XZ})
_SEQ: Any = object()
Plan = Any


def _plan(number: int, evr: str | None, walk: Walk) -> Plan:
    """What to do with every public element of this tag and VR (memoized per policy and charset)."""
    dvr = dictionary_vr(number)
    vr = evr or dvr
    # A public sequence written as UN is a sequence too (PS3.5 6.2.2: its items are implicit VR LE).
    sequence = vr == "SQ" or (evr == "UN" and dvr == "SQ")
    if walk.moot:
        action = walk.policy.rule(number, dvr if vr == "UN" else vr).action
        if action in (_ITEM_FREE if sequence else _VALUE_FREE):
            return _SKIP  # de-identification removes or replaces it; its bytes never reach an output
    reason = _structural(number)
    if reason:
        return reason
    if sequence:
        return _SEQ
    relabel = None
    if evr is not None and dvr != evr and dvr not in ("UN", "SQ") and " " not in dvr:
        relabel = vr = dvr  # PS3.5 6.2: the dictionary's VR for a public element written as another
    unit = UNITS.get(vr, 0)
    return (None if unit else walk.checks.get(vr), unit, relabel)


def _checked(elem: RawDataElement, number: int, plan: tuple[Check | None, int, str | None]) -> Any:
    """The raw element as it may be kept (VR from the dictionary), or None when its value is invalid."""
    check, unit, relabel = plan
    length = elem.length
    if length == _UNDEFINED:
        return elem if number in _PIXEL_TAGS else None  # only encapsulated Pixel Data (PS3.5 A.4)
    if not length:
        return elem._replace(VR=relabel) if relabel else elem
    if (unit and length % unit) or (check is not None and not check(elem.value or b"")):
        return None
    if relabel:
        return elem._replace(VR=relabel) if length <= max_short_length(relabel) else None
    return elem


def _sequence(ds: Dataset, elem: Element, path: TagPath, depth: int, walk: Walk) -> Any:
    """Sanitize a sequence's items: None when unchanged, a new SQ element, or _REMOVE."""
    number = path[-1]
    if number == _ICONS and walk.settings.icons is not Disposition.KEEP:
        if walk.settings.icons is Disposition.QUARANTINE:
            raise UnsafeContentError("the instance holds an icon image", reference="icon-present")
        walk.drop(path, "icon-image")
        return _REMOVE
    if depth + 1 > walk.settings.limits.max_sequence_depth:
        raise ReadLimitError(
            "sequences are nested deeper than the limit",
            reference="sequence-too-deep",
            hint="raise max_sequence_depth if such files are expected",
        )
    items = _items(ds, elem)
    if items is None:
        walk.drop(path, "unparseable-sequence")
        return _REMOVE
    changed = False
    out: list[Dataset] = []
    saved = walk.checks
    for index, item in enumerate(items):
        new = sanitize_level(item, (*path, index), depth + 1, walk)
        walk.checks = saved  # an item's own character set applies to that item only
        changed = changed or new is not None
        out.append(item if new is None else new)
    if not changed:
        return None
    sequence = DataElement(number, "SQ", Sequence(out))
    return sequence


def _items(ds: Dataset, elem: Element) -> list[Dataset] | None:
    """The items of a sequence element, by the fast reader or pydicom; None when unparseable."""
    if isinstance(elem, DataElement):
        return list(elem.value or [])
    value = elem.value
    if not value:
        return []
    if elem.length != _UNDEFINED and isinstance(value, bytes):
        implicit = True if elem.VR == "UN" else elem.is_implicit_VR  # UN-wrapped: implicit VR LE
        items = read_items(value, implicit, elem.is_little_endian, ds.original_character_set)
        if items is not None:
            return items
    try:
        converted = convert_raw_data_element(elem, encoding=ds.original_character_set, ds=ds)
    except RecursionError:
        raise
    except Exception:  # noqa: BLE001 - pydicom cannot read these items: the sequence is dropped
        return None
    return list(converted.value or []) if converted.VR == "SQ" else None


def _private(
    ds: Dataset, elements: dict[Any, Element], tags: list[Any], path: TagPath, removed: list[Any], walk: Walk
) -> None:
    """Private elements (PS3.5 7.8): only as the policy allows, creators only with a kept element."""
    creators: dict[int, str] = {}
    for tag in tags:
        element = tag & 0xFFFF
        if 0x0010 <= element <= 0x00FF:
            creators[(tag & 0xFFFF0000) | element] = _creator(elements[tag])
    kept_blocks: set[int] = set()
    for tag in tags:
        number, element = int(tag), tag & 0xFFFF
        if 0x0010 <= element <= 0x00FF:
            continue
        block = (number & 0xFFFF0000) | (element >> 8)
        creator = creators.get(block) if element >= 0x1000 else None
        elem = elements[tag]
        vr = elem.VR or "UN"
        rule = walk.policy.rule(number, vr, creator)
        if rule.action is Action.X:
            if not walk.moot:
                removed.append(tag)
                walk.drop((*path, number), "private")
            continue
        if (number >> 16) < 0x0009 or (number >> 16) == 0xFFFF or creator is None:
            removed.append(tag)
            walk.drop((*path, number), "private-invalid")
            continue
        plan = (walk.checks.get(vr), 0, None)
        if elem.VR and isinstance(elem, RawDataElement) and _checked(elem, number, plan) is None:
            removed.append(tag)
            walk.drop((*path, number), "invalid-value")
            continue
        kept_blocks.add(block)
    if walk.moot:
        return  # de-identification keeps creators of blocks it keeps
    for block in creators:
        if block not in kept_blocks:
            removed.append(block)
            walk.drop((*path, block), "private-creator")


def _creator(elem: Element) -> str:
    value = elem.value
    if isinstance(value, bytes):
        return value.decode("latin-1").strip(" \x00")
    return str(value or "").strip()


def copy_level(ds: Dataset, kept: dict[Any, Element]) -> Dataset:
    """A new level holding ``kept``, read as ``ds`` was (encoding, character set, item length)."""
    return new_dataset(
        kept,
        bool(ds._read_implicit),  # noqa: SLF001 - the level keeps the encoding it was read in
        ds._read_little is not False,  # noqa: SLF001
        ds._read_charset,  # type: ignore[arg-type]  # noqa: SLF001
        parent=ds._parent_encoding,  # noqa: SLF001
        undefined=ds.is_undefined_length_sequence_item,
    )

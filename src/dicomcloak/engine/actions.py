"""The PS3.15 E.1.1 actions on one non-sequence element: small handlers, one per action.

Each handler takes an :class:`ElementContext` and returns the element to
write (a ``RawDataElement`` when the bytes are kept as they are) or None to
remove it, appending a :class:`Change` for anything it alters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydicom import config
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from dicomcloak.engine import dates, values
from dicomcloak.engine.outcome import Change, TagPath
from dicomcloak.engine.uidmap import Replaced
from dicomcloak.engine.values import decode
from dicomcloak.policy.model import Rule
from dicomcloak.standard.iod import attribute_type, resolve_combined
from dicomcloak.standard.table import Action, Option

if TYPE_CHECKING:
    from dicomcloak.engine.deidentify import Walk

__all__ = ["ElementContext", "apply_action", "resolve"]

Element = DataElement | RawDataElement
_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UT", "UC", "PN"})
_OPAQUE_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_PATIENT_NAME, _PATIENT_ID = 0x00100010, 0x00100020
# C on Timezone Offset From UTC (modified dates option): the offset itself identifies no one.
_C_KEEP = frozenset({0x00080201})


@dataclass(slots=True)
class ElementContext:
    """One element being de-identified, with its dataset level and the walk's state."""

    source: Dataset
    elem: Element
    vr: str
    path: TagPath
    rule: Rule
    walk: Walk

    @property
    def tag(self) -> int:
        """The element's tag as an int."""
        return self.path[-1]

    def value(self) -> Any:
        """The decoded value (not cached in the input dataset)."""
        return decode(self.elem, self.vr, self.source, self.walk.charset)

    def record(self, action: str, source: str | None = None) -> None:
        """Log that ``action`` was applied (tag path and rule source, never the value)."""
        self.walk.changes.append(Change(self.path, action, source or self.rule.source))

    def new(self, value: Any) -> Element:
        """A new element with this element's tag and VR.

        ASCII text values are built directly as raw elements in the output's
        encoding (cheap immutable tuples the encoder copies as they are);
        anything else becomes a pydicom DataElement. Values made here are valid
        for their VR by construction, so pydicom's re-validation is skipped.
        """
        raw = _raw_text(self.tag, self.vr, value, self.walk.encoding)
        if raw is not None:
            return raw
        return DataElement(self.tag, self.vr, value, validation_mode=config.IGNORE)


_RAW_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UI"}
)


def _raw_text(tag: int, vr: str, value: Any, encoding: tuple[bool, bool]) -> RawDataElement | None:
    """Encode an ASCII text value as PS3.5 6.2 does: backslash-joined, padded to even length."""
    if vr not in _RAW_TEXT_VRS:
        return None
    if value is None:
        data = b""
    elif isinstance(value, str):
        data = value.encode("ascii", "strict") if value.isascii() else b"\xff"
    elif isinstance(value, list) and all(isinstance(v, str) and v.isascii() for v in value):
        data = "\\".join(value).encode("ascii")
    else:
        return None
    if data == b"\xff":
        return None
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    implicit, little = encoding
    return RawDataElement(BaseTag(tag), vr, len(data), data, 0, implicit, little, True, False)


def resolve(ctx: ElementContext) -> Action:
    """Resolve a combined action by the attribute's type in the instance's IOD (docs/policy.md)."""
    action = ctx.rule.action
    if not action.is_combined:
        return action
    if action is Action.XZU:
        if ctx.walk.policy.keep_reference_sequences:
            return Action.K  # kept; the UIDs inside are replaced (U) by their own rules
        action = Action.XZ
    return _resolve_by_type(action, ctx.walk.identity.sop_class_uid, ctx.path[::2])


@lru_cache(maxsize=4096)
def _resolve_by_type(action: Action, sop_class_uid: str, tags: tuple[int, ...]) -> Action:
    keywords = tuple(keyword_for_tag(tag) for tag in tags)
    return resolve_combined(action, attribute_type(sop_class_uid, keywords))


def apply_action(ctx: ElementContext, action: Action) -> Element | None:
    """Apply a single (resolved) action to a non-sequence element."""
    return _HANDLERS[action](ctx)


def _keep(ctx: ElementContext) -> Element | None:
    if ctx.vr == "UI":
        return _uids(ctx, replace_all=False)
    return ctx.elem


def _empty(ctx: ElementContext) -> Element | None:
    if _wants_pseudonym(ctx):
        return _pseudonym(ctx)
    ctx.record("Z")
    return ctx.new(None if ctx.vr not in ("OB", "OW", "UN") else b"")


def _dummy(ctx: ElementContext) -> Element | None:
    if ctx.vr == "UI":
        return _uids(ctx, replace_all=True)
    if _wants_pseudonym(ctx):
        return _pseudonym(ctx)
    if ctx.vr == "PN":
        ctx.record("D")
        return ctx.new(ctx.walk.pseudonymizer.person_name(str(ctx.value() or "")))
    ctx.record("D")
    return ctx.new(values.dummy_value(ctx.vr))


def _uid_action(ctx: ElementContext) -> Element | None:
    if ctx.vr != "UI":
        return _dummy(ctx)
    return _uids(ctx, replace_all=True)


def _clean(ctx: ElementContext) -> Element | None:
    vr = ctx.vr
    if vr in ("DA", "TM", "DT"):
        return _shift(ctx)
    if vr == "UI":
        return _uids(ctx, replace_all=False)
    if vr in _OPAQUE_VRS and ctx.tag >> 24 in (0x50, 0x60):
        # Curve and overlay bitmaps (Clean Graphics) may hold burned-in text and cannot be
        # cleaned by header de-identification: removed, and the engine drops the whole plane.
        ctx.record("X", "default:graphics-not-cleanable")
        return None
    if vr in _OPAQUE_VRS:
        # An opaque value (e.g. Frame Origin Timestamp) cannot be cleaned or shifted: dummy it.
        ctx.record("D", "default:opaque-clean")
        return ctx.new(values.dummy_value(vr))
    if ctx.tag in _C_KEEP:
        return _clean_offset(ctx)
    if vr not in _TEXT_VRS:
        return ctx.elem  # numbers, codes, ages (see identity.apply_age_rules)
    return _clean_text(ctx)


def _clean_offset(ctx: ElementContext) -> Element | None:
    """A UTC offset (PS3.3 C.12.1.1.8, "&ZZXX") identifies no one; anything else is emptied."""
    if re.fullmatch(r"[+-]\d{4}", str(ctx.value() or "").strip()):
        return ctx.elem
    ctx.record("Z", "default:invalid-utc-offset")
    return ctx.new(None)


def _wants_pseudonym(ctx: ElementContext) -> bool:
    tag = ctx.tag
    if tag in (_PATIENT_NAME, _PATIENT_ID) and len(ctx.path) == 1:
        return True
    return ctx.vr in ("LO", "SH") and values.is_identifier_keyword(tag) and bool(ctx.value())


def _pseudonym(ctx: ElementContext) -> Element:
    """Keyed pseudonyms keep links (same patient, same accession) without the value."""
    walk = ctx.walk
    if ctx.tag in (_PATIENT_NAME, _PATIENT_ID) and len(ctx.path) == 1:
        value = walk.identity.patient_pseudonym
    else:
        raw = ctx.value()
        items = list(raw) if isinstance(raw, MultiValue | list) else [raw]
        limit = values.max_length(ctx.vr)
        value = "\\".join(walk.pseudonymizer.identifier(str(item), limit) for item in items)
    ctx.record("P")
    # Pseudonyms are ASCII tokens without spaces or backslashes: the output holds exactly these values.
    walk.replaced.append(Replaced(ctx.path, False, value.split("\\"), ctx.elem, ctx.source))
    return ctx.new(value)


def _uids(ctx: ElementContext, *, replace_all: bool) -> Element | None:
    """Replace instance UIDs with keyed ones; keep registry and definition UIDs (PS3.15 E.1.1 U)."""
    policy = ctx.walk.policy
    if Option.RETAIN_UIDS in policy.options and not replace_all:
        return ctx.elem
    if not replace_all and keyword_for_tag(ctx.tag) in values.DEFINITION_UID_KEYWORDS:
        return ctx.elem
    raw = ctx.value()
    items = [str(v) for v in (raw if isinstance(raw, MultiValue | list) else [raw]) if v is not None]
    uid = ctx.walk.pseudonymizer.uid
    new = [v if (not v or values.is_well_known_uid(v)) else uid(v) for v in items]
    if new == items:
        return ctx.elem
    ctx.record("U")
    ctx.walk.replaced.append(Replaced(ctx.path, True, new, ctx.elem, ctx.source, items))
    return ctx.new(new if len(new) > 1 else new[0])


def _shift(ctx: ElementContext) -> Element | None:
    """Shift DA/TM/DT by the patient's keyed offset; remove what does not parse."""
    raw = ctx.value()
    items = [str(v) for v in (raw if isinstance(raw, MultiValue | list) else [raw]) if v not in (None, "")]
    if not items:
        return ctx.elem
    shift = ctx.walk.identity.shift
    moved = [_shift_one(ctx, item, shift) for item in items]
    if any(m is None for m in moved):
        ctx.record("Z", "default:unparseable-date")
        return ctx.new(None)
    ctx.record("C")
    return ctx.new([m for m in moved if m is not None] if len(moved) > 1 else moved[0])


def _paired_text(ctx: ElementContext) -> str | None:
    other = dates.paired_tag(ctx.tag)
    if other is None or other not in ctx.source:
        return None
    value = decode(ctx.source.get_item(other), "TM" if ctx.vr == "DA" else "DA", ctx.source, ctx.walk.charset)
    text = str(value or "").strip()
    return text or None


def _shift_one(ctx: ElementContext, item: str, shift: Any) -> str | None:
    if ctx.vr == "DT":
        return dates.shift_datetime(item, shift)
    paired = _paired_text(ctx)
    if ctx.vr == "DA":
        return dates.shift_date(item, paired, shift)
    return dates.shift_time(item, paired, shift)


def _clean_text(ctx: ElementContext) -> Element | None:
    raw = ctx.value()
    if raw in (None, ""):
        return ctx.elem
    cleaner = ctx.walk.cleaner()
    items = list(raw) if isinstance(raw, MultiValue | list) else [raw]
    cleaned = [cleaner.clean(str(item)) for item in items]
    if cleaned == [str(item) for item in items]:
        return ctx.elem
    ctx.record("C")
    limit = values.max_length(ctx.vr, default=1 << 30)
    cleaned = [text[:limit] for text in cleaned]
    return ctx.new(cleaned if len(cleaned) > 1 else cleaned[0])


_HANDLERS: dict[Action, Callable[[ElementContext], Element | None]] = {
    Action.K: _keep,
    Action.Z: _empty,
    Action.D: _dummy,
    Action.U: _uid_action,
    Action.C: _clean,
}

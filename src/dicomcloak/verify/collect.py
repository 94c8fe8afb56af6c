"""Walk a dataset: the identifying values of an original, the element texts of an output.

This is deliberately independent of the engine's own notion of identifying
values (``engine/identifying.py``): a verifier that shared the engine's code
would share its blind spots. Only the :class:`~dicomcloak.policy.model.Policy`
is common, because "identifying" means "the policy changes or removes it".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from pydicom._uid_dict import UID_dictionary  # = pydicom.uid.UID_dictionary, the UID registry
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from dicomcloak.engine.outcome import TagPath
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Action
from dicomcloak.verify.needles import NeedleIndex, normalize

__all__ = ["Elem", "InputValues", "collect_identifying", "element_texts"]

_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_BINARY_NUMBERS = frozenset(
    {"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT", "OF", "OD", "OL", "OV", "OW"}
)
_FREE_TEXT = frozenset({"LO", "LT", "SH", "ST", "UC", "UT", "CS", "UR"})
_PRINTABLE_RUN = re.compile(r"[^\x00-\x1f\\\x7f]+")
_MAX_BYTES = 1_000_000
_SOP_INSTANCE_UID = 0x00080018
_CHARSET = 0x00080005
_FAST_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
_PN_DELIMITERS = {0x5E, 0x3D}  # "^" and "=" (PS3.5 6.2)


@dataclass
class InputValues:
    """What one original instance must not leak: text needles and instance UIDs."""

    needles: NeedleIndex = field(default_factory=NeedleIndex)
    uids: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)
    sop_uid: str = ""


def _creator(ds: Dataset, tag: int) -> str | None:
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 == 0 or element < 0x1000:
        return None
    creator_tag = (group << 16) | (element >> 8)
    return str(ds[creator_tag].value or "") if creator_tag in ds else None


def _is_private_creator(tag: int) -> bool:
    group, element = tag >> 16, tag & 0xFFFF
    return group % 2 == 1 and 0x0010 <= element <= 0x00FF


class Elem(NamedTuple):
    """The little of an element the walk needs: tag, VR, value (text values already split)."""

    tag: int
    VR: str
    value: object


def _decoded(raw: RawDataElement, encodings: list[str]) -> Elem:
    """Decode a raw textual value directly (pydicom's full conversion is the slow part)."""
    vr = str(raw.VR)
    data = bytes(raw.value or b"")
    if vr in _CHARSET_VRS:
        text = decode_bytes(data, encodings, _PN_DELIMITERS if vr == "PN" else set())
    else:
        text = data.decode("latin-1")
    parts = [text] if vr in _SINGLE_VALUED else text.split("\\")
    return Elem(int(raw.tag), vr, [part.rstrip(" \x00") for part in parts])


def _element(ds: Dataset, tag: int, encodings: list[str]) -> Elem:
    # pydicom's stub says DataElement, but an element not yet accessed is a RawDataElement
    raw: DataElement | RawDataElement = ds.get_item(tag)
    if tag in _PIXEL_TAGS:
        return Elem(tag, "OB", b"")
    if isinstance(raw, RawDataElement) and raw.VR in _FAST_VRS and isinstance(raw.value, bytes):
        return _decoded(raw, encodings)
    try:
        elem = ds[tag]
        return Elem(tag, elem.VR, elem.value)
    except Exception:  # noqa: BLE001 - an undecodable value: fall back to its raw bytes
        value = raw.value
        return Elem(tag, "UN", value if isinstance(value, bytes) else b"")


def _encodings(ds: Dataset, inherited: list[str]) -> list[str]:
    if _CHARSET not in ds:
        return inherited
    try:
        return list(convert_encodings(ds[_CHARSET].value))
    except Exception:  # noqa: BLE001 - unknown character set: decode as the default repertoire
        return inherited


def walk(
    ds: Dataset, prefix: TagPath = (), encodings: list[str] | None = None
) -> Iterator[tuple[TagPath, Elem, Dataset]]:
    """Yield ``(tag path, element, containing dataset)`` for every element at any depth."""
    encodings = _encodings(ds, encodings or ["iso8859"])
    for tag in list(ds.keys()):
        elem = _element(ds, int(tag), encodings)
        path = (*prefix, int(tag))
        yield path, elem, ds
        if elem.VR == "SQ" and isinstance(elem.value, list | Sequence):
            for index, item in enumerate(elem.value):
                yield from walk(item, (*path, index), encodings)


def _datasets(ds: Dataset) -> Iterator[Dataset]:
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        yield meta
    yield ds


def value_strings(elem: Elem) -> list[str]:
    """The element's value as text pieces (multi-values split; bytes as latin-1 printable runs)."""
    value = elem.value
    if value is None or elem.VR == "SQ":
        return []
    if isinstance(value, bytes | bytearray):
        if len(value) > _MAX_BYTES:
            return []
        return _PRINTABLE_RUN.findall(bytes(value).decode("latin-1"))
    items = value if isinstance(value, MultiValue | list | tuple) else [value]
    return [str(item) for item in items if item is not None and str(item).strip(" \x00")]


def _name_parts(text: str) -> Iterator[str]:
    for group in text.split("="):
        yield from group.split("^")[:2]  # PS3.5 6.2: family name, given name


def _add_value(values: InputValues, vr: str, text: str) -> None:
    if vr == "UI":
        uid = text.strip(" \x00")
        if uid and uid not in UID_dictionary:
            values.uids.add(uid)
        return
    kind = {"PN": "person-name", "DA": "date", "DT": "date", "TM": "time"}.get(vr, "text")
    values.needles.add(text, kind)
    if vr == "PN":
        for part in _name_parts(text):
            values.needles.add(part, "name-part")
    elif vr in ("DA", "DT"):
        for variant in date_variants(text.strip()[:8]):
            values.needles.add(variant, "date")


def date_variants(d: str) -> set[str]:
    """A YYYYMMDD date and the same date as YYYY-MM-DD, YYYY/MM/DD, MM/DD/YYYY, DD.MM.YYYY, ... ."""
    if len(d) != 8 or not d.isdigit():
        return set()
    y, m, dd = d[:4], d[4:6], d[6:8]
    return {d, f"{y}-{m}-{dd}", f"{y}/{m}/{dd}", f"{m}/{dd}/{y}", f"{dd}.{m}.{y}", f"{dd}/{m}/{y}",
            f"{y}.{m}.{dd}"}


def _collect_element(values: InputValues, elem: Elem, action: Action) -> None:
    vr = elem.VR
    if vr in _BINARY_NUMBERS or int(elem.tag) in _PIXEL_TAGS:
        return
    pieces = value_strings(elem)
    if action is Action.K:
        values.kept.update(normalize(piece) for piece in pieces)
        return
    if action is Action.C and vr in _FREE_TEXT:
        return  # cleaned free text: its identifying content is the other elements' values
    for piece in pieces:
        _add_value(values, vr, piece)


def collect_identifying(ds: Dataset, policy: Policy) -> InputValues:
    """Collect what an original instance must not leak under ``policy``.

    Every element (file meta, any depth, private included) whose rule is not
    K contributes its values; private creator elements name vendors, not
    people, and are skipped. Values the policy keeps elsewhere in the same
    instance (whole K values, UIDs included) are then dropped, since the output
    legitimately holds them.
    """
    sop_uid = str(ds[_SOP_INSTANCE_UID].value or "") if _SOP_INSTANCE_UID in ds else ""
    values = InputValues(sop_uid=sop_uid.strip(" \x00"))
    for root in _datasets(ds):
        for _, elem, parent in walk(root):
            tag = int(elem.tag)
            if _is_private_creator(tag) or elem.VR == "SQ":
                continue
            rule = policy.rule(tag, elem.VR, _creator(parent, tag))
            _collect_element(values, elem, rule.action)
    for text in values.kept:
        values.needles.discard(text)
    values.uids -= values.kept
    return values


def element_texts(ds: Dataset) -> Iterator[tuple[TagPath, str, bool]]:
    """Yield ``(tag path, value text, is UI)`` for every non-pixel element of an output."""
    for root in _datasets(ds):
        for path, elem, _ in walk(root):
            if elem.VR == "SQ" or int(elem.tag) in _PIXEL_TAGS:
                continue
            value = elem.value
            if isinstance(value, bytes | bytearray):
                if len(value) <= _MAX_BYTES:
                    yield path, bytes(value).decode("latin-1"), False
                continue
            pieces = value_strings(elem) if value is not None else []
            if pieces:
                yield path, "\\".join(pieces), elem.VR == "UI"

"""Collect the identifying values of one instance, for the C (clean) action on free text.

An identifying value is the value of any element the policy changes or removes
(its rule is not K), at any depth: if the profile removes it from its own
attribute, it must not survive inside a description either (PS3.15 E.1.1, C).
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dicomcloak.engine.textclean import TextCleaner, date_variants, name_components
from dicomcloak.engine.values import element_vr, is_single_byte
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Action

__all__ = ["build_cleaner", "identifying_values"]

_FREE_TEXT = frozenset({"LO", "LT", "SH", "ST", "UC", "UT"})
_VALUE_VRS = frozenset({"AE", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"})


def _decode(source: Dataset, elem: DataElement | RawDataElement, vr: str, charset: object) -> object:
    if not isinstance(elem, RawDataElement):
        return elem.value
    if vr == "SQ":
        return source[elem.tag].value
    if is_single_byte(charset) and isinstance(elem.value, bytes):
        # Fast path: single-byte character sets decode as Latin-1 (PS3.5 6.1.2.3).
        return elem.value.decode("latin-1").rstrip(" \x00").split("\\")
    return convert_raw_data_element(elem, encoding=charset, ds=source).value  # type: ignore[arg-type]


def _strings(value: object) -> Iterator[str]:
    items = value if isinstance(value, MultiValue | list) else [value]
    for item in items:
        if item is not None and str(item).strip():
            yield str(item).strip()


def _expand(vr: str, text: str) -> Iterator[str]:
    yield text
    if vr == "PN":
        yield from name_components(text)
    elif vr == "DA":
        yield from date_variants(text)
    elif vr == "DT":
        yield from date_variants(text[:8])


def identifying_values(
    dataset: Dataset, policy: Policy, charset: object, everything: bool = False
) -> set[str]:
    """Every text value at any depth whose rule is not K (all of them under ``everything``)."""
    found: set[str] = set()
    creator: str | None = None
    elements = dataset._dict  # noqa: SLF001 - see deidentify._process
    for tag in sorted(elements):
        elem = elements[tag]
        is_creator = bool((tag >> 16) % 2) and 0x10 <= (tag & 0xFFFF) <= 0xFF
        vr = "LO" if is_creator else element_vr(elem)
        if vr not in _VALUE_VRS and vr != "SQ":
            continue
        value = _decode(dataset, elem, vr, charset)
        if is_creator:
            creator = str(value or "").strip()
        action = policy.rule(tag, vr, creator).action
        # Values the policy removes or replaces are identifying; free text it only cleans is not.
        removed = everything or not (action is Action.K or (action is Action.C and vr in _FREE_TEXT))
        if vr == "SQ":
            for item in value or []:  # type: ignore[attr-defined]
                found |= identifying_values(item, policy, charset, removed)
        elif removed and vr in _VALUE_VRS:
            for text in _strings(value):
                found.update(_expand(vr, text))
    return found


def build_cleaner(dataset: Dataset, policy: Policy, charset: object) -> TextCleaner:
    """A TextCleaner for the instance's identifying values."""
    return TextCleaner(identifying_values(dataset, policy, charset))

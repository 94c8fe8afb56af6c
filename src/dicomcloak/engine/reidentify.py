"""Put the original attributes back into a de-identified data set (PS3.15 E.1.2), or map its references back.

:func:`restore` is E.1.2 itself: every attribute of the Modified Attributes
item replaces the attribute of the main data set (step 2); the
de-identification markers and the Encrypted Attributes Sequence are removed,
and Patient Identity Removed (0012,0062) is set to NO (step 3) unless its
original value was sealed (then that value is restored, so the result equals
the input element for element). :func:`remap` serves objects made later on
de-identified data (a SEG, an SR): their UIDs, at any depth, and patient and
study identifiers are mapped back through the vault's pseudonym map.
Both are pure: the input data set is not modified.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from dicomcloak.engine import markers
from dicomcloak.engine.embedded import ENCRYPTED_ATTRIBUTES
from dicomcloak.engine.pixelnote import apply_note, take_note
from dicomcloak.engine.pixelseal import PIXEL_DATA
from dicomcloak.engine.quiet import quiet_pydicom
from dicomcloak.engine.uidmap import map_key
from dicomcloak.raw import new_dataset

__all__ = ["MARKER_TAGS", "Restored", "remap", "restore"]

_PATIENT_IDENTITY_REMOVED = 0x00120062
#: What de-identification adds and E.1.2 takes away (PS3.15 E.1.2 step 3, PS3.3 C.7.1.1).
MARKER_TAGS = (
    _PATIENT_IDENTITY_REMOVED,  # Patient Identity Removed
    0x00120063,  # De-identification Method
    0x00120064,  # De-identification Method Code Sequence
    0x00280303,  # Longitudinal Temporal Information Modified
    ENCRYPTED_ATTRIBUTES,
)
#: Identifiers mapped back through the vault besides UIDs (the pseudonyms de-identification makes).
_MAPPED_IDS = frozenset({0x00100010, 0x00100020, 0x00080050, 0x00200010, 0x00101000})


@dataclass(frozen=True)
class Restored:
    """A re-identified data set and what was done: restored tags and removed markers (never values)."""

    dataset: Dataset
    restored: tuple[int, ...]
    removed: tuple[int, ...]


def restore(ds: Dataset, item: Dataset) -> Restored:
    """Apply the Modified Attributes ``item`` to a copy of ``ds`` (PS3.15 E.1.2 steps 2 and 3).

    A pixel cleaning's note in the item (:mod:`dicomcloak.engine.pixelnote`)
    is applied too: regions, added attributes, the original transfer syntax.
    """
    quiet_pydicom()
    item, note = take_note(item)
    implicit, little = _encoding(ds)
    elements = dict(ds._dict)  # noqa: SLF001 - a shallow copy: elements are replaced, never changed
    removed = tuple(tag for tag in MARKER_TAGS if elements.pop(BaseTag(tag), None) is not None)
    restored = []
    for tag, elem in item._dict.items():  # noqa: SLF001 - raw elements, copied as sealed
        elements[BaseTag(tag)] = elem
        restored.append(int(tag))
    charset = ds.original_character_set
    out = new_dataset(elements, implicit, little, charset if isinstance(charset, str) else list(charset))
    if _PATIENT_IDENTITY_REMOVED not in elements:
        out.add_new(_PATIENT_IDENTITY_REMOVED, "CS", "NO")
    out.file_meta = markers.file_meta(ds, out)
    if note is not None and apply_note(out, note):
        restored.append(PIXEL_DATA)
    return Restored(out, tuple(sorted(restored)), removed)


def _encoding(ds: Dataset) -> tuple[bool, bool]:
    implicit, little = ds.original_encoding
    if implicit is not None and little is not None:
        return implicit, little
    syntax = ds.file_meta.TransferSyntaxUID
    return bool(syntax.is_implicit_VR), bool(syntax.is_little_endian)


def remap(ds: Dataset, lookup: Callable[[str], str | None]) -> tuple[Dataset, int]:
    """Map every UID (any depth) and patient/study identifier of a copy of ``ds`` through ``lookup``.

    Returns the copy and how many values were mapped. Values ``lookup`` does
    not know (a SEG's own SOP Instance UID, a SOP Class UID) stay as they are.
    """
    quiet_pydicom()
    out = copy.deepcopy(ds)
    count = 0

    def visit(dataset: Dataset, elem: DataElement) -> None:
        nonlocal count
        tag = int(elem.tag)
        if elem.VR == "UI" or tag in _MAPPED_IDS:
            vr = str(elem.VR)
            new, mapped = _mapped(elem.value, lambda value: lookup(map_key(tag, value, vr)))
            if mapped:
                dataset[elem.tag].value = new
                count += mapped

    out.walk(visit)
    if "SOPInstanceUID" in out and "file_meta" in out.__dict__:
        out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    return out, count


def _mapped(value: object, lookup: Callable[[str], str | None]) -> tuple[object, int]:
    if isinstance(value, MultiValue | list):
        results = [_mapped(v, lookup) for v in value]
        return [r[0] for r in results], sum(r[1] for r in results)
    if value is None or isinstance(value, RawDataElement | bytes):
        return value, 0
    original = lookup(str(value))
    return (value, 0) if original is None else (original, 1)

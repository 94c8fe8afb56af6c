"""The pseudonym-to-original pairs of one de-identified instance, for the vault's map (DESIGN.md decision 3).

Objects made later on de-identified data (a SEG, an SR, an AI result) carry
the de-identified UIDs and pseudonyms only; re-identifying them needs the map
from each replaced UID (action U) and keyed pseudonym (action P) back to its
original. Pairs are read at the paths the Outcome names: the input and the
output share item indices (de-identification never removes sequence items).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dicomcloak.engine.outcome import Change, TagPath

__all__ = ["MAPPED_ACTIONS", "map_key", "replaced_pairs"]

#: Actions whose new value is a deterministic stand-in for the original (UIDs, keyed pseudonyms).
MAPPED_ACTIONS = frozenset({"U", "P"})


def map_key(tag: int, value: str, vr: str) -> str:
    """The vault map's key for a value: a UID as it is, any other pseudonym qualified by its tag.

    UIDs are unique whatever attribute holds them (a Referenced SOP Instance
    UID is some instance's SOP Instance UID), so they map by value alone. One
    patient pseudonym stands for both Patient's Name and Patient ID: the tag
    tells which original to give back.
    """
    return value if vr == "UI" else f"{tag:08X}:{value}"


def replaced_pairs(source: Dataset, out: Dataset, changes: Iterable[Change]) -> tuple[tuple[str, str], ...]:
    """Distinct (map key of the pseudonym, original) pairs of every U or P change; empty values skipped."""
    pairs: dict[str, str] = {}
    for change in changes:
        if change.action not in MAPPED_ACTIONS:
            continue
        vr = "UI" if change.action == "U" else ""
        for new, old in zip(_values(out, change.path), _values(source, change.path), strict=False):
            if new and old and new != old:
                pairs[map_key(change.path[-1], new, vr)] = old
    return tuple(pairs.items())


def _values(ds: Dataset, path: TagPath) -> Iterator[str]:
    """The text values of the element at ``path`` (none when the path no longer resolves)."""
    current = ds
    for position in range(0, len(path) - 1, 2):
        tag, index = path[position], path[position + 1]
        if tag not in current:
            return
        items = current[tag].value or []
        if index >= len(items):
            return
        current = items[index]
    if path[-1] not in current:
        return
    value = current[path[-1]].value
    values = value if isinstance(value, MultiValue | list) else [value]
    for single in values:
        yield "" if single is None else str(single)

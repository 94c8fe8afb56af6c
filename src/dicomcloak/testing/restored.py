"""Compare a re-identified data set with the original, element for element (tests and benchmarks).

Equality is pydicom's: same tag, VR and value, sequences compared item by
item recursively. Two differences are allowed, both required by the
standard: Group Length elements (retired, PS3.5 7.2, never written) and
Patient Identity Removed (0012,0062) = NO added when the original had none
(PS3.15 E.1.2 step 3).
"""

from __future__ import annotations

from pydicom.dataset import Dataset

__all__ = ["differences"]

_PATIENT_IDENTITY_REMOVED = 0x00120062


def differences(original: Dataset, restored: Dataset) -> list[str]:
    """Tags (as ``(gggg,eeee)`` strings, never values) where ``restored`` differs from ``original``."""
    found = []
    tags = set(map(int, original.keys())) | set(map(int, restored.keys()))
    for tag in sorted(tags):
        if not tag & 0xFFFF:
            continue
        if tag == _PATIENT_IDENTITY_REMOVED and tag not in original:
            if str(restored[tag].value) != "NO":
                found.append(_name(tag))
            continue
        if tag not in original or tag not in restored or not _equal(original, restored, tag):
            found.append(_name(tag))
    return found


def _equal(original: Dataset, restored: Dataset, tag: int) -> bool:
    a, b = original[tag], restored[tag]
    if a.VR == "SQ" and b.VR == "SQ":
        items_a, items_b = list(a.value or []), list(b.value or [])
        return len(items_a) == len(items_b) and all(
            not differences(x, y) for x, y in zip(items_a, items_b, strict=True)
        )
    return bool(a.VR == b.VR and a.value == b.value)


def _name(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"

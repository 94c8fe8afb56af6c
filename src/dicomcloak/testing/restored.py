"""Compare a re-identified data set with the original, element for element (tests and benchmarks).

Equality is pydicom's: same tag, VR and value, sequences compared item by
item recursively. Two differences are allowed, both required by the
standard: Group Length elements (retired, PS3.5 7.2, never written) and
Patient Identity Removed (0012,0062) = NO added when the original had none
(PS3.15 E.1.2 step 3).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

__all__ = ["compare_trees", "differences", "main"]

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


def compare_trees(originals: Path, restored: Path) -> tuple[int, int, list[str]]:
    """Match restored files to originals by SOP Instance UID; return (exact, total, differing tags).

    Every restored file must equal an original with the same SOP Instance UID
    (re-identification restores it). Several originals may share one UID
    (``deid --uid-conflicts keep-both`` writes each): a restored file is exact
    when it equals one of them, else the differences from the first are
    reported. The differing tags are reported, never values.
    """
    by_uid: dict[str, list[Path]] = {}
    for path in sorted(originals.rglob("*")):
        if path.is_file() and path.suffix == ".dcm":
            by_uid.setdefault(str(dcmread(path, stop_before_pixels=True).SOPInstanceUID), []).append(path)
    exact, total, differing = 0, 0, []
    for path in sorted(restored.rglob("*.dcm")):
        back = dcmread(path)
        total += 1
        found = _closest(by_uid.get(str(back.SOPInstanceUID), []), back)
        exact += not found
        differing.extend(found)
    return exact, total, sorted(set(differing))


def _closest(candidates: list[Path], back: Dataset) -> list[str]:
    """No differences if ``back`` equals one candidate, else those from the first (or "not an input UID")."""
    if not candidates:
        return ["(0008,0018) not an input UID"]
    found = [differences(dcmread(path), back) for path in candidates]
    return [] if [] in found else found[0]


def main(argv: list[str] | None = None) -> int:
    """``python -m dicomcloak.testing.restored ORIGINALS RESTORED``: exit 1 unless every file is restored."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m dicomcloak.testing.restored ORIGINALS RESTORED", file=sys.stderr)
        return 2
    exact, total, differing = compare_trees(Path(args[0]), Path(args[1]))
    print(f"{exact}/{total} restored files equal their input element for element")
    if differing:
        print("differing tags: " + ", ".join(differing))
    return 0 if total and exact == total else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Score burned-in text redaction end to end, for any redactor, from the pixels alone.

Adapted from dicomcloak's shared evaluation harness (``shared/eval/pixels/score_redaction.py``),
typed. ``SYNTH`` is made by :mod:`dicomcloak.testing.pixel_synth`; the redactor's
output for each ``NNN.dcm`` is found by the same file name anywhere below ``OUT``.
The redaction mask is every pixel whose value differs from the input. A
ground-truth box counts as redacted when its text is gone: at least 90% of its
glyph pixels (those standing out from the box's median in the input) changed,
or the box is now flat. Reported: PHI box recall, non-PHI text boxes redacted,
the changed area outside PHI boxes (% of the image), missing outputs.

Run it as ``python -m dicomcloak.testing.pixel_score SYNTH OUT [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray

__all__ = ["main", "score"]

Box = list[int]


def _pixels(path: Path) -> NDArray[Any]:
    arr = pydicom.dcmread(path).pixel_array
    return arr.reshape(arr.shape[0], arr.shape[1], -1)


def _window(arr: NDArray[Any], box: Box) -> NDArray[Any]:
    x0, y0, x1, y1 = (int(v) for v in box)
    return arr[max(0, y0) : y1 + 1, max(0, x0) : x1 + 1]


def redacted(before: NDArray[Any], after: NDArray[Any], changed: NDArray[np.bool_], box: Box) -> bool:
    """Whether the text in ``box`` is gone from ``after``."""
    b, a, c = _window(before, box), _window(after, box), _window(changed, box)
    if not c.size or not c.any():
        return False
    b = b.astype(np.float64)
    glyph = np.any(np.abs(b - np.median(b.reshape(-1, b.shape[-1]), axis=0)) > 30, axis=2)
    if glyph.any() and c[glyph].mean() >= 0.9:
        return True
    return bool(a.astype(np.float64).std(axis=(0, 1)).max() < 3)


def _image(truth: dict[str, Any], before: NDArray[Any], after: NDArray[Any]) -> tuple[list[int], float]:
    """(PHI hits, PHI boxes, non-PHI redacted, non-PHI boxes) and the false-positive area of one image."""
    changed = np.any(before != after, axis=2)
    phi_mask = np.zeros(changed.shape, bool)
    counts = [0, 0, 0, 0]
    for seg in truth["segments"]:
        gone = redacted(before, after, changed, seg["box"])
        if seg["phi"]:
            counts[0] += gone
            counts[1] += 1
            x0, y0, x1, y1 = (int(v) for v in seg["box"])
            phi_mask[max(0, y0 - 2) : y1 + 3, max(0, x0 - 2) : x1 + 3] = True
        else:
            counts[2] += gone
            counts[3] += 1
    return counts, float((changed & ~phi_mask).mean())


def score(synth: Path, out: Path) -> dict[str, Any]:
    """Recall, collateral and false-positive area of the outputs below ``out`` against ``synth``."""
    found = {path.name: path for path in out.rglob("*.dcm")}
    totals, fp_area, missing = [0, 0, 0, 0], [], []
    for truth_path in sorted(synth.glob("*.json")):
        name = truth_path.with_suffix(".dcm").name
        if name not in found:
            missing.append(truth_path.stem)
            continue
        before, after = _pixels(truth_path.with_suffix(".dcm")), _pixels(found[name])
        if before.shape != after.shape:
            missing.append(f"{truth_path.stem} (shape changed)")
            continue
        counts, area = _image(json.loads(truth_path.read_text(encoding="utf-8")), before, after)
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
        fp_area.append(area)
    return {
        "phi_boxes": totals[1],
        "phi_recall": totals[0] / totals[1] if totals[1] else None,
        "nonphi_redacted": totals[2] / totals[3] if totals[3] else None,
        "fp_area_pct": 100 * float(np.mean(fp_area)) if fp_area else None,
        "missing_outputs": missing,
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: ``SYNTH OUT [--json FILE]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("synth", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = score(args.synth, args.out)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

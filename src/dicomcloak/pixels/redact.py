"""Redaction geometry: union the boxes seen on sampled frames, pad them, fill them on every frame.

Burned-in text is usually static across a cine loop, so boxes found on a
sample of frames (first, last, evenly spaced) are merged and their union
blanked on every frame. A box is padded sideways by half its height (OCR
boxes hug the glyphs; the first and last letters' serifs and anti-aliasing
stick out) and a little vertically. The fill is a constant: the image's black
unless the policy names a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from dicomcloak.pixels.model import Rect, TextBox

__all__ = ["black", "fill", "merge", "pad", "union"]

Seen = tuple[TextBox, tuple[int, ...]]


def pad(rect: Rect, shape: tuple[int, ...], sideways: float, vertical: float) -> Rect:
    """``rect`` widened by ``sideways`` x its height left and right, ``vertical`` x up and down."""
    height = max(1, rect.bottom - rect.top)
    across, down = round(height * sideways), max(1, round(height * vertical))
    return Rect(
        top=max(0, rect.top - down),
        left=max(0, rect.left - across),
        bottom=min(shape[0], rect.bottom + down),
        right=min(shape[1], rect.right + across),
    )


def _overlap(a: Rect, b: Rect) -> float:
    """Intersection over the smaller box's area (0 when they do not meet)."""
    inter = Rect(max(a.top, b.top), max(a.left, b.left), min(a.bottom, b.bottom), min(a.right, b.right))
    if inter.bottom <= inter.top or inter.right <= inter.left:
        return 0.0
    return inter.area / max(1, min(a.area, b.area))


def union(a: Rect, b: Rect) -> Rect:
    """The smallest rectangle holding both."""
    return Rect(min(a.top, b.top), min(a.left, b.left), max(a.bottom, b.bottom), max(a.right, b.right))


def _better(a: TextBox, b: TextBox) -> TextBox:
    """The box with the union of both rectangles and the text read with more confidence."""
    best = a if (a.text is not None, a.score) >= (b.text is not None, b.score) else b
    return TextBox(rect=union(a.rect, b.rect), text=best.text, score=best.score, source=best.source)


def merge(found: Iterable[tuple[int, Sequence[TextBox]]], same: float = 0.5) -> list[Seen]:
    """One entry per text region across frames: boxes overlapping by ``same`` or more are one region."""
    merged: list[tuple[TextBox, set[int]]] = []
    for frame, boxes in found:
        for box in boxes:
            for index, (seen, frames) in enumerate(merged):
                if seen.source == box.source and _overlap(seen.rect, box.rect) >= same:
                    merged[index] = (_better(seen, box), frames | {frame})
                    break
            else:
                merged.append((box, {frame}))
    return [(box, tuple(sorted(frames))) for box, frames in merged]


def black(ds: Dataset, frames: NDArray[np.generic]) -> int:
    """The stored value that displays as black: the minimum, or the maximum for MONOCHROME1.

    For PALETTE COLOR the index whose palette entry is darkest (PS3.3 C.7.6.3.1.5).
    """
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "MONOCHROME1":
        return int(frames.max())
    if photometric == "PALETTE COLOR" and "RedPaletteColorLookupTableData" in ds:
        return _darkest_index(ds)
    return int(frames.min()) if photometric.startswith("MONOCHROME") else 0


def _darkest_index(ds: Dataset) -> int:
    from pydicom.pixels.processing import apply_color_lut

    lut_size = int(ds.RedPaletteColorLookupTableDescriptor[0]) or 65536
    first = int(ds.RedPaletteColorLookupTableDescriptor[1])
    indices = np.arange(first, first + lut_size, dtype=np.uint16 if lut_size > 256 else np.uint8)
    colours = apply_color_lut(indices, ds).astype(np.int64).sum(axis=-1)
    return first + int(np.argmin(colours))


def fill(frames: NDArray[np.generic], rects: Iterable[Rect], value: int) -> None:
    """Write ``value`` into every rectangle on every frame of ``frames`` (frames, rows, cols[, samples])."""
    for rect in rects:
        frames[:, rect.top : rect.bottom, rect.left : rect.right, ...] = value

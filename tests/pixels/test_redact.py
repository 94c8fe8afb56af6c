"""Redaction geometry: padding, merging boxes across frames, the fill value, every frame filled."""

from __future__ import annotations

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dicomcloak.pixels.model import Rect, TextBox
from dicomcloak.pixels.redact import black, fill, merge, pad


def test_pad_sideways_by_half_the_height_and_clipped() -> None:
    assert pad(Rect(10, 20, 30, 60), (100, 100), 0.5, 0.15) == Rect(7, 10, 33, 70)
    assert pad(Rect(0, 2, 20, 98), (25, 100), 0.5, 0.15) == Rect(0, 0, 23, 100)


def test_merge_unions_overlapping_boxes_across_frames() -> None:
    a = TextBox(Rect(10, 10, 20, 60), None, 0.5)
    b = TextBox(Rect(11, 12, 21, 66), "JOHN SMITH", 0.9)
    c = TextBox(Rect(50, 10, 60, 60), None, 0.5)
    merged = merge([(0, [a, c]), (9, [b])])
    assert merged[0] == (TextBox(Rect(10, 10, 21, 66), "JOHN SMITH", 0.9), (0, 9))
    assert merged[1] == (c, (0,))


def test_fill_every_frame() -> None:
    frames = np.full((5, 20, 30), 200, dtype=np.uint16)
    fill(frames, [Rect(2, 3, 6, 9)], 0)
    assert (frames[:, 2:6, 3:9] == 0).all() and int(frames.sum()) == 200 * (5 * 600 - 5 * 24)


def test_black_follows_the_photometric_interpretation() -> None:
    ds = dcmread(str(get_testdata_file("CT_small.dcm")))
    frames = ds.pixel_array[np.newaxis]
    assert black(ds, frames) == int(frames.min())
    ds.PhotometricInterpretation = "MONOCHROME1"
    assert black(ds, frames) == int(frames.max())
    palette = dcmread(str(get_testdata_file("examples_palette.dcm")))
    index = black(palette, palette.pixel_array[np.newaxis])
    red = palette.RedPaletteColorLookupTableData
    assert 0 <= index < 256 and red  # the darkest entry of the palette

"""pixelnote: the boxes of changed pixels cover exactly what changed; padded region payloads still restore."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dicomcloak.engine.pixelnote import boxes_of
from dicomcloak.engine.pixelseal import Box, restored_bytes, seal_regions
from dicomcloak.testing.pixelcases import load


@settings(max_examples=200, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12))))
def test_boxes_cover_exactly_the_changed_pixels(mask: np.ndarray) -> None:
    covered = np.zeros(mask.shape, dtype=np.int32)
    for box in boxes_of(mask):
        covered[box.frame, box.row : box.row + box.rows, box.col : box.col + box.cols] += 1
    assert np.array_equal(covered, mask.astype(np.int32))  # every changed pixel once, nothing else


def test_a_filled_rectangle_is_one_box() -> None:
    mask = np.zeros((2, 40, 50), dtype=bool)
    mask[1, 5:17, 8:30] = True
    mask[1, 10:20, 25:40] = True  # an overlapping second box: a few rectangles, not one per row
    assert boxes_of(mask[:1]) == []
    boxes = boxes_of(mask)
    assert len(boxes) <= 4 and Box(1, 5, 8, 5, 22) in boxes


def test_a_region_payload_padded_to_even_length_restores() -> None:
    _, ds = load("CT_small.dcm")
    payload = seal_regions(ds, [Box(0, 3, 5, 1, 1)])  # 5 + 20 + 4 + 2 bytes: odd
    assert len(payload) % 2
    assert restored_bytes(ds, payload + b"\x00") == bytes(ds.PixelData)  # as an OB value is stored

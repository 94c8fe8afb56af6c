"""to_uint8: a frame as a viewer shows it (window, MONOCHROME1, palette, colour), for OCR and thumbnails."""

from __future__ import annotations

import numpy as np

from dicomcloak.pixels.frames import decode, to_uint8
from dicomcloak.testing.pixelcases import load


def test_the_header_window_is_applied() -> None:
    _, ds = load("CT_small.dcm")
    frame = decode(ds)[0]
    ds.WindowCenter, ds.WindowWidth = 40, 400  # soft tissue: bone and air clip to white and black
    image = to_uint8(frame, ds)
    assert image.shape == frame.shape and image.dtype == np.uint8
    hu = frame * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert (image[hu >= 240] == 255).all() and (image[hu <= -160] == 0).all()
    assert not np.array_equal(image, to_uint8(frame))  # without the header: min/max


def test_without_a_window_the_range_is_stretched() -> None:
    frame = np.array([[[100, 200], [300, 400]]], dtype=np.uint16)[0]
    assert to_uint8(frame).tolist() == [[0, 85], [170, 255]]
    assert to_uint8(np.full((3, 3), 7, dtype=np.int16)).max() == 0  # a constant frame: no division by zero


def test_monochrome1_is_inverted() -> None:
    _, ds = load("RG1_UNCR.dcm")
    frame = decode(ds)[0]
    image = to_uint8(frame, ds)
    brightest = np.unravel_index(np.argmax(frame), frame.shape)
    assert image[brightest] < 20  # the highest stored value is the darkest on screen


def test_palette_colour_is_looked_up() -> None:
    _, ds = load("OBXXXX1A.dcm")
    frame = decode(ds)[0]
    rgb = to_uint8(frame, ds, gray=False)
    assert rgb.shape == (*frame.shape, 3)
    assert not np.array_equal(rgb[..., 0], frame.astype(np.uint8))  # entries, not indices
    gray = to_uint8(frame, ds)
    assert gray.shape == frame.shape and gray.dtype == np.uint8


def test_colour_becomes_luma() -> None:
    frame = np.zeros((2, 2, 3), dtype=np.uint8)
    frame[0, 0] = (255, 255, 255)
    frame[0, 1] = (255, 0, 0)
    frame[1, 0] = (0, 255, 0)
    assert to_uint8(frame).tolist() == [[255, 76], [150, 0]]
    assert np.array_equal(to_uint8(frame, gray=False), frame)  # 8-bit colour is shown as it is
    _, ds = load("US1_J2KR.dcm")  # YBR_RCT, decoded to RGB
    assert to_uint8(decode(ds)[0], ds).shape == (480, 640)

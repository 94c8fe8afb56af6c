"""The OCR back-ends on real pixels: RapidOCR (models from its wheel) and Tesseract (Debian)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dicomcloak.errors import ConfigError
from dicomcloak.pixels.model import Rect
from dicomcloak.pixels.ocr import OcrBackend, load_backend
from dicomcloak.pixels.ocr.base import scale_back, upscaled


def _image(synth: Path) -> np.ndarray:
    return np.asarray(Image.open(synth / "000.png"))


def test_rapid_detection_only_gives_boxes_without_text(rapid: OcrBackend, synth8: Path) -> None:
    boxes = rapid.detect(_image(synth8), recognise=False)
    assert len(boxes) >= 8 and all(box.text is None for box in boxes)
    assert all(0 <= box.rect.top < box.rect.bottom <= 480 for box in boxes)


def test_rapid_recognition_reads_the_text(rapid: OcrBackend, synth8: Path) -> None:
    texts = " ".join(box.text or "" for box in rapid.detect(_image(synth8), recognise=True))
    assert "ID" in texts and "DOB" in texts


def test_small_images_are_upscaled_and_boxes_mapped_back() -> None:
    big, factor = upscaled(np.zeros((100, 200), np.uint8))
    assert big.shape == (200, 400) and factor == 2
    assert upscaled(np.zeros((600, 200), np.uint8))[1] == 1
    assert scale_back(Rect(11, 21, 31, 41), 2, (100, 200)) == Rect(5, 10, 16, 21)


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_backend("easyocr")
    assert caught.value.reference == "pixels-bad-backend"


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="Debian tesseract-ocr is not installed")
def test_tesseract_reads_lines(synth8: Path) -> None:
    boxes = load_backend("tesseract").detect(_image(synth8), recognise=True)
    assert any("JONES" in (box.text or "") for box in boxes)
    assert all(box.rect.area > 0 and box.source == "tesseract" for box in boxes)

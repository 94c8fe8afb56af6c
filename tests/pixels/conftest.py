"""Fixtures of the pixel tests: the real RapidOCR back-end (once per process) and synthetic images."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomcloak.pixels.ocr import OcrBackend, load_backend
from dicomcloak.testing.pixel_synth import make_images


@pytest.fixture(scope="session")
def rapid() -> OcrBackend:
    """RapidOCR with the models of its wheel (the default back-end)."""
    return load_backend("rapidocr")


@pytest.fixture(scope="session")
def synth8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight synthetic burned-in images, seed 7 (the CI version of the acceptance set)."""
    out = tmp_path_factory.mktemp("synth8")
    make_images(out, n=8, seed=7)
    return out

"""OCR back-ends behind one small Protocol (:class:`OcrBackend`), loaded lazily by name.

``rapidocr`` (the default: PP-OCRv4 ONNX models inside the ``rapidocr-onnxruntime``
wheel) and ``tesseract`` (Debian ``tesseract-ocr``, through pytesseract). Neither
library is imported until :func:`load_backend` is called, so ``deid --pixels off``
starts as fast as before.
"""

from __future__ import annotations

import importlib

from dicomcloak.errors import ConfigError
from dicomcloak.pixels.ocr.base import OcrBackend

__all__ = ["BACKENDS", "OcrBackend", "load_backend"]

#: Back-end name -> "module:class", imported on first use (STYLE.md habit 6).
BACKENDS = {
    "rapidocr": "dicomcloak.pixels.ocr.rapid:RapidOcrBackend",
    "tesseract": "dicomcloak.pixels.ocr.tesseract:TesseractBackend",
}


def load_backend(name: str = "rapidocr") -> OcrBackend:
    """Return a ready back-end named ``name``; raise ``ocr-backend-missing`` when its library is absent."""
    target = BACKENDS.get(name)
    if target is None:
        raise ConfigError(
            f"unknown OCR back-end {name!r}",
            reference="pixels-bad-backend",
            hint=f"use one of: {', '.join(sorted(BACKENDS))}",
        )
    module, _, attribute = target.partition(":")
    backend: OcrBackend = getattr(importlib.import_module(module), attribute)()
    return backend

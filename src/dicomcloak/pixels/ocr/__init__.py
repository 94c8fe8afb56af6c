"""OCR back-ends behind one small Protocol (:class:`OcrBackend`), loaded lazily by name.

``rapidocr`` (the default: PP-OCRv4 ONNX models inside the ``rapidocr-onnxruntime``
wheel) and ``tesseract`` (Debian ``tesseract-ocr``, through pytesseract). Neither
library is imported until :func:`load_backend` is called, so ``deid --pixels off``
starts as fast as before.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil

from dicomcloak.errors import ConfigError
from dicomcloak.pixels.ocr.base import OcrBackend, backend_missing

__all__ = ["BACKENDS", "OcrBackend", "ensure_available", "load_backend", "threads_per_worker"]

#: Back-end name -> "module:class", imported on first use (STYLE.md habit 6).
BACKENDS = {
    "rapidocr": "dicomcloak.pixels.ocr.rapid:RapidOcrBackend",
    "tesseract": "dicomcloak.pixels.ocr.tesseract:TesseractBackend",
}


def threads_per_worker(workers: int) -> int:
    """Intra-op threads for each of ``workers`` processes: the cores this process may use, shared out.

    One worker gets every core; as many workers as cores get one thread each
    (more would only make them contend for the cores).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def load_backend(name: str = "rapidocr", *, threads: int = 0) -> OcrBackend:
    """Return a ready back-end named ``name``; raise ``ocr-backend-missing`` when its library is absent.

    ``threads``: the OCR library's intra-op threads in this process (0: its default, every
    core); give :func:`threads_per_worker` of the worker count when several processes run.
    Back-ends that run no threads of their own (Tesseract) ignore it.
    """
    target = BACKENDS.get(name)
    if target is None:
        raise ConfigError(
            f"unknown OCR back-end {name!r}",
            reference="pixels-bad-backend",
            hint=f"use one of: {', '.join(sorted(BACKENDS))}",
        )
    module, _, attribute = target.partition(":")
    backend: OcrBackend = getattr(importlib.import_module(module), attribute)(threads=threads)
    return backend


#: What each back-end needs installed: its Python module, and a program on PATH (None: none).
_NEEDS = {"rapidocr": ("rapidocr_onnxruntime", None), "tesseract": ("pytesseract", "tesseract")}


def ensure_available(name: str) -> None:
    """Raise ``ocr-backend-missing`` now, before a run writes anything, when back-end ``name`` cannot load.

    Nothing is imported or loaded (the models load in each worker, on the
    first image at risk): a run that would stop at its first ultrasound stops
    before its first file instead.
    """
    module, program = _NEEDS.get(name, (None, None))
    if module is None:
        load_backend(name)  # unknown name: its own error
        return
    missing = importlib.util.find_spec(module) is None or (program is not None and not shutil.which(program))
    if missing:
        install = getattr(importlib.import_module(BACKENDS[name].partition(":")[0]), "INSTALL", "")
        raise backend_missing(name, str(install))

"""RapidOCR back-end: PaddleOCR's PP-OCRv4 detection and recognition models as ONNX, inside the wheel.

``rapidocr-onnxruntime`` 1.4.4 carries its three models in the wheel
(``rapidocr_onnxruntime/models/*.onnx``) and reads them from there; no code
path downloads anything. Its declared dependency on the GUI ``opencv-python``
is not installed: the project depends on ``opencv-python-headless`` (the same
``cv2`` without libGL) and installs RapidOCR itself with ``pip install --no-deps``
(docs/pixels.md, "Dependencies"). One engine per process, created on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import cache
from typing import Any

from dicomcloak.pixels.model import Rect, TextBox
from dicomcloak.pixels.ocr.base import Image, backend_missing, scale_back, upscaled

__all__ = ["INSTALL", "RapidOcrBackend"]

INSTALL = "pip install --no-deps rapidocr-onnxruntime==1.4.4"
#: Detection boxes are kept above the library's own threshold (0.5); a detection-only
#: run has no recognition score, so its boxes carry this value.
DETECTED = 0.5


@cache
def _engine() -> Any:
    """The process's RapidOCR engine (model sessions are costly: about a second to create)."""
    try:
        module = importlib.import_module("rapidocr_onnxruntime")
    except ImportError:
        raise backend_missing("rapidocr-onnxruntime", INSTALL) from None
    # One intra-op thread: the batch runs one worker per core (docs/pixels.md, "Speed").
    return module.RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1, print_verbose=False)


def _rect(points: Sequence[Sequence[float]]) -> Rect:
    xs = [float(point[0]) for point in points]
    ys = [float(point[1]) for point in points]
    return Rect(top=int(min(ys)), left=int(min(xs)), bottom=int(max(ys)) + 1, right=int(max(xs)) + 1)


def _boxes(result: list[Any] | None, recognise: bool) -> list[tuple[Rect, str | None, float]]:
    if not result:
        return []
    if not recognise:
        return [(_rect(points), None, DETECTED) for points in result]
    return [(_rect(points), str(text), float(score)) for points, text, score in result]


class RapidOcrBackend:
    """:class:`~dicomcloak.pixels.ocr.base.OcrBackend` over RapidOCR (the default)."""

    name = "rapidocr"

    def __init__(self) -> None:
        _engine()  # fail early, with the install hint, when the library is absent

    def detect(self, image: Image, *, recognise: bool) -> list[TextBox]:
        """Detect (and, when asked, recognise) text; classification of orientation is not needed."""
        big, factor = upscaled(image)
        result, _ = _engine()(big, use_det=True, use_cls=False, use_rec=recognise)
        return [
            TextBox(rect=scale_back(rect, factor, image.shape), text=text, score=score, source=self.name)
            for rect, text, score in _boxes(result, recognise)
        ]

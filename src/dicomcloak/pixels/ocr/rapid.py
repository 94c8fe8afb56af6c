"""RapidOCR back-end: PaddleOCR's PP-OCRv4 detection and recognition models as ONNX, inside the wheel.

``rapidocr-onnxruntime`` 1.4.4 carries its three models in the wheel
(``rapidocr_onnxruntime/models/*.onnx``) and reads them from there; no code
path downloads anything. Its declared dependency on the GUI ``opencv-python``
is not installed: the project depends on ``opencv-python-headless`` (the same
``cv2`` without libGL) and installs RapidOCR itself with ``pip install --no-deps``
(docs/pixels.md, "Dependencies").

The library's detector and recogniser are driven directly rather than through
``RapidOCR.__call__``, for speed (docs/pixels.md, "Speed"): the scale is chosen
here once per frame (:func:`det_scale`) and applied to windows cut from it too,
the image is resized once and normalised in one OpenCV call, and recognition
runs only when asked. One engine per process and thread count, created on first
use (a model load takes about a second).
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dicomcloak.pixels.model import Rect, TextBox
from dicomcloak.pixels.ocr.base import SMALL_IMAGE, Image, Shape, backend_missing, scale_back

__all__ = ["INSTALL", "RapidOcrBackend", "det_scale"]

INSTALL = "pip install --no-deps rapidocr-onnxruntime==1.4.4"
#: The detection model inside the wheel (the path of its ``config.yaml``).
DET_MODEL = "models/ch_PP-OCRv4_det_infer.onnx"
#: Detection boxes are kept above the library's own threshold (0.5); a detection-only
#: run has no recognition score, so its boxes carry this value.
DETECTED = 0.5
#: The detector sees a frame enlarged until its shorter side is this long (RapidOCR's
#: ``limit_side_len`` with ``limit_type: min``), ...
MIN_SIDE = 736
#: ... by no more than this factor (a 256 x 1024 strip would otherwise be read at 736 x 2944; 2.5
#: keeps every PHI box of the synthetic set that 2.9 finds, 2.0 loses some), ...
MAX_FACTOR = 2.5
#: ... and frames longer than this are reduced to it (RapidOCR's ``max_side_len``).
MAX_SIDE = 2000
#: The network needs sides that are multiples of this.
_STRIDE = 32


def det_scale(shape: Shape) -> float:
    """The factor by which a frame of ``shape`` is enlarged (or reduced) for detection."""
    rows, cols = shape[0], shape[1]
    if max(rows, cols) > MAX_SIDE:
        return MAX_SIDE / max(rows, cols)
    factor = max(MIN_SIDE / max(1, min(rows, cols)), 2.0 if max(rows, cols) < SMALL_IMAGE else 1.0)
    return max(1.0, min(factor, MAX_FACTOR))


@cache
def _module() -> Any:
    try:
        return importlib.import_module("rapidocr_onnxruntime")
    except ImportError:
        raise backend_missing("rapidocr-onnxruntime", INSTALL) from None


@cache
def _engine(threads: int) -> Any:
    """The process's RapidOCR engine with ``threads`` intra-op threads (0: onnxruntime's, every core)."""
    engine = _module().RapidOCR(intra_op_num_threads=threads or -1, inter_op_num_threads=1,
                                print_verbose=False)
    engine.text_det.infer.session = _arena_session(DET_MODEL, threads)
    return engine


def _arena_session(model: str, threads: int) -> Any:
    """The detector's session again, with onnxruntime's memory arena, which RapidOCR turns off.

    The detector's tensors are large (tens of MB for a frame): without the arena each run
    allocates and first-touches them afresh, about a fifth of its time (docs/benchmarks.md).
    """
    onnxruntime = importlib.import_module("onnxruntime")  # RapidOCR's own dependency; untyped
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    path = Path(_module().__file__).parent / model
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _sized(image: Image, factor: float) -> NDArray[np.uint8]:
    """``image`` as 3-channel uint8, resized by ``factor`` to sides that are multiples of the stride."""
    import cv2

    rows, cols = image.shape[0], image.shape[1]
    size = (max(_STRIDE, round(cols * factor / _STRIDE) * _STRIDE),
            max(_STRIDE, round(rows * factor / _STRIDE) * _STRIDE))
    colour = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.asarray(cv2.resize(colour, size, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


def _polygons(engine: Any, big: NDArray[np.uint8]) -> list[Any]:
    """Text polygons on ``big``, as the library's detector finds them, top to bottom, left to right."""
    import cv2

    # (x - 127.5) / 127.5: the detector's mean 0.5 and std 0.5 on 0..1 values, NCHW float32.
    blob = cv2.dnn.blobFromImage(big, scalefactor=1 / 127.5, mean=(127.5, 127.5, 127.5))
    detector = engine.text_det
    boxes, _ = detector.postprocess_op(detector.infer(blob)[0], big.shape[:2])
    boxes = detector.filter_tag_det_res(boxes, big.shape[:2])
    return list(engine.sorted_boxes(boxes)) if len(boxes) else []


def _read(engine: Any, big: NDArray[np.uint8], polygons: list[Any]) -> list[tuple[Any, str, float]]:
    """Recognise each polygon's text; keep those read above the library's ``text_score``."""
    if not polygons:
        return []
    read, _ = engine.text_rec(engine.get_crop_img_list(big, polygons))
    pairs = zip(polygons, read, strict=True)
    return [(points, str(text), float(score)) for points, (text, score, *_) in pairs
            if float(score) >= engine.text_score]


def _rect(points: Any) -> Rect:
    xs, ys = points[:, 0], points[:, 1]
    return Rect(top=int(ys.min()), left=int(xs.min()), bottom=int(ys.max()) + 1, right=int(xs.max()) + 1)


class RapidOcrBackend:
    """:class:`~dicomcloak.pixels.ocr.base.OcrBackend` over RapidOCR (the default).

    ``threads`` is onnxruntime's intra-op thread count: 1 when several worker
    processes run at once (one per core), 0 (every core) when one process runs.
    """

    name = "rapidocr"

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads
        _engine(threads)  # fail early, with the install hint, when the library is absent

    def detect(self, image: Image, *, recognise: bool, frame_shape: Shape | None = None) -> list[TextBox]:
        """Detect (and, when asked, recognise) text; orientation classification is not needed."""
        engine = _engine(self.threads)
        big = _sized(image, det_scale(frame_shape or image.shape))
        polygons = _polygons(engine, big)
        found = _read(engine, big, polygons) if recognise else [(p, None, DETECTED) for p in polygons]
        factor = (big.shape[0] / image.shape[0], big.shape[1] / image.shape[1])
        return [
            TextBox(rect=scale_back(_rect(np.asarray(points)), factor, image.shape), text=text, score=score,
                    source=self.name)
            for points, text, score in found
        ]

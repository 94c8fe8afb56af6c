"""Tesseract back-end (Debian ``tesseract-ocr`` + ``tesseract-ocr-eng``, through pytesseract).

The alternative to RapidOCR: its models come from a Debian package, not a
wheel. Tesseract has no detection-only mode, so the text is always read; word
boxes are merged into one box per line (block, paragraph and line numbers of
``image_to_data``), because burned-in annotations are written in lines and a
name is split into words. Page segmentation mode 11 (sparse text) finds text
scattered in corners, as annotations are.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from typing import Any

from dicomcloak.pixels.model import Rect, TextBox
from dicomcloak.pixels.ocr.base import Image, Shape, backend_missing, scale_back, upscaled

__all__ = ["INSTALL", "TesseractBackend"]

INSTALL = "apt-get install tesseract-ocr tesseract-ocr-eng && pip install pytesseract==0.3.13"
_CONFIG = "--psm 11 --oem 1"
#: Words read with less confidence (0-100), or without a letter or digit, are texture, not text.
_MIN_CONFIDENCE = 30
_Word = tuple[Rect, str, float]


@cache
def _pytesseract() -> Any:
    try:
        module = importlib.import_module("pytesseract")
        module.get_tesseract_version()
    except (ImportError, OSError):  # pytesseract's TesseractNotFoundError is an OSError
        raise backend_missing("tesseract (with pytesseract)", INSTALL) from None
    return module


def _words(data: dict[str, list[Any]]) -> dict[tuple[int, int, int], list[_Word]]:
    lines: dict[tuple[int, int, int], list[_Word]] = defaultdict(list)
    for i, text in enumerate(data["text"]):
        confidence = float(data["conf"][i])
        if confidence < _MIN_CONFIDENCE or not any(char.isalnum() for char in str(text)):
            continue
        top, left = int(data["top"][i]), int(data["left"][i])
        rect = Rect(top, left, top + int(data["height"][i]), left + int(data["width"][i]))
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        lines[key].append((rect, str(text).strip(), confidence / 100))
    return lines


def _line(words: Iterable[_Word]) -> _Word:
    ordered = sorted(words, key=lambda word: word[0].left)
    rects = [word[0] for word in ordered]
    rect = Rect(
        min(r.top for r in rects), min(r.left for r in rects),
        max(r.bottom for r in rects), max(r.right for r in rects),
    )
    return rect, " ".join(word[1] for word in ordered), min(word[2] for word in ordered)


class TesseractBackend:
    """:class:`~dicomcloak.pixels.ocr.base.OcrBackend` over Tesseract: one box per line of words."""

    name = "tesseract"

    def __init__(self, threads: int = 0) -> None:
        del threads  # one tesseract process per call; its own threads are OMP_THREAD_LIMIT's
        _pytesseract()  # fail early, with the install hint, when tesseract is absent

    def detect(self, image: Image, *, recognise: bool, frame_shape: Shape | None = None) -> list[TextBox]:
        """Read every line of text (``recognise`` is moot: Tesseract cannot detect without reading)."""
        big, factor = upscaled(image, frame_shape)
        module = _pytesseract()
        data = module.image_to_data(big, config=_CONFIG, output_type=module.Output.DICT)
        return [
            TextBox(rect=scale_back(rect, factor, image.shape), text=text, score=score, source=self.name)
            for rect, text, score in (_line(words) for words in _words(data).values())
        ]

"""The OCR back-end Protocol and what every back-end shares: upscaling small images, mapping boxes back.

A back-end turns one 8-bit display image (rows x columns, gray or RGB) into
:class:`~dicomcloak.pixels.model.TextBox` values in that image's pixel
coordinates. Recognition is optional: ``all-text`` redacts whatever is
detected and needs no text, which roughly halves the time per image.

``frame_shape`` says that the image is a window cut out of a larger frame
(the verifying pass reads the neighbourhood of what it blanked, not the
whole frame again): the back-end then works at the scale it would use for
the whole frame, so that text looks the same size to its models in both.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from dicomcloak.errors import ConfigError
from dicomcloak.pixels.model import Rect, TextBox

__all__ = ["SMALL_IMAGE", "OcrBackend", "backend_missing", "scale_back", "upscaled"]

#: Images whose longer side is below this are upscaled 2x before OCR: 10 px glyphs
#: are under what the detection and recognition models were trained on.
SMALL_IMAGE = 600

Image = NDArray[np.uint8]
#: Rows and columns of a frame.
Shape = tuple[int, ...]


@runtime_checkable
class OcrBackend(Protocol):
    """Find text in an 8-bit image; ``recognise`` asks for the text too (else ``TextBox.text`` is None)."""

    name: str

    def detect(self, image: Image, *, recognise: bool, frame_shape: Shape | None = None) -> list[TextBox]:
        """Return the text regions of ``image`` (H x W or H x W x 3, uint8), in its coordinates.

        ``frame_shape``: ``image`` is part of a frame of that shape; scale it as that frame.
        """
        ...


def upscaled(image: Image, frame_shape: Shape | None = None) -> tuple[Image, int]:
    """``image`` enlarged 2x (pixel repetition) when it (or its frame) is small, with the factor."""
    if max((frame_shape or image.shape)[:2]) >= SMALL_IMAGE:
        return image, 1
    return np.repeat(np.repeat(image, 2, axis=0), 2, axis=1), 2


def scale_back(rect: Rect, factor: float | tuple[float, float], shape: Shape) -> Rect:
    """``rect`` found on an image enlarged by ``factor`` (or by (rows, columns) factors), clipped."""
    down, across = factor if isinstance(factor, tuple) else (factor, factor)
    rows, cols = shape[0], shape[1]
    return Rect(
        top=max(0, int(rect.top // down)),
        left=max(0, int(rect.left // across)),
        bottom=min(rows, -int(-rect.bottom // down)),
        right=min(cols, -int(-rect.right // across)),
    )


def backend_missing(library: str, install: str) -> ConfigError:
    """The typed error for an OCR library that is not installed, with the exact command that installs it."""
    return ConfigError(
        f"the OCR library {library} is not installed",
        reference="ocr-backend-missing",
        hint=f"install it with: {install}",
    )

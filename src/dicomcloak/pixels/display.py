"""One frame as an 8-bit display image, as a person would see it on a viewer (for OCR and thumbnails).

Monochrome frames go through the Modality LUT and the first VOI window or VOI
LUT of the header (PS3.3 C.11.1, C.11.2), else their own minimum and maximum;
MONOCHROME1 is inverted (PS3.3 C.7.6.3.1.2). Palette colour is looked up
(PS3.3 C.7.6.3.1.5); colour frames are RGB already (:func:`decode
<dicomcloak.pixels.frames.decode>` converts YBR). Gray output weighs RGB as
ITU-R BT.601 luma.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from pydicom.dataset import Dataset

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["to_uint8"]

_LUMA = np.array([0.299, 0.587, 0.114])


def to_uint8(
    frame: NDArray[np.generic], ds: Dataset | None = None, *, gray: bool = True
) -> NDArray[np.uint8]:
    """``frame`` (rows, columns[, 3]) of ``ds`` as uint8: gray (rows, columns), or RGB if not ``gray``.

    Without ``ds`` the frame's own range is stretched and nothing is looked up.
    """
    photometric = str(ds.get("PhotometricInterpretation", "")) if ds is not None else ""
    if photometric == "PALETTE COLOR" and ds is not None:
        image = _eight_bits(_palette(frame, ds))
    elif frame.ndim == 3:
        image = _eight_bits(frame)
    else:
        image = _stretch(_windowed(frame, ds))
        if photometric == "MONOCHROME1":
            image = 255 - image
    if image.ndim == 3 and gray:
        luma: NDArray[np.float64] = image @ _LUMA
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)
    if image.ndim == 2 and not gray:
        return np.repeat(image[..., np.newaxis], 3, axis=2)
    return image


def _windowed(frame: NDArray[np.generic], ds: Dataset | None) -> NDArray[np.float64]:
    """The frame through the header's Modality LUT and VOI window; the raw values when there are none."""
    raw = frame.astype(np.float64)
    if ds is None or not _has_voi(ds):
        return raw
    from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = apply_voi_lut(apply_modality_lut(frame, ds), ds).astype(np.float64)
    except Exception:  # noqa: BLE001 - a damaged window or LUT: fall back to the frame's own range
        return raw
    return out if out.size and float(out.max()) > float(out.min()) else raw


def _has_voi(ds: Dataset) -> bool:
    return "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds)


def _palette(frame: NDArray[np.generic], ds: Dataset) -> NDArray[np.generic]:
    from pydicom.pixels.processing import apply_color_lut

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rgb: NDArray[np.generic] = apply_color_lut(frame, ds)
    except Exception:  # noqa: BLE001 - a damaged palette: show the indices
        return frame
    return rgb


def _eight_bits(values: NDArray[np.generic]) -> NDArray[np.uint8]:
    """8-bit values as they are; anything else stretched."""
    if values.dtype == np.uint8:
        return np.asarray(values, dtype=np.uint8)
    return _stretch(values.astype(np.float64))


def _stretch(values: NDArray[np.float64]) -> NDArray[np.uint8]:
    """Values stretched linearly from their minimum to their maximum onto 0..255."""
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.clip(np.rint((values - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)

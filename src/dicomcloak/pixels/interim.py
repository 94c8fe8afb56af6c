"""Stand-ins for the classification (P2) and frame codec (P3) parts of issue 14, until they land.

The pipeline imports ``HeaderValues``, ``classify``, ``decode``,
``sample_indices``, ``to_uint8``, ``replace`` and ``mark_cleaned`` from this one
module, with the signatures of :mod:`dicomcloak.pixels.classify` and
:mod:`dicomcloak.pixels.frames`; merging those parts means pointing the
pipeline's imports at them and deleting this file. The rules here are the
simplest real ones: a region is PHI when its normalised text holds one of the
instance's own header values or looks like a date, a time or a long number;
frames are decoded with ``ds.pixel_array`` and written back native.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from dicomcloak.pixels.model import Verdict

__all__ = ["HeaderValues", "classify", "decode", "mark_cleaned", "replace", "sample_indices", "to_uint8"]

_KEYWORDS = (
    "PatientName", "PatientID", "AccessionNumber", "PatientBirthDate", "StudyDate", "InstitutionName",
    "ReferringPhysicianName", "OperatorsName", "PerformingPhysicianName", "OtherPatientIDs",
)
_CONFUSED = str.maketrans({"O": "0", "I": "1", "L": "1"})
_PATTERNS = (
    ("date", re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{2,4}|\d{8}|\d{1,2}[A-Z]{3}\d{2,4}|[A-Z]{3}\d{5,6}")),
    ("time", re.compile(r"\d{1,2}:\d{2}(:\d{2})?")),
    ("id", re.compile(r"\d{5,}")),
)


def normalise(text: str) -> str:
    """Upper case, letters and digits only, O/0 and I/L/1 folded (OCR confuses them)."""
    return re.sub(r"[^0-9A-Z]", "", text.upper()).translate(_CONFUSED)


def _date_forms(value: str) -> list[str]:
    if not re.fullmatch(r"\d{8}", value):
        return [value]
    y, m, d = value[:4], value[4:6], value[6:]
    return [value, m + d + y, d + m + y, m + d + y[2:], d + m + y[2:]]


@dataclass(frozen=True)
class HeaderValues:
    """Normalised identifying values of the ORIGINAL data set; never logged, never reported."""

    values: frozenset[str]

    @classmethod
    def capture(cls, ds: Dataset) -> HeaderValues:
        """Capture the values before de-identification (names split into parts)."""
        found: set[str] = set()
        for keyword in _KEYWORDS:
            raw = ds.get(keyword)
            items = raw if isinstance(raw, list | tuple) else [raw]
            for item in (str(item) for item in items if item):
                for part in re.split(r"[\^ ,]+", item) + _date_forms(item):
                    found.add(normalise(part))
        return cls(frozenset(value for value in found if len(value) >= 3))


def classify(text: str, header: HeaderValues) -> Verdict:
    """PHI when the text holds a header value, or a date, time or long-number pattern."""
    norm = normalise(text)
    for value in header.values:
        if value in norm or (len(norm) >= 4 and norm in value):
            return Verdict(True, "header", "header-value")
    for kind, pattern in _PATTERNS:
        if pattern.search(text.upper()):
            return Verdict(True, kind, f"pattern:{kind}")
    return Verdict(False, "text", "none")


def decode(ds: Dataset) -> NDArray[np.generic]:
    """Every frame, shape (frames, rows, columns[, samples]); colour as pydicom gives it (RGB)."""
    array = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return array if frames > 1 else array[np.newaxis, ...]


def sample_indices(n_frames: int, k: int) -> tuple[int, ...]:
    """First, last and evenly spaced frames, at most ``k``."""
    if n_frames <= k:
        return tuple(range(n_frames))
    return tuple(sorted({round(i * (n_frames - 1) / (k - 1)) for i in range(k)}))


def to_uint8(frame: NDArray[np.generic], ds: Dataset) -> NDArray[np.uint8]:
    """A display image for OCR: palette to RGB, gray stretched from 1st to 99.5th percentile."""
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels.processing import apply_color_lut

        rgb = apply_color_lut(frame, ds)
        return (rgb if rgb.dtype == np.uint8 else rgb / 257).astype(np.uint8)
    if frame.ndim == 3:
        wide = frame.astype(np.uint16)
        return frame.astype(np.uint8) if frame.dtype == np.uint8 else (wide >> 8).astype(np.uint8)
    values = frame.astype(np.float32)
    low, high = np.percentile(values, 1), np.percentile(values, 99.5)
    scaled = (values - low) / max(float(high - low), 1.0) * 255
    gray: NDArray[np.uint8] = np.clip(scaled, 0, 255).astype(np.uint8)
    return np.subtract(255, gray, dtype=np.uint8) if photometric == "MONOCHROME1" else gray


def replace(ds: Dataset, frames: NDArray[np.generic]) -> None:
    """Write the redacted frames back, native (Explicit VR Little Endian when the input was compressed)."""
    photometric = str(ds.PhotometricInterpretation)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        if photometric.startswith("YBR"):
            photometric = "RGB"  # ds.pixel_array converted it
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    array = frames if int(ds.get("NumberOfFrames", 1) or 1) > 1 else frames[0]
    ds.set_pixel_data(array, photometric, int(ds.BitsStored), generate_instance_uid=False)


def mark_cleaned(ds: Dataset) -> None:
    """Burned In Annotation NO (the De-identification Method Code 113101 is P3's ``mark_cleaned``)."""
    ds.BurnedInAnnotation = "NO"

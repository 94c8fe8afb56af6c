"""Which instances need their pixels cleaned, and how: ``assess(ds, settings) -> (mode, reasons)``.

PS3.3 C.7.6.1.1.5 (Burned In Annotation) says whether an image carries
identifying text in its pixels; when it is absent, the kind of image decides.
Ultrasound, secondary captures (screen grabs, dose reports, scanned
documents), endoscopy, photographs and fluoroscopy routinely show the
patient's name; a CT or MR slice does not, so ``auto`` never decodes CT or MR
without Burned In Annotation YES. Reasons are short codes (no values) for the
run report.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from dicomcloak.pixels.model import PixelMode
from dicomcloak.pixels.settings import PixelSettings

__all__ = ["ALL_TEXT_MODALITIES", "RISK_MODALITIES", "SECONDARY_CAPTURE_CLASSES", "assess", "is_at_risk"]

#: Modalities whose images carry burned-in text as a rule (DICOM PS3.3 C.7.3.1.1.1 defined terms).
RISK_MODALITIES = frozenset({"US", "SC", "XA", "RF", "ES", "OT", "DOC", "XC", "GM", "SM", "IVUS", "OP"})
#: Where annotation text is mostly device or screen text: everything found is redacted (``all-text``).
ALL_TEXT_MODALITIES = frozenset({"US", "SC", "OT", "ES", "DOC", "XC", "GM", "IVUS", "OP"})
#: Projection radiography: at risk only when a secondary capture or a derived (annotated) image.
_PROJECTION = frozenset({"CR", "DX", "MG", "IO", "PX", "XA", "RF"})
#: Secondary Capture SOP classes (PS3.4 B.5): screen captures, dose screens, scanned documents.
SECONDARY_CAPTURE_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
        "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
        "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
        "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
        "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
    }
)
_PIXEL_DATA = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float, Double Float


def _image_type(ds: Dataset) -> set[str]:
    value = ds.get("ImageType", [])
    values = [value] if isinstance(value, str) else list(value or [])
    return {str(item).strip().upper() for item in values}


def is_at_risk(ds: Dataset) -> tuple[str, ...]:
    """Why ``ds`` may carry burned-in text (empty: not at risk), from its header alone."""
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if burned == "YES":
        return ("burned-in-annotation-yes",)
    if burned == "NO":
        return ()
    modality = str(ds.get("Modality", "") or "").strip().upper()
    reasons = []
    if str(ds.get("SOPClassUID", "")) in SECONDARY_CAPTURE_CLASSES:
        reasons.append("secondary-capture")
    if modality in RISK_MODALITIES:
        reasons.append(f"modality-{modality.lower()}")
    if modality in _PROJECTION and _image_type(ds) & {"SECONDARY", "DERIVED"}:
        reasons.append("derived-projection-image")
    return tuple(reasons)


def _default_mode(ds: Dataset, reasons: tuple[str, ...]) -> PixelMode:
    """``all-text`` where text is mostly screen text; ``phi`` elsewhere (only PHI redacted)."""
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if "secondary-capture" in reasons or modality in ALL_TEXT_MODALITIES:
        return PixelMode.ALL_TEXT
    if modality in _PROJECTION and "SECONDARY" in _image_type(ds):
        return PixelMode.ALL_TEXT
    return PixelMode.PHI


def _configured(ds: Dataset, settings: PixelSettings) -> PixelMode | None:
    sop_class = settings.sop_class.get(str(ds.get("SOPClassUID", "")))
    if sop_class is not None:
        return sop_class
    return settings.modality.get(str(ds.get("Modality", "") or "").strip().upper())


def assess(ds: Dataset, settings: PixelSettings) -> tuple[PixelMode, tuple[str, ...]]:
    """The mode for ``ds`` (never ``auto``) and the reasons, from the header only (nothing decoded).

    ``off`` means the pixels are not examined: no Pixel Data, ``--pixels off``,
    or ``auto`` on an image not at risk. Under ``auto`` the site policy's
    ``[pixels.sop_class]`` then ``[pixels.modality]`` choice wins; otherwise the
    built-in defaults (docs/pixels.md, "Risk").
    """
    if not any(tag in ds for tag in _PIXEL_DATA):
        return PixelMode.OFF, ("no-pixel-data",)
    reasons = is_at_risk(ds)
    if settings.mode is not PixelMode.AUTO:
        return settings.mode, (f"mode-{settings.mode.value}", *reasons)
    configured = _configured(ds, settings)
    if configured is not None and configured is not PixelMode.AUTO:
        return configured, ("site-policy", *reasons)
    if not reasons:
        return PixelMode.OFF, ("not-at-risk",)
    return _default_mode(ds, reasons), reasons

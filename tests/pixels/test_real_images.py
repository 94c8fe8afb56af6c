"""Real burned-in text: Presidio's CT (TCIA pseudo-PHI) and deid-data's ultrasounds; the known strings go."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomcloak.pixels import pipeline
from dicomcloak.pixels.classify import HeaderValues
from dicomcloak.pixels.classify.normalise import compact
from dicomcloak.pixels.display import to_uint8
from dicomcloak.pixels.frames import decode
from dicomcloak.pixels.model import PixelMode, PixelStatus
from dicomcloak.pixels.ocr import OcrBackend
from dicomcloak.pixels.settings import PixelSettings

PRESIDIO_CT = Path(__file__).parents[1] / "data" / "presidio" / "2_ORIGINAL.dcm"
ULTRASOUNDS = Path(str(files("deid_data"))) / "data" / "ultrasounds"


def _normalise(text: str) -> str:
    """Letters and digits only, OCR look-alikes folded (the classifier's own folding)."""
    return compact(text)


def _read_back(ds: object, backend: OcrBackend) -> str:
    frames = decode(ds)  # type: ignore[arg-type]
    return " ".join(box.text or "" for box in backend.detect(to_uint8(frames[0], ds), recognise=True))  # type: ignore[arg-type]


def _clean(path: Path, backend: OcrBackend, settings: PixelSettings, needles: list[str]) -> None:
    ds = dcmread(path)
    before = _normalise(_read_back(ds, backend))
    assert all(_normalise(needle) in before for needle in needles)  # the text is there to start with
    result = pipeline.clean(ds, HeaderValues.capture(ds), settings, backend)
    assert result.status is PixelStatus.CLEANED, result.reason
    text = _normalise(_read_back(ds, backend))
    assert not [needle for needle in needles if _normalise(needle) in text]


def test_presidio_ct_under_phi(rapid: OcrBackend) -> None:
    _clean(PRESIDIO_CT, rapid, PixelSettings(mode=PixelMode.PHI), ["KAUFMAN", "SCOTT", "07.22.1943"])


@pytest.mark.parametrize(
    ("name", "needles"),
    [("GREYSCALE_IMAGE.dcm", ["ZZZ", "08/29/1951", "CCHS"]), ("RGB_IMAGE.dcm", ["DOWNTIME", "CLEVELAND"])],
)
def test_deid_data_ultrasound_under_auto(rapid: OcrBackend, name: str, needles: list[str]) -> None:
    _clean(ULTRASOUNDS / name, rapid, PixelSettings(), needles)

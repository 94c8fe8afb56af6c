"""Risk assessment on real files: which instances the pixel stage examines, and in which mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dicomcloak.pixels.model import PixelMode
from dicomcloak.pixels.risk import assess
from dicomcloak.pixels.settings import PixelSettings, parse_pixels

PRESIDIO_CT = Path(__file__).parents[1] / "data" / "presidio" / "2_ORIGINAL.dcm"


def _read(name: str) -> Dataset:
    return dcmread(str(get_testdata_file(name)))


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtdose.dcm"])
def test_ct_mr_without_burned_in_yes_are_not_examined(name: str) -> None:
    assert assess(_read(name), PixelSettings()) == (PixelMode.OFF, ("not-at-risk",))


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "US1_J2KR.dcm", "examples_palette.dcm", "OBXXXX1A.dcm"])
def test_ultrasound_is_all_text(name: str) -> None:
    assert assess(_read(name), PixelSettings()) == (PixelMode.ALL_TEXT, ("modality-us",))


def test_secondary_capture_is_all_text() -> None:
    mode, reasons = assess(_read("SC_rgb.dcm"), PixelSettings())
    assert mode is PixelMode.ALL_TEXT and "secondary-capture" in reasons


def test_burned_in_yes_on_ct_is_phi() -> None:
    ds = _read("CT_small.dcm")
    ds.BurnedInAnnotation = "YES"
    assert assess(ds, PixelSettings()) == (PixelMode.PHI, ("burned-in-annotation-yes",))


def test_burned_in_no_is_trusted() -> None:
    ds = _read("US1_UNCR.dcm")
    ds.BurnedInAnnotation = "NO"
    assert assess(ds, PixelSettings()) == (PixelMode.OFF, ("not-at-risk",))


def test_derived_projection_image_is_at_risk() -> None:
    ds = _read("CT_small.dcm")
    ds.Modality, ds.ImageType = "CR", ["DERIVED", "PRIMARY"]
    assert assess(ds, PixelSettings()) == (PixelMode.PHI, ("derived-projection-image",))
    ds.ImageType = ["DERIVED", "SECONDARY"]
    assert assess(ds, PixelSettings())[0] is PixelMode.ALL_TEXT


def test_no_pixel_data_is_never_examined() -> None:
    ds = dcmread(str(get_testdata_file("US1_UNCR.dcm")), stop_before_pixels=True)
    assert assess(ds, PixelSettings(mode=PixelMode.ALL_TEXT)) == (PixelMode.OFF, ("no-pixel-data",))


def test_forced_mode_applies_to_every_image() -> None:
    mode, reasons = assess(_read("CT_small.dcm"), PixelSettings(mode=PixelMode.PHI))
    assert mode is PixelMode.PHI and reasons == ("mode-phi",)
    assert assess(_read("US1_UNCR.dcm"), PixelSettings(mode=PixelMode.OFF))[0] is PixelMode.OFF


def test_site_policy_modality_and_sop_class_win_under_auto() -> None:
    settings = parse_pixels(
        {"modality": {"ct": "phi", "US": "off"}, "sop_class": {"1.2.840.10008.5.1.4.1.1.7": "quarantine"}}
    )
    assert assess(dcmread(PRESIDIO_CT), settings) == (PixelMode.PHI, ("site-policy",))
    assert assess(_read("US1_UNCR.dcm"), settings)[0] is PixelMode.OFF
    assert assess(_read("SC_rgb.dcm"), settings)[0] is PixelMode.QUARANTINE

"""mark_cleaned: Burned In Annotation NO and CID 7050 113101 on a de-identified instance, only when called."""

from __future__ import annotations

from pydicom import dcmread
from pydicom.filebase import DicomBytesIO

from dicomcloak.api import Deidentifier
from dicomcloak.io.writer import encode_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.pixels.frames import mark_cleaned
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Option
from dicomcloak.testing.pixelcases import draw_box, load

KEY = ProjectKey.generate(ephemeral=True)


def _codes(ds: object) -> list[str]:
    return [item.CodeValue for item in getattr(ds, "DeidentificationMethodCodeSequence", [])]


def test_cleaned_pixels_are_marked() -> None:
    _, source = load("OBXXXX1A.dcm")  # an ultrasound
    outcome = Deidentifier(Policy(options=frozenset({Option.CLEAN_GRAPHICS})), KEY).deidentify(source)
    draw_box(outcome.dataset)
    mark_cleaned(outcome.dataset)
    mark_cleaned(outcome.dataset)  # idempotent
    back = dcmread(DicomBytesIO(encode_dataset(outcome.dataset)))
    assert back.BurnedInAnnotation == "NO"
    assert _codes(back) == ["113100", "113103", "113101"]
    item = back.DeidentificationMethodCodeSequence[-1]
    assert (item.CodingSchemeDesignator, item.CodeMeaning) == ("DCM", "Clean Pixel Data Option")
    assert list(back.DeidentificationMethod).count("Clean Pixel Data Option") == 1
    assert back.PatientIdentityRemoved == "YES"


def test_pixels_not_cleaned_keep_their_truthful_value() -> None:
    _, source = load("OBXXXX1A.dcm")
    source.BurnedInAnnotation = "YES"
    outcome = Deidentifier(Policy(), KEY).deidentify(source)
    back = dcmread(DicomBytesIO(encode_dataset(outcome.dataset)))
    assert back.BurnedInAnnotation == "YES" and "113101" not in _codes(back)


def test_the_code_sequence_is_made_when_the_profile_was_weakened() -> None:
    _, source = load("CT_small.dcm")
    outcome = Deidentifier(Policy(), KEY).deidentify(source)
    del outcome.dataset.DeidentificationMethodCodeSequence  # as markers.py leaves it for a weakened profile
    mark_cleaned(outcome.dataset)
    back = dcmread(DicomBytesIO(encode_dataset(outcome.dataset)))
    assert _codes(back) == ["113101"] and back.BurnedInAnnotation == "NO"

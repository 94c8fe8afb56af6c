"""Per-instance identity facts: the patient key, its pseudonym and date offset; HIPAA age rules.

architecture.md decision 2: the patient key is Issuer of Patient ID + Patient ID; an
instance with an empty Patient ID falls back to its Study Instance UID, so
unrelated patients without IDs are never merged into one pseudonym.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pydicom.dataset import Dataset

from dicomcloak.engine.outcome import Change
from dicomcloak.engine.values import text_of
from dicomcloak.keys.pseudonyms import DateShift, Pseudonymizer

__all__ = ["Identity", "apply_age_rules", "identify", "patient_pseudonym"]

_PATIENT_AGE = 0x00101010
_BIRTH_DATE = 0x00100030
_REFERENCE_DATES = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
_HIPAA_AGE = 90  # HIPAA Safe Harbor 164.514(b)(2)(i)(C): ages over 89 aggregated as 90+


@dataclass(frozen=True, slots=True)
class Identity:
    """What the engine needs to know about the instance's patient and SOP class."""

    patient_key: str
    patient_pseudonym: str
    shift: DateShift
    sop_class_uid: str


_TAGS = {
    "PatientID": 0x00100020, "IssuerOfPatientID": 0x00100021, "StudyInstanceUID": 0x0020000D,
    "SOPClassUID": 0x00080016, "PatientAge": _PATIENT_AGE, "PatientBirthDate": _BIRTH_DATE,
    "StudyDate": 0x00080020, "SeriesDate": 0x00080021, "AcquisitionDate": 0x00080022,
    "ContentDate": 0x00080023,
}


def _text(dataset: Dataset, keyword: str) -> str:
    """A top-level text value, decoded without converting (or caching in) the dataset."""
    return text_of(dataset, _TAGS[keyword])


def identify(dataset: Dataset, pseudonymizer: Pseudonymizer) -> Identity:
    """Derive the patient key, pseudonym and date shift of ``dataset`` (top level)."""
    patient_id = _text(dataset, "PatientID")
    if patient_id:
        key = f"pid:{_text(dataset, 'IssuerOfPatientID')}\x00{patient_id}"
    else:
        key = f"study:{_text(dataset, 'StudyInstanceUID')}"
    return Identity(
        patient_key=key,
        patient_pseudonym=pseudonymizer.patient(key),
        shift=pseudonymizer.date_shift(key),
        sop_class_uid=_text(dataset, "SOPClassUID"),
    )


def patient_pseudonym(pseudonymizer: Pseudonymizer, patient_id: str, issuer: str = "") -> str:
    """The patient pseudonym the engine gives an original Patient ID (and Issuer of Patient ID).

    :func:`identify` on a data set holding only these two values: the same
    pseudonym as in the files (``vault lookup --patient-id``, docs/vault.md).
    """
    probe = Dataset()
    probe.PatientID = patient_id
    if issuer:
        probe.IssuerOfPatientID = issuer
    return identify(probe, pseudonymizer).patient_pseudonym


def _age_years(text: str) -> int | None:
    match = re.fullmatch(r"(\d{3})([DWMY])", text.strip())
    if match is None:
        return None
    per_year = {"D": 365, "W": 52, "M": 12, "Y": 1}[match[2]]
    return int(match[1]) // per_year


def _date(text: str) -> dt.date | None:
    text = text.strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def apply_age_rules(out: Dataset, changes: list[Change]) -> None:
    """Aggregate ages over 89 as 90 (HIPAA Safe Harbor), in Patient's Age and Birth Date."""
    age = _age_years(_text(out, "PatientAge")) if _PATIENT_AGE in out._dict else None  # noqa: SLF001
    if age is not None and age >= _HIPAA_AGE:
        out.PatientAge = f"{_HIPAA_AGE:03d}Y"
        changes.append(Change((_PATIENT_AGE,), "C", "default:hipaa-age-over-89"))
    birth = _date(_text(out, "PatientBirthDate")) if _BIRTH_DATE in out._dict else None  # noqa: SLF001
    reference = next((_date(_text(out, k)) for k in _REFERENCE_DATES if _text(out, k)), None)
    if birth is None or reference is None:
        return
    try:
        ninety = reference.replace(year=reference.year - _HIPAA_AGE)
    except ValueError:  # 29 February
        ninety = reference.replace(year=reference.year - _HIPAA_AGE, day=28)
    if birth < ninety:
        out.PatientBirthDate = ninety.strftime("%Y%m%d")
        changes.append(Change((_BIRTH_DATE,), "C", "default:hipaa-age-over-89"))

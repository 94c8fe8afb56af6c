"""The candidates of the beyond-table review: ``python -m dicomcloak.standard.generate --review``.

``data/beyond-table.csv`` was chosen by reading, in PS3.3, the definition of
every public attribute that Table E.1-1 does not list among: the members (at
any depth) of the modules below, taken from the installed highdicom's copy of
PS3.3; the attributes of the data dictionary groups below (pydicom's
dictionary, retired ones included); and every person-name (PN) or URI (UR)
attribute. This module lists the candidates neither list names yet, so a new
edition of the standard, of highdicom or of pydicom shows what is left to
review (docs/policy.md, "Beyond the table", says why the reviewed ones that
are not listed carry no identity).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources

from pydicom._dicom_dict import DicomDictionary
from pydicom.datadict import tag_for_keyword

from dicomcloak.standard.beyond import beyond_rows
from dicomcloak.standard.table import table_rows

__all__ = ["REVIEWED_GROUPS", "REVIEWED_MODULES", "candidates", "review_text"]

#: PS3.3 modules (highdicom keys) of the Patient, Clinical Trial, Study, Visit, Procedure, Scheduling IEs.
REVIEWED_MODULES = (
    "patient", "patient-identification", "patient-demographic", "patient-medical", "patient-relationship",
    "clinical-trial-subject", "clinical-trial-study", "clinical-trial-series", "general-study",
    "patient-study", "visit-identification", "visit-status", "visit-admission", "visit-relationship",
    "imaging-service-request", "requested-procedure", "scheduled-procedure-step",
    "performed-procedure-step-information", "performed-procedure-step-relationship",
    "unified-procedure-step-scheduled-procedure-information", "unified-procedure-step-relationship",
    "unified-procedure-step-performed-procedure-information",
    "unified-procedure-step-progress-information",
)
#: Data dictionary groups reviewed whole: Patient, Clinical Trial, Study, Visit, Procedure.
REVIEWED_GROUPS = (0x0010, 0x0012, 0x0032, 0x0038, 0x0040)
_NAME_VRS = frozenset({"PN", "UR"})


def _listed() -> frozenset[int]:
    tabled = {
        int(row.tag[1:5], 16) << 16 | int(row.tag[6:10], 16)
        for row in table_rows()
        if len(row.tag) == 11 and "x" not in row.tag
    }
    return frozenset(tabled | {row.tag for row in beyond_rows()})


@cache
def _module_tags() -> frozenset[int]:
    """Tags of every attribute, at any depth, of the reviewed modules (the 22 MB map is read once)."""
    raw = resources.files("highdicom").joinpath("_standard", "module_attribute_map.json").read_bytes()
    modules = json.loads(raw)
    keywords = {attribute["keyword"] for module in REVIEWED_MODULES for attribute in modules.get(module, [])}
    return frozenset(tag for keyword in keywords if (tag := tag_for_keyword(keyword)) is not None)


def _dictionary_tags() -> Iterator[int]:
    for tag, entry in DicomDictionary.items():
        if tag >> 16 in REVIEWED_GROUPS or entry[0] in _NAME_VRS:
            yield tag


def candidates() -> list[int]:
    """Tags of reviewed attributes that neither Table E.1-1 nor the beyond-table list names, sorted."""
    listed = _listed()
    return sorted({tag for tag in [*_module_tags(), *_dictionary_tags()] if tag not in listed})


def review_text() -> str:
    """One line per candidate: tag, VR, retired mark and keyword."""
    lines = []
    for tag in candidates():
        vr, _, _, retired, keyword = DicomDictionary[tag]
        lines.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X})  {vr:<8}  {retired or '':<7}  {keyword}")
    return "\n".join(lines) + "\n"

"""Replacement values: D dummies valid for their VR, keyed identifiers, and which UIDs are kept.

PS3.15 E.1.1: D is "a non-zero length value that may be a dummy value and
consistent with the VR". Each dummy here validates for its VR (a DA that is a
real date, a DS that parses, lengths within the VR's limits).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

__all__ = [
    "DEFINITION_UID_KEYWORDS",
    "decode",
    "dictionary_vr",
    "dummy_value",
    "is_identifier_keyword",
    "is_single_byte",
    "is_well_known_uid",
    "max_length",
    "text_of",
]

#: Dummy values by VR (PS3.5 Table 6.2-1); binary VRs get one zero of their width.
_DUMMIES: dict[str, object] = {
    "AE": "ANONYMOUS",
    "AS": "000D",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UR": "urn:dicomcloak:removed",
    "UT": "ANONYMIZED",
    "AT": 0,
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "SV": 0,
    "UL": 0,
    "US": 0,
    "UV": 0,
    "OB": b"\x00\x00",
    "OD": b"\x00" * 8,
    "OF": b"\x00" * 4,
    "OL": b"\x00" * 4,
    "OV": b"\x00" * 8,
    "OW": b"\x00\x00",
    "UN": b"\x00\x00",
}

# PS3.5 Table 6.2-1 maximum lengths (characters) of the short string VRs.
_MAX_LENGTH = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "UI": 64, "DS": 16, "IS": 12}

#: UI attributes that name a definition (class, syntax, scheme), never an instance:
#: their values are kept even when they are not in the UID registry.
DEFINITION_UID_KEYWORDS = frozenset({
    "SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID",
    "AffectedSOPClassUID", "RequestedSOPClassUID", "ReferencedSOPClassUIDInFile",
    "ReferencedTransferSyntaxUIDInFile", "RelatedGeneralSOPClassUID", "OriginalSpecializedSOPClassUID",
    "ImplementationClassUID", "CodingSchemeUID", "ContextUID", "MappingResourceUID",
    "ContextGroupExtensionCreatorUID", "PrivateInformationCreatorUID",
    "TemplateExtensionCreatorUID", "TemplateExtensionOrganizationUID",
})


def dummy_value(vr: str) -> object:
    """The D dummy for ``vr`` (a value that validates for the VR)."""
    return _DUMMIES.get(vr, b"\x00\x00")


def max_length(vr: str, default: int = 64) -> int:
    """Maximum characters of a short string VR (PS3.5 Table 6.2-1)."""
    return _MAX_LENGTH.get(vr, default)


@cache
def is_identifier_keyword(tag: int) -> bool:
    """True for ID-like attributes (…ID, …IDs, …Number): replaced by keyed IDs, not emptied.

    Keyed IDs keep the links a recipient needs (the same accession number in
    every file of a study, in nested Request Attributes too) without the value.
    """
    keyword = keyword_for_tag(tag)
    return keyword.endswith(("ID", "IDs", "Number", "Numbers")) and keyword != "PatientID"


def is_well_known_uid(value: str) -> bool:
    """True for UIDs in the DICOM UID registry (SOP classes, transfer syntaxes, ...)."""
    return value in UID_dictionary


def element_vr(elem: object) -> str:
    """The element's VR; from the data dictionary for implicit VR raw elements ("UN" if unknown)."""
    vr = getattr(elem, "VR", None)
    if vr:
        return str(vr)
    return dictionary_vr(int(getattr(elem, "tag")))  # noqa: B009


@cache
def dictionary_vr(tag: int) -> str:
    """The data dictionary's VR of a public tag ("UN" when unknown)."""
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"


# pydicom's Python codec names for the default repertoire and ISO_IR 100 (Latin-1).
_SINGLE_BYTE = frozenset({"iso8859", "latin_1"})


def is_single_byte(charset: object) -> bool:
    """True when values decode as Latin-1: default repertoire or ISO_IR 100 (PS3.5 6.1.2.3)."""
    if isinstance(charset, str):
        return charset in _SINGLE_BYTE
    return isinstance(charset, list) and len(charset) == 1 and charset[0] in _SINGLE_BYTE


_FAST_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UI", "UC", "UR", "UT"}
)


def decode(elem: DataElement | RawDataElement, vr: str, source: Dataset, charset: Any) -> Any:
    """Decode a value without caching it in the input; text in single-byte sets decoded directly.

    Single-byte character sets (default repertoire, ISO_IR 100) are Latin-1
    (PS3.5 6.1.2.3): decoding them here skips pydicom's per-element machinery.
    Multi-valued text comes back as a list.
    """
    if not isinstance(elem, RawDataElement):
        return elem.value
    raw = elem.value
    if vr in _FAST_VRS and isinstance(raw, bytes) and is_single_byte(charset):
        text = raw.decode("latin-1").rstrip(" \x00")
        if vr in ("LT", "ST", "UT", "UR"):
            return text  # no multiplicity, backslash allowed (PS3.5 6.2)
        parts = [part.strip(" \x00") for part in text.split("\\")]
        return parts if len(parts) > 1 else parts[0]
    return convert_raw_data_element(elem, encoding=charset, ds=source).value


def text_of(dataset: Dataset, keyword_tag: int, charset: Any = None) -> str:
    """The stripped text value of a top-level element ("" when absent), decoded without caching."""
    elem = dataset._dict.get(BaseTag(keyword_tag))  # noqa: SLF001 - raw access, see deidentify._process
    if elem is None:
        return ""
    if charset is None:
        charset = dataset.original_character_set
    value = decode(elem, element_vr(elem), dataset, charset)
    if isinstance(value, list):
        return str(value[0]).strip() if value else ""
    return "" if value is None else str(value).strip()

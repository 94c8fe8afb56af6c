"""De-identification markers (PS3.15 E.1.1, PS3.3 C.7.1.1) and the rebuilt File Meta Information."""

from __future__ import annotations

from functools import cache
from io import BytesIO
from typing import cast

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID

from dicomcloak.engine.outcome import Change
from dicomcloak.engine.values import text_of
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Option, method_codes

__all__ = ["IMPLEMENTATION_CLASS_UID", "IMPLEMENTATION_VERSION_NAME", "add_markers", "file_meta"]

#: dicomcloak's implementation class UID (2.25 arc, fixed; PS3.7 D.3.3.2).
IMPLEMENTATION_CLASS_UID = UID("2.25.227391425462858117536658405187427352370")
IMPLEMENTATION_VERSION_NAME = "DICOMCLOAK_010"
_METHOD_NAME = "dicomcloak 0.1.0 PS3.15 E.1.1 Basic Profile"


def _method_code(column: str) -> Dataset:
    code = method_codes()[column]
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme
    item.CodeMeaning = code.meaning
    return item


def _temporal_state(policy: Policy) -> str:
    # PS3.3 C.7.1.1: Longitudinal Temporal Information Modified (0028,0303).
    if Option.RETAIN_LONG_MODIFIED_DATES in policy.options:
        return "MODIFIED"
    if Option.RETAIN_LONG_FULL_DATES in policy.options:
        return "UNMODIFIED"
    return "REMOVED"


def _marker_dataset(policy: Policy) -> Dataset:
    options = [opt for opt in Option if opt in policy.options]
    markers = Dataset()
    markers.PatientIdentityRemoved = "YES"
    markers.DeidentificationMethod = [_METHOD_NAME] + [opt.value for opt in options]
    codes = [_method_code("basic_profile")] + [_method_code(opt.column) for opt in options]
    markers.DeidentificationMethodCodeSequence = Sequence(codes)
    markers.LongitudinalTemporalInformationModified = _temporal_state(policy)
    return markers


@cache
def _raw_markers(options: frozenset[Option], implicit: bool, little: bool) -> tuple[RawDataElement, ...]:
    """The marker elements encoded once per options and encoding, as immutable raw elements.

    Raw elements are shared safely between outputs (they are tuples of bytes),
    and cost nothing to build per instance.
    """
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit, little
    write_dataset(buffer, _marker_dataset(Policy(options=options, safe_private=frozenset())))
    parsed = read_dataset(BytesIO(buffer.getvalue()), implicit, little)
    elements = parsed._dict  # noqa: SLF001 - raw elements, unconverted
    return tuple(cast(RawDataElement, elements[tag]) for tag in sorted(elements))


def add_markers(out: Dataset, policy: Policy, changes: list[Change], encoding: tuple[bool, bool]) -> None:
    """Set Patient Identity Removed, the method and its CID 7050 codes, and the temporal state."""
    elements = out._dict  # noqa: SLF001 - see deidentify._process
    for elem in _raw_markers(policy.options, *encoding):
        elements[elem.tag] = elem
        changes.append(Change((int(elem.tag),), "A", "default:deidentification-marker"))


def _meta_element(tag: int, vr: str, value: str | bytes) -> RawDataElement:
    """A File Meta element, always Explicit VR Little Endian (PS3.10 7.1), padded to even length."""
    data = value if isinstance(value, bytes) else value.encode("ascii")
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    return RawDataElement(BaseTag(tag), vr, len(data), data, 0, False, True, True, False)


def file_meta(source: Dataset, out: Dataset) -> FileMetaDataset:
    """Fresh File Meta Information consistent with the de-identified dataset (PS3.10 7.1).

    Built from raw elements: nothing of the input's File Meta is carried over
    but its transfer syntax, and raw elements cost a tuple each to build.
    """
    meta = FileMetaDataset()
    elements = meta._dict  # noqa: SLF001 - values made here are valid by construction
    for tag, vr, value in (
        (0x00020001, "OB", b"\x00\x01"),
        (0x00020002, "UI", text_of(out, 0x00080016)),
        (0x00020003, "UI", text_of(out, 0x00080018)),
        (0x00020010, "UI", str(source.file_meta.TransferSyntaxUID)),
        (0x00020012, "UI", str(IMPLEMENTATION_CLASS_UID)),
        (0x00020013, "SH", IMPLEMENTATION_VERSION_NAME),
    ):
        elements[BaseTag(tag)] = _meta_element(tag, vr, value)
    return meta

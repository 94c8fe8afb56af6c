"""De-identification markers (PS3.15 E.1.1, PS3.3 C.7.1.1) and the rebuilt File Meta Information."""

from __future__ import annotations

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from dicomcloak.engine.outcome import Change
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


def add_markers(out: Dataset, policy: Policy, changes: list[Change]) -> None:
    """Set Patient Identity Removed, the method and its CID 7050 codes, and the temporal state."""
    options = [opt for opt in Option if opt in policy.options]
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = [_METHOD_NAME] + [opt.value for opt in options]
    codes = [_method_code("basic_profile")] + [_method_code(opt.column) for opt in options]
    out.DeidentificationMethodCodeSequence = Sequence(codes)
    out.LongitudinalTemporalInformationModified = _temporal_state(policy)
    for tag in (0x00120062, 0x00120063, 0x00120064, 0x00280303):
        changes.append(Change((tag,), "A", "default:deidentification-marker"))


def file_meta(source: Dataset, out: Dataset) -> FileMetaDataset:
    """Fresh File Meta Information consistent with the de-identified dataset (PS3.10 7.1)."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = out.get("SOPClassUID", "")
    meta.MediaStorageSOPInstanceUID = out.get("SOPInstanceUID", "")
    meta.TransferSyntaxUID = source.file_meta.TransferSyntaxUID
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta

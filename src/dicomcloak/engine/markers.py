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
from dicomcloak.policy.deviations import Deviation
from dicomcloak.policy.model import Policy
from dicomcloak.raw import new_file_meta
from dicomcloak.standard.table import Option, method_codes

__all__ = ["IMPLEMENTATION_CLASS_UID", "IMPLEMENTATION_VERSION_NAME", "add_markers", "file_meta"]

#: dicomcloak's implementation class UID (2.25 arc, fixed; PS3.7 D.3.3.2).
IMPLEMENTATION_CLASS_UID = UID("2.25.227391425462858117536658405187427352370")
IMPLEMENTATION_VERSION_NAME = "DICOMCLOAK_010"
_METHOD_NAME = "dicomcloak 0.1.0 PS3.15 E.1.1 Basic Profile"
_DEVIATED_NAME = "dicomcloak 0.1.0 PS3.15 E.1.1 Basic Profile with site deviations"
#: How many weakening deviations the method text names, one per value (LO, 64 characters each).
_NAMED_DEVIATIONS = 16
_TEMPORAL_VRS = frozenset({"DA", "DT", "TM"})
_MARKERS = (0x00120062, 0x00120063, 0x00120064, 0x00280303)


def _method_code(column: str) -> Dataset:
    code = method_codes()[column]
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme
    item.CodeMeaning = code.meaning
    return item


def _temporal_state(options: frozenset[Option]) -> str:
    # PS3.3 C.7.1.1: Longitudinal Temporal Information Modified (0028,0303).
    if Option.RETAIN_LONG_MODIFIED_DATES in options:
        return "MODIFIED"
    if Option.RETAIN_LONG_FULL_DATES in options:
        return "UNMODIFIED"
    return "REMOVED"


def _deviation_text(deviation: Deviation) -> str:
    name = deviation.keyword or deviation.tag
    return f"deviation: {name} {deviation.profile_action}->{deviation.action}"[:64]


def _deviated_method(options: list[Option], weakening: tuple[Deviation, ...]) -> list[str]:
    """The method text when the profile was not fully applied: it names what was kept or weakened."""
    named = [_deviation_text(deviation) for deviation in weakening[:_NAMED_DEVIATIONS]]
    more = len(weakening) - len(named)
    return [_DEVIATED_NAME, *(opt.value for opt in options), *named, *([f"and {more} more"] if more else [])]


def _marker_dataset(options: frozenset[Option], weakening: tuple[Deviation, ...]) -> Dataset:
    """The markers, truthful about what was applied (PS3.15 E.1.1, PS3.3 C.7.1.1; docs/deidentification.md).

    YES with 113100 and the options' CID 7050 codes only when no site choice
    weakens the profile. Otherwise NO, no code (the Basic Profile was not
    applied, and CID 7050 has no code for "part of it"), and a method text
    that names the weakening deviations; the temporal state is left out when
    a deviation keeps or shifts dates or times the profile would not.
    """
    chosen = [opt for opt in Option if opt in options]
    markers = Dataset()
    if not weakening:
        markers.PatientIdentityRemoved = "YES"
        markers.DeidentificationMethod = [_METHOD_NAME] + [opt.value for opt in chosen]
        codes = [_method_code("basic_profile")] + [_method_code(opt.column) for opt in chosen]
        markers.DeidentificationMethodCodeSequence = Sequence(codes)
    else:
        markers.PatientIdentityRemoved = "NO"
        markers.DeidentificationMethod = _deviated_method(chosen, weakening)
    if not any(deviation.vr in _TEMPORAL_VRS for deviation in weakening):
        markers.LongitudinalTemporalInformationModified = _temporal_state(options)
    return markers


@cache
def _raw_markers(
    options: frozenset[Option], weakening: tuple[Deviation, ...], implicit: bool, little: bool
) -> tuple[tuple[RawDataElement, ...], tuple[BaseTag, ...]]:
    """The marker elements encoded once per (options, weakening deviations, encoding), and the absent ones.

    Raw elements are shared safely between outputs (they are tuples of bytes),
    and cost nothing to build per instance. The second tuple lists the marker
    tags this policy does not write: an input's own value there (from an
    earlier de-identification) would claim what was not done, so it goes.
    """
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit, little
    write_dataset(buffer, _marker_dataset(options, weakening))
    parsed = read_dataset(BytesIO(buffer.getvalue()), implicit, little)
    elements = parsed._dict  # noqa: SLF001 - raw elements, unconverted
    absent = tuple(BaseTag(tag) for tag in _MARKERS if tag not in elements)
    return tuple(cast(RawDataElement, elements[tag]) for tag in sorted(elements)), absent


def add_markers(out: Dataset, policy: Policy, changes: list[Change], encoding: tuple[bool, bool]) -> None:
    """Set Patient Identity Removed, the method and its CID 7050 codes, and the temporal state.

    What they say depends on the policy's weakening deviations (computed once
    per Policy), so the encoded markers are cached per policy, not made per instance.
    """
    elements = out._dict  # noqa: SLF001 - see deidentify._process
    present, absent = _raw_markers(policy.options, policy.weakening, *encoding)
    for elem in present:
        elements[elem.tag] = elem
        changes.append(Change((int(elem.tag),), "A", "default:deidentification-marker"))
    for tag in absent:
        if elements.pop(tag, None) is not None:
            changes.append(Change((int(tag),), "X", "default:deidentification-marker"))


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
    elements: dict[BaseTag, RawDataElement] = {}  # values made here are valid by construction
    meta = new_file_meta(elements)  # FileMetaDataset(), without its __setattr__ calls
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

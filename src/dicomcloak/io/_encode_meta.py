"""File Meta Information for the fast DICOM encoder, its ``dcmwrite`` side effects, deflate and fallback."""

# ruff: noqa: SLF001 - a fast encoder over pydicom internals, by design (as encode.py)

from __future__ import annotations

import zlib
from io import BytesIO
from itertools import compress

from pydicom import dcmwrite
from pydicom._version import __version_info__
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

from dicomcloak.errors import ProcessingError
from dicomcloak.io._encode_codec import _REFERENCE, _SLOW_PATH, _tag_text

_PREAMBLE = b"\x00" * 128 + b"DICM"
#: File Meta elements pydicom decodes (and so re-encodes) when writing with enforce_file_format
_CANONICAL_META = tuple(BaseTag(t) for t in (0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012))


def _as_dcmwrite_reads_it(elem: RawDataElement) -> RawDataElement:
    """(0008,0016) / (0008,0018) as ``dcmwrite`` writes them after reading them for the File Meta.

    A plain UI value gets the canonical padding (the fast path still applies); anything
    else (VR UN, multiple values, ...) is marked for conversion (value None, nonzero length).
    """
    value = elem.value
    if value is not None and elem.VR in (None, "UI") and b"\\" not in value:
        canonical = _canonical_uid(value)
        return elem if canonical == value else elem._replace(value=canonical, length=len(canonical))
    return elem._replace(value=None, length=_SLOW_PATH)


def _canonical_uid(value: bytes) -> bytes:
    """A raw UI value decoded and re-encoded by pydicom: stripped, padded with NUL to even length."""
    value = value.rstrip(b"\0 ").strip()
    return value + b"\0" if len(value) & 1 else value


def _uid_of(elem: DataElement | RawDataElement | None) -> str | None:
    """A UI value as pydicom would decode it (single-valued), without modifying its data set."""
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        if elem.value is not None and elem.VR in (None, "UI"):
            return elem.value.decode(default_encoding).rstrip("\0 ").strip()
        elem = convert_raw_data_element(elem)
    value = elem.value
    if value is None:
        return None
    return str(value).strip() if isinstance(value, str) else None


def _canonical_meta_element(elem: DataElement | RawDataElement) -> DataElement | RawDataElement:
    """Re-encode raw UI / OB file-meta values the way pydicom's conversion round trip does."""
    if not isinstance(elem, RawDataElement) or elem.value is None or not elem.value:
        return elem
    value = elem.value
    if elem.VR == "UI":
        value = _canonical_uid(value)
    elif elem.VR == "OB" and len(value) & 1:
        value += b"\0"
    if value == elem.value:
        return elem
    return elem._replace(value=value, length=len(value))


def _meta_elements(ds: Dataset) -> dict[BaseTag, DataElement | RawDataElement]:
    """The File Meta elements ``dcmwrite(enforce_file_format=True)`` would write, without (0002,0000)."""
    meta: dict[BaseTag, DataElement | RawDataElement] = dict(ds.file_meta._dict)
    for tag in meta:
        if tag >> 16 != 0x0002:
            raise ProcessingError(
                f"file meta holds element {_tag_text(tag)} outside group 0002", reference=_REFERENCE
            )
    meta.pop(BaseTag(0x00020000), None)

    def is_empty(tag: int) -> bool:
        elem = meta.get(BaseTag(tag))
        if elem is None:
            return True
        if isinstance(elem, RawDataElement):
            if elem.value is not None and elem.VR in (None, "UI"):
                return not elem.value.rstrip(b"\0 ").strip()
            if elem.value is not None and elem.VR == "OB":
                return not elem.value
            return convert_raw_data_element(elem).is_empty
        return bool(elem.is_empty)

    if is_empty(0x00020001):
        meta[BaseTag(0x00020001)] = DataElement(0x00020001, "OB", b"\x00\x01")
    if is_empty(0x00020012):
        meta[BaseTag(0x00020012)] = DataElement(0x00020012, "UI", UID(PYDICOM_IMPLEMENTATION_UID))
    if BaseTag(0x00020013) not in meta:
        meta[BaseTag(0x00020013)] = DataElement(0x00020013, "SH", f"PYDICOM {'.'.join(__version_info__)}")
    for meta_tag, ds_tag in (
        (BaseTag(0x00020002), BaseTag(0x00080016)),
        (BaseTag(0x00020003), BaseTag(0x00080018)),
    ):
        meta_uid = _uid_of(meta.get(meta_tag))
        ds_uid = _uid_of(ds._dict.get(ds_tag))
        if meta_uid is None or (ds_uid and ds_uid != meta_uid):
            meta[meta_tag] = DataElement(meta_tag, "UI", ds_uid)
    missing = [_tag_text(tag) for tag in (0x00020002, 0x00020003, 0x00020010) if is_empty(tag)]
    if missing:
        raise ProcessingError(
            f"required File Meta Information missing or empty: {', '.join(missing)}", reference=_REFERENCE
        )
    for tag in _CANONICAL_META:
        meta[tag] = _canonical_meta_element(meta[tag])
    return meta


def _deflate(body: list[bytes]) -> list[bytes]:
    """Deflate an encoded data set like pydicom: raw deflate (``wbits=-15``), padded to even length."""
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    deflated = compressor.compress(b"".join(body)) + compressor.flush()
    if len(deflated) & 1:
        deflated += b"\x00"
    return [deflated]


def _encode_with_pydicom(ds: Dataset) -> bytes:
    """Fallback for what the fast path does not handle (no or private transfer syntax)."""
    buffer = BytesIO()
    try:
        dcmwrite(buffer, ds, enforce_file_format=True)
    except Exception:  # noqa: BLE001 - pydicom's messages may quote values
        raise ProcessingError("cannot encode the data set", reference=_REFERENCE) from None
    return _PREAMBLE + buffer.getvalue()[132:]


#: Parts at least this long are written as they are; shorter neighbours are joined.
_BIG_PART = 1 << 16


def _coalesced(parts: list[bytes]) -> list[bytes]:
    """The same bytes in fewer parts: each run of small parts joined, big parts (values) kept as they are.

    A typical header is ~200 parts of a few bytes each. Written as they are,
    each costs a buffer view on the writing thread, a slot in a ``writev`` and
    a segment in the kernel's copy; joined, one C-level copy of a few
    kilobytes. Big parts (Pixel Data, large values) are never copied. The
    scan runs in C (``compress`` over ``map``); Python loops only over big parts.
    """
    big = list(compress(range(len(parts)), map(_BIG_PART.__le__, map(len, parts))))
    out: list[bytes] = []
    start = 0
    for index in big:
        if index > start:
            out.append(b"".join(parts[start:index]))
        out.append(parts[index])
        start = index + 1
    if start < len(parts):
        out.append(b"".join(parts[start:]))
    return out

"""Parse DICOM bytes into a raw pydicom Dataset, within explicit limits.

The reader is the border of the pipeline: whatever arrives (a PACS export,
a truncated transfer, a hostile file) leaves here either as a
:class:`pydicom.Dataset` whose elements are still *raw* (no value converted,
so nothing is decoded that the policy may remove anyway) or as an
:class:`~dicomcloak.errors.InputError` with a reason code. No other exception
escapes, and no message quotes an element value or a pydicom message (which
may quote one), because both end up in logs and quarantine reports.

Reason codes
------------
``file-too-large``, ``deflate-bomb``, ``sequence-too-deep``,
``element-too-large``, ``too-many-elements``, ``meta-too-large``,
``memory-exhausted`` (:class:`ReadLimitError`); ``not-dicom``
(:class:`NotDicomError`); ``truncated``, ``length-beyond-file``,
``missing-sop-instance-uid``, ``deflate-invalid``, ``unparseable``,
``unreadable`` (:class:`MalformedError`).

The limits (:class:`ReadLimits`, defined with the raw readers whose loops
check them) are checked while reading, before the memory they guard is spent:
the file size before reading it, the File Meta group's extent before pydicom
parses it, each value's length before it is sliced, the inflated size while
inflating.

We drive pydicom's element generator ourselves instead of calling
``dcmread``: ``dcmread`` swallows ``EOFError`` into a warning (its default
validation mode is a process-global setting we must not flip), silently
returns a partial dataset when the last value is cut short, and inflates a
deflated data set without any bound.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from io import BytesIO
from pathlib import Path

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import read_dataset as _pydicom_read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import VR

from dicomcloak.errors import InputError, MalformedError, ReadLimitError
from dicomcloak.io._read_encoding import (
    _check_meta_extent,
    _dataset_encoding,
    _declared_encoding,
    _Encoding,
    _looks_explicit,
    _sniff_bare,
    _syntax_for,
)
from dicomcloak.io.bounded import read_capped
from dicomcloak.raw import read_elements
from dicomcloak.raw.elements import charset_unknown, too_many_elements
from dicomcloak.raw.limits import ReadLimits

__all__ = ["ReadLimits", "dataset_bytes", "inflate_cap", "read_dataset", "read_path"]

_DEFAULT_LIMITS = ReadLimits()
_PREAMBLE = 128
_PREFIX = b"DICM"
_UNDEFINED = 0xFFFFFFFF
_SOP_INSTANCE_UID = 0x00080018
_SOP_CLASS_UID = 0x00080016
_CHARSET = 0x00080005
_NATIVE_TS = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian})
_HINT_MALFORMED = "the file is damaged or incomplete; re-export it from the source system"


def read_path(path: Path, limits: ReadLimits = _DEFAULT_LIMITS) -> Dataset:
    """Read and parse the DICOM file at `path`.

    The size is checked with ``stat`` before a byte is read, so an oversized
    file is refused without loading it, and only the file's own size is
    allocated (:mod:`dicomcloak.io.bounded`).

    Raises
    ------
    ReadLimitError
        ``file-too-large``, ``memory-exhausted``, or any limit :func:`read_dataset` enforces.
    MalformedError
        ``unreadable`` when the file cannot be opened or read.
    NotDicomError, MalformedError
        As :func:`read_dataset`.
    """
    try:
        with path.open("rb") as handle:
            size = _fstat_size(handle.fileno())
            _check_size(size, limits)
            data = read_capped(handle, size, limits.max_file_bytes)
    except OSError:
        raise MalformedError(
            f"cannot read {path}", reference="unreadable", hint="check the file's permissions"
        ) from None
    return read_dataset(data, limits)


def read_dataset(
    data: bytes, limits: ReadLimits = _DEFAULT_LIMITS, *, share_pixel_data: bool = False
) -> Dataset:
    """Parse DICOM Part 10 bytes (or a bare data set) into a raw Dataset.

    Elements stay raw: later stages decide what to decode, and a value that
    is removed is never decoded at all. The result always carries
    ``file_meta.TransferSyntaxUID`` matching how its elements are encoded,
    so the writer can copy raw elements unchanged.

    Parameters
    ----------
    data:
        The whole file: preamble, ``DICM``, File Meta, data set; or a data
        set without them in Implicit/Explicit VR Little Endian or Explicit
        VR Big Endian.
    limits:
        Size and nesting bounds.
    share_pixel_data:
        Leave a large native Pixel Data value in `data` (a read-only
        ``memoryview``) instead of copying it, for a caller that streams
        the pixels through to an output and keeps the data set to itself
        (:func:`dicomcloak.raw.elements.read_fast` says why and what a
        view cannot do). Off by default: users get ``bytes``.

    Raises
    ------
    NotDicomError
        ``not-dicom``: neither a Part 10 file nor a plausible bare data set.
    ReadLimitError
        A limit in `limits` was exceeded.
    MalformedError
        Truncated, inconsistent or unparseable, or without SOP Instance UID.
    """
    return _guarded(data, limits, share_pixel_data)[0]


def dataset_bytes(data: bytes, limits: ReadLimits = _DEFAULT_LIMITS) -> memoryview:
    """The data set of `data` as encoded, once :func:`read_dataset` accepts it.

    What follows the File Meta group (inflated, for Deflated Explicit VR Little
    Endian), up to the end of the last element: the trailing zero padding the
    reader ignores is left out. An object's content identity is a digest of
    these bytes (``deid`` tells a duplicate from a UID conflict by it).

    Raises
    ------
    InputError
        As :func:`read_dataset`.
    """
    _, body, start, end = _guarded(data, limits, False)
    return memoryview(body)[start:end]


def _guarded(data: bytes, limits: ReadLimits, share_pixel_data: bool) -> tuple[FileDataset, bytes, int, int]:
    """:func:`_parse`, every failure turned into a typed, value-free :class:`InputError`."""
    _check_size(len(data), limits)
    try:
        return _parse(data, limits, share_pixel_data)
    except InputError:
        raise
    except RecursionError:
        raise _too_deep() from None
    except MemoryError:
        raise ReadLimitError("reading the file exhausted memory", reference="memory-exhausted") from None
    except (EOFError, OSError, struct.error):  # OSError: pydicom's "No tag to read"
        raise _truncated() from None
    except Exception as exc:  # noqa: BLE001 - the border: nothing else may escape
        raise MalformedError(
            f"pydicom could not parse the file ({type(exc).__name__})",
            reference="unparseable",
            hint=_HINT_MALFORMED,
        ) from None


def _parse(data: bytes, limits: ReadLimits, share_pixel_data: bool) -> tuple[FileDataset, bytes, int, int]:
    """Parse header, then data set, then check the result is complete.

    Returns the data set, the bytes it was read from (inflated when deflated)
    and where its elements start and end in them.
    """
    fp = BytesIO(data)
    preamble = _read_preamble(data, fp)
    bare = None if preamble is not None else _sniff_bare(data)
    meta = _read_meta(data, fp, limits.max_meta_bytes)
    ts = _declared_syntax(meta)
    if ts == DeflatedExplicitVRLittleEndian:
        data = _inflate(data[fp.tell() :], limits)
        fp = BytesIO(data)
    start = fp.tell()
    enc = bare if bare is not None and not meta else _dataset_encoding(data, start, ts)
    elements, end = _read_elements(data, fp, enc, limits, share_pixel_data)
    ds = FileDataset(fp, elements, preamble, meta, enc.implicit, enc.little)
    ds.buffer = None  # the dataset keeps no reference to `data` (a shared Pixel Data view does)
    ds.set_original_encoding(enc.implicit, enc.little, _charset(ds))
    _check_depth(ds, limits, 0, [0])
    _require_sop_instance_uid(ds)
    _complete_meta(meta, ds, ts, enc)
    return ds, data, start, end


def _check_size(size: int, limits: ReadLimits) -> None:
    if size > limits.max_file_bytes:
        raise ReadLimitError(
            f"the file has {size} bytes, more than the limit of {limits.max_file_bytes}",
            reference="file-too-large",
            hint="raise max_file_bytes if such files are expected",
        )


def _fstat_size(fd: int) -> int:
    return os.fstat(fd).st_size


def _read_preamble(data: bytes, fp: BytesIO) -> bytes | None:
    """Return the preamble and skip past ``DICM``, or None for a bare data set."""
    if data[_PREAMBLE : _PREAMBLE + 4] == _PREFIX:
        fp.seek(_PREAMBLE + 4)
        return data[:_PREAMBLE]
    return None


def _read_meta(data: bytes, fp: BytesIO, max_bytes: int) -> FileMetaDataset:
    """Read group 0002 at the current position (PS3.10 7.1), if there is one."""
    start = fp.tell()
    if data[start : start + 2] != b"\x02\x00":
        return FileMetaDataset()
    # Always Explicit VR Little Endian by the standard; some writers used
    # implicit VR (pydicom issue #503), which the VR bytes reveal.
    implicit = not _looks_explicit(data, start)
    _check_meta_extent(data, start, implicit, max_bytes)
    meta = _pydicom_read_dataset(fp, implicit, True, stop_when=_not_group_0002)
    _require_complete(meta, start, fp.tell())
    return FileMetaDataset(meta)


def _not_group_0002(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag >> 16 != 0x0002


def _declared_syntax(meta: FileMetaDataset) -> UID | None:
    """Return the Transfer Syntax UID of the File Meta, if any."""
    value = meta.get("TransferSyntaxUID")
    return UID(str(value)) if value else None


def inflate_cap(deflated_size: int, limits: ReadLimits) -> int:
    """Most bytes a deflated data set of ``deflated_size`` bytes may inflate to.

    The smallest of the absolute caps and the ratio cap; the ratio applies
    only above ``deflate_ratio_floor`` (small data sets compress well).
    """
    ratio_cap = max(limits.deflate_ratio_floor, deflated_size * limits.max_deflate_ratio)
    return min(limits.max_file_bytes, limits.max_inflated_bytes, ratio_cap)


def _inflate(deflated: bytes, limits: ReadLimits) -> bytes:
    """Inflate a Deflated Explicit VR Little Endian data set (PS3.5 A.5), bounded.

    ``decompress`` is given the cap as its output bound, so a bomb costs at
    most the cap in memory before it is refused.
    """
    cap = inflate_cap(len(deflated), limits)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        data = inflater.decompress(deflated, cap + 1)
    except zlib.error:
        raise MalformedError(
            "the deflated data set is not valid deflate data",
            reference="deflate-invalid",
            hint=_HINT_MALFORMED,
        ) from None
    if len(data) > cap:
        raise ReadLimitError(
            f"the deflated data set inflates beyond {cap} bytes (size and ratio limits)",
            reference="deflate-bomb",
            hint="this is the signature of a decompression bomb; "
            "raise max_inflated_bytes or max_deflate_ratio if such files are expected",
        )
    if not inflater.eof:
        raise _truncated()
    return data


def _read_elements(
    data: bytes, fp: BytesIO, enc: _Encoding, limits: ReadLimits, share_pixel_data: bool = False
) -> tuple[dict[BaseTag, RawDataElement | DataElement], int]:
    """Read every top-level element to the end of `data`, raw; return them and where the last one ends.

    pydicom's generator stops quietly when fewer than 8 bytes remain and
    returns a short value when a length points past the end; both mean the
    file was cut or lies, so the last element must end exactly where the data
    ends. The one exception: fewer than 8 trailing zero bytes, padding some
    writers add (8 or more read as empty (0000,0000) elements, which the
    sanitizer drops); they carry nothing and are not copied.
    """
    elements, end, last = read_elements(
        data,
        fp,
        enc.implicit,
        enc.little,
        limits.max_element_bytes,
        limits.max_elements,
        share_pixel_data=share_pixel_data,
    )
    if end > len(data):
        raise MalformedError(
            "an element's length points beyond the end of the file",
            reference="length-beyond-file",
            hint=_HINT_MALFORMED,
        )
    if (end != len(data) and not _is_zero_padding(data, end)) or (last is not None and _is_short(last)):
        raise _truncated()
    return elements, end


def _is_zero_padding(data: bytes, end: int) -> bool:
    """True if what follows the last element is shorter than an element header and all zeros."""
    return len(data) - end < _HEADER_BYTES and not data[end:].strip(b"\x00")


_HEADER_BYTES = 8  # tag and length, the shortest element header (PS3.5 7.1.2, 7.1.3)


def _is_short(elem: RawDataElement | DataElement) -> bool:
    """True if a raw element's value is shorter than its declared length."""
    if not isinstance(elem, RawDataElement) or elem.length == _UNDEFINED:
        return False
    return elem.value is not None and len(elem.value) < elem.length


def _require_complete(group: Dataset, start: int, position: int) -> None:
    """Refuse a File Meta group that was cut: its last value must end where reading stopped.

    pydicom stops reading the group at a tag outside it (rewinding to that
    tag) or, silently, at fewer than 8 remaining bytes (not rewinding).
    """
    ends = [elem.value_tell + elem.length for elem in group.values() if isinstance(elem, RawDataElement)]
    if max(ends, default=start) != position or any(_is_short(elem) for elem in group.values()):
        raise _truncated()


def _charset(ds: Dataset) -> str | list[str]:
    """The data set's character set, decoding (0008,0005) only (as pydicom's reader does).

    An unknown term is ``charset-unknown`` (pydicom would warn, quoting it, and guess).
    """
    if _CHARSET not in ds._dict:  # noqa: SLF001 - no conversion
        return ds._character_set  # noqa: SLF001 - pydicom exposes no public accessor
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return ds._character_set  # noqa: SLF001
        except (UserWarning, LookupError):
            raise charset_unknown() from None


def _check_depth(ds: Dataset, limits: ReadLimits, depth: int, count: list[int]) -> None:
    """Refuse sequences nested deeper than the limit, and too many elements in them.

    Only sequences pydicom already parsed (undefined length) are visited;
    defined-length ones stay raw bytes until the sanitizer opens them, with
    the same limits. ``values()`` neither sorts nor converts, unlike ``elements()``.
    """
    for elem in ds.values():
        if isinstance(elem, DataElement) and elem.VR == VR.SQ:
            if depth >= limits.max_sequence_depth:
                raise _too_deep()
            for item in elem.value:
                count[0] += len(item._dict)  # noqa: SLF001 - a count, no conversion
                if count[0] > limits.max_elements:
                    raise too_many_elements()
                _check_depth(item, limits, depth + 1, count)


def _require_sop_instance_uid(ds: Dataset) -> None:
    """An instance without SOP Instance UID cannot be pseudonymised or tracked."""
    if not _raw_uid(ds, _SOP_INSTANCE_UID):
        raise MalformedError(
            "the data set has no SOP Instance UID (0008,0018)",
            reference="missing-sop-instance-uid",
            hint="only composite instances can be de-identified; DICOMDIR files are not",
        )


def _raw_uid(ds: Dataset, tag: int) -> str:
    """Return a UID element's text without converting the element in place."""
    if tag not in ds:
        return ""
    value = ds.get_item(tag).value
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").rstrip("\x00 ")
    return str(value or "").rstrip("\x00 ")


def _complete_meta(meta: FileMetaDataset, ds: Dataset, ts: UID | None, enc: _Encoding) -> None:
    """Give the File Meta the transfer syntax and SOP references a writer needs."""
    if ts is None or (ts in _NATIVE_TS and _declared_encoding(ts) != enc):
        meta.TransferSyntaxUID = _syntax_for(enc)
    if "MediaStorageSOPClassUID" not in meta and (sop_class := _raw_uid(ds, _SOP_CLASS_UID)):
        meta.MediaStorageSOPClassUID = UID(sop_class)
    if "MediaStorageSOPInstanceUID" not in meta:
        meta.MediaStorageSOPInstanceUID = UID(_raw_uid(ds, _SOP_INSTANCE_UID))


def _truncated() -> MalformedError:
    return MalformedError(
        "the file ends before its last element does", reference="truncated", hint=_HINT_MALFORMED
    )


def _too_deep() -> ReadLimitError:
    return ReadLimitError(
        "sequences are nested deeper than the limit",
        reference="sequence-too-deep",
        hint="raise max_sequence_depth if such files are expected",
    )

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
``element-repeated``, ``trailing-bytes``, ``missing-sop-instance-uid``,
``deflate-invalid``, ``unparseable``, ``unreadable`` (:class:`MalformedError`).

The limits (:class:`ReadLimits`, defined with the raw readers whose loops
check them) are checked while reading, before the memory they guard is spent:
the file size before reading it, the File Meta group's extent before pydicom
parses it, each value's length before it is sliced, the inflated size while
inflating. An input or data set larger than :data:`WALK_FROM` has its element
headers walked first (:func:`check_input`, :mod:`dicomcloak.raw.extent`), so
what reading it costs is bounded before it is read whole.

We drive pydicom's element generator ourselves instead of calling
``dcmread``: ``dcmread`` swallows ``EOFError`` into a warning (its default
validation mode is a process-global setting we must not flip), silently
returns a partial dataset when the last value is cut short, and inflates a
deflated data set without any bound.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import IO, TYPE_CHECKING, ParamSpec, TypeVar

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.tag import BaseTag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from dicomcloak.errors import InputError, MalformedError, ReadLimitError
from dicomcloak.io._read_checks import (
    _charset,
    _check_depth,
    _complete_meta,
    _require_sop_instance_uid,
    _too_deep,
)
from dicomcloak.io._read_encoding import (
    _HINT_MALFORMED,
    _PREAMBLE,
    _Encoding,
    _encoding,
    _head,
    _is_short,
    _truncated,
)
from dicomcloak.io.bounded import Window, read_capped
from dicomcloak.raw import new_file_dataset, read_elements
from dicomcloak.raw.extent import check_extent
from dicomcloak.raw.limits import ReadLimits

if TYPE_CHECKING:
    from dicomcloak.io.inputs import InputItem

__all__ = [
    "WALK_FROM",
    "ReadLimits",
    "check_input",
    "dataset_bytes",
    "inflate_cap",
    "read_dataset",
    "read_input",
    "read_path",
]

_DEFAULT_LIMITS = ReadLimits()
#: A data set larger than this many bytes is walked (:mod:`dicomcloak.raw.extent`) before it is parsed,
#: and a file larger than this before it is read whole. Below it, reading costs at most this much memory
#: and parsing is bounded by it (a flood of 8-byte elements is 131,072 of them); above it, the walk costs a
#: small fraction of reading the file (docs/security.md, "Limits that hold").
WALK_FROM = 1 << 20
_HEAD_SLACK = 64  # bytes read after the File Meta limit: the first element headers of the data set
P = ParamSpec("P")
T = TypeVar("T")


def read_path(path: Path, limits: ReadLimits = _DEFAULT_LIMITS) -> Dataset:
    """Read and parse the DICOM file at `path`.

    The size is checked with ``stat`` before a byte is read, so an oversized
    file is refused without loading it, and only the file's own size is
    allocated (:mod:`dicomcloak.io.bounded`); a file larger than
    :data:`WALK_FROM` is judged from its element headers first (:func:`check_input`).

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
            if check_input(handle, size, limits):
                handle.seek(0)
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
    return _typed(_parse, data, limits, share_pixel_data)


def read_input(item: InputItem, limits: ReadLimits = _DEFAULT_LIMITS) -> bytes:
    """The bytes of an input (a file or a zip member), judged from its element headers first when large.

    :meth:`InputItem.read_bytes <dicomcloak.io.inputs.InputItem.read_bytes>`
    with :func:`check_input` run on the open input before it is read whole.

    Raises
    ------
    InputError
        As :func:`check_input` and :meth:`~dicomcloak.io.inputs.InputItem.read_bytes`.
    """
    return item.read_bytes(limits.max_file_bytes, check=partial(check_input, limits=limits))


def check_input(handle: IO[bytes], size: int, limits: ReadLimits = _DEFAULT_LIMITS) -> bool:
    """Refuse an input of ``size`` bytes open in ``handle`` from its element headers, before it is read whole.

    Inputs of :data:`WALK_FROM` bytes or fewer are left to the reader. A
    larger one has its File Meta read and its data set's element headers
    walked through a :class:`~dicomcloak.io.bounded.Window` (a few pages,
    whatever its size) by :func:`dicomcloak.raw.extent.check_extent`: a
    value declared longer than the file, a zero tail, a repeated tag, an
    element flood is refused here, in the time of a few reads and the memory
    of one window. A deflated data set is left to the reader, whose inflating
    is bounded (``max_inflated_bytes``).

    Returns
    -------
    bool
        Whether ``handle`` was read (its position is then anywhere).

    Raises
    ------
    InputError
        What :func:`read_dataset` would raise for the File Meta, and
        :func:`~dicomcloak.raw.extent.check_extent`'s refusals.
    OSError
        As reading ``handle`` raises it.
    """
    if size <= WALK_FROM:
        return False
    window = Window(handle, size)
    head_bytes = window[0 : _PREAMBLE + 4 + limits.max_meta_bytes + _HEAD_SLACK]
    head = _typed(_head, head_bytes, size, limits)
    if head.syntax == DeflatedExplicitVRLittleEndian:
        return True
    encoding = _encoding(head, head_bytes, head.start)
    try:
        check_extent(window, head.start, encoding.implicit, encoding.little, limits)
    except struct.error:  # the file is shorter than its size said (it shrank while being read)
        raise _truncated() from None
    except RecursionError:
        raise _too_deep() from None
    return True


def _typed(parse: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``parse(...)``, every failure a typed, value-free :class:`InputError` (the reader is the border)."""
    try:
        return parse(*args, **kwargs)
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
    """Parse header, then data set (walked first when large), then check the result is complete.

    Returns the data set, the bytes it was read from (inflated when deflated)
    and where its elements start and end in them.
    """
    head = _head(data, len(data), limits)
    preamble, meta, ts, start = head.preamble, head.meta, head.syntax, head.start
    if ts == DeflatedExplicitVRLittleEndian:
        data, start = _inflate(data[start:], limits), 0
    enc = _encoding(head, data, start)
    if len(data) - start > WALK_FROM:
        check_extent(data, start, enc.implicit, enc.little, limits)
    fp = BytesIO(data)
    fp.seek(start)
    elements, end = _read_elements(data, fp, enc, limits, share_pixel_data)
    # FileDataset(fp, elements, preamble, meta, ...) with buffer None, without its ~20 __setattr__ calls:
    # the dataset keeps no reference to `data` (a shared Pixel Data view does)
    ds = new_file_dataset(elements, preamble, meta, enc.implicit, enc.little)
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
    writers add; they carry nothing and are not copied. Eight or more read
    as an element (0000,0000) of length 0, which the element readers refuse
    (``trailing-bytes``).
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

"""What precedes a DICOM data set (preamble, File Meta, PS3.10 7.1) and how the data set is encoded.

The encoding is declared by the transfer syntax, or sniffed from the first
element. Split from :mod:`dicomcloak.io.reader`, which parses what follows.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from io import BytesIO
from typing import NamedTuple

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset as _pydicom_read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    AllTransferSyntaxes,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

from dicomcloak.errors import MalformedError, NotDicomError, ReadLimitError
from dicomcloak.raw import new_file_meta
from dicomcloak.raw.limits import ReadLimits

_UNDEFINED = 0xFFFFFFFF
# The first group of a bare data set (no preamble): File Meta (written without
# preamble by some tools) or the low public groups an instance starts with.
_PLAUSIBLE_FIRST_GROUPS = frozenset({0x0002, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028})
_VRS = frozenset(vr.value.encode("ascii") for vr in VR)
_LONG_VRS = frozenset(vr.encode("ascii") for vr in EXPLICIT_VR_LENGTH_32)


@dataclass(frozen=True)
class _Encoding:
    implicit: bool
    little: bool


def _dataset_encoding(data: bytes, start: int, ts: UID | None) -> _Encoding:
    """Decide how the data set after a File Meta group is encoded.

    The first element's bytes show whether VRs are explicit; writers that
    label an implicit VR data set with an explicit transfer syntax exist in
    the wild. The data set is read as it is really encoded (the writer then
    re-encodes it to the declared syntax, or :func:`_complete_meta` corrects
    a native syntax so the raw elements can be copied as they are).
    """
    found_implicit = not _looks_explicit(data, start)
    if ts is None:
        little = found_implicit or _u16(data, start, little=True) < 0x0400
        return _Encoding(found_implicit, little)
    declared = _declared_encoding(ts)
    if len(data) - start < 8 or found_implicit == declared.implicit:
        return declared
    return _Encoding(found_implicit, True if found_implicit else declared.little)


def _declared_encoding(ts: UID) -> _Encoding:
    """Encoding of a transfer syntax; unknown ones are Explicit VR LE (PS3.5 A.4)."""
    if ts in AllTransferSyntaxes:
        return _Encoding(ts.is_implicit_VR, ts.is_little_endian)
    return _Encoding(False, True)


def _sniff_bare(data: bytes, size: int | None = None) -> _Encoding:
    """Recognise a data set without preamble from its first element, or refuse.

    Conservative on purpose: guessing on arbitrary bytes is how a PNG becomes
    a "dataset", so the first tag must be in a low public group and its
    length must fit in the data (``size`` bytes, when ``data`` is only their head).
    """
    size = len(data) if size is None else size
    if len(data) >= 8:
        if _looks_explicit(data, 0):
            for little in (True, False):
                if _u16(data, 0, little=little) in _PLAUSIBLE_FIRST_GROUPS and _explicit_fits(
                    data, size, little=little
                ):
                    return _Encoding(False, little)
        elif _u16(data, 0, little=True) in _PLAUSIBLE_FIRST_GROUPS and _implicit_fits(data, size):
            return _Encoding(True, True)
    raise _not_dicom(data)


def _looks_explicit(data: bytes, pos: int) -> bool:
    """True if the element at `pos` carries an explicit VR (pydicom's heuristic)."""
    return data[pos + 4 : pos + 6] in _VRS


def _explicit_fits(data: bytes, size: int, *, little: bool) -> bool:
    vr = data[4:6]
    if vr in _LONG_VRS:
        length = _u32(data, 8, little=little) if len(data) >= 12 else _UNDEFINED - 1
        return data[6:8] == b"\x00\x00" and (length == _UNDEFINED or length <= size - 12)
    return _u16(data, 6, little=little) <= size - 8


def _implicit_fits(data: bytes, size: int) -> bool:
    length = _u32(data, 4, little=True)
    return length == _UNDEFINED or length <= size - 8


def _u16(data: bytes, pos: int, *, little: bool) -> int:
    return int.from_bytes(data[pos : pos + 2], "little" if little else "big")


def _u32(data: bytes, pos: int, *, little: bool) -> int:
    return int.from_bytes(data[pos : pos + 4], "little" if little else "big")


def _syntax_for(enc: _Encoding) -> UID:
    if enc.implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if enc.little else ExplicitVRBigEndian


def _not_dicom(data: bytes) -> NotDicomError:
    hint = "check that the input is a DICOM file"
    if data.startswith(b"PK\x03\x04"):
        hint = "this looks like a zip archive: pass it as an input or name it *.zip"
    return NotDicomError(
        "neither a DICOM Part 10 file nor a recognisable DICOM data set",
        reference="not-dicom",
        hint=hint,
    )


_PREAMBLE = 128
_PREFIX = b"DICM"
_HINT_MALFORMED = "the file is damaged or incomplete; re-export it from the source system"


class _Head(NamedTuple):
    """What precedes a data set: preamble, File Meta, declared syntax, sniffed bare encoding, its start."""

    preamble: bytes | None
    meta: FileMetaDataset
    syntax: UID | None
    bare: _Encoding | None
    start: int


def _head(data: bytes, size: int, limits: ReadLimits) -> _Head:
    """Read the preamble and File Meta of ``data``, the first bytes (or all) of ``size``."""
    fp = BytesIO(data)
    preamble = _read_preamble(data, fp)
    bare = None if preamble is not None else _sniff_bare(data, size)
    meta = _read_meta(data, fp, limits.max_meta_bytes)
    return _Head(preamble, meta, _declared_syntax(meta), bare, fp.tell())


def _encoding(head: _Head, data: bytes, start: int) -> _Encoding:
    """How the data set at ``start`` in ``data`` is encoded: sniffed if bare, else declared (and checked)."""
    if head.bare is not None and not head.meta:
        return head.bare
    return _dataset_encoding(data, start, head.syntax)



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
    if any(tag >> 16 != 0x0002 for tag in meta._dict):  # noqa: SLF001 - never after stop_when; as before:
        return FileMetaDataset(meta)  # pydicom's ValueError (unparseable)
    return new_file_meta(meta._dict)  # noqa: SLF001 - FileMetaDataset(meta), without its __setattr__ calls


_META_HEADER = struct.Struct("<HH2sH").unpack_from
_LONG = struct.Struct("<L").unpack_from
_META_LONG_VRS = frozenset(
    {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UN", b"UT", b"UC", b"UR", b"SV", b"UV"}
)


def _check_meta_extent(data: bytes, start: int, implicit: bool, max_bytes: int) -> None:
    """Refuse a File Meta group longer than ``max_bytes`` before pydicom parses it.

    Walks the element headers of group 0002 (a dozen in practice) by their
    declared lengths; an undefined or lying length ends the walk far beyond
    the limit, so a group bomb costs a few integer operations.
    """
    pos, size = start, len(data)
    while pos + 12 <= size:
        group, _, vr, short = _META_HEADER(data, pos)
        if group != 0x0002:
            return
        if implicit:
            pos += 8 + _LONG(data, pos + 4)[0]
        elif vr in _META_LONG_VRS:
            pos += 12 + _LONG(data, pos + 8)[0]
        else:
            pos += 8 + short
        if pos - start > max_bytes:
            raise ReadLimitError(
                f"the File Meta Information group is longer than {max_bytes} bytes",
                reference="meta-too-large",
                hint="raise max_meta_bytes if such files are expected",
            )


def _not_group_0002(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag >> 16 != 0x0002


def _declared_syntax(meta: FileMetaDataset) -> UID | None:
    """Return the Transfer Syntax UID of the File Meta, if any."""
    value = meta.get("TransferSyntaxUID")
    return UID(str(value)) if value else None



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



def _truncated() -> MalformedError:
    return MalformedError(
        "the file ends before its last element does", reference="truncated", hint=_HINT_MALFORMED
    )

"""Precompiled headers, VR tables and value-free errors for the fast DICOM encoder (:mod:`.encode`)."""

from __future__ import annotations

from collections.abc import MutableSequence
from struct import Struct

from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement
from pydicom.valuerep import AMBIGUOUS_VR, EXPLICIT_VR_LENGTH_32, PersonName

from dicomcloak.errors import ProcessingError

_REFERENCE = "encode-failed"
_UNDEFINED = 0xFFFFFFFF
#: marks a raw element (copy) that must be converted; no real element has this length
_SLOW_PATH = -1
_LONG_VRS = frozenset(vr.value for vr in EXPLICIT_VR_LENGTH_32)
_AMBIGUOUS_VRS = frozenset(vr.value for vr in AMBIGUOUS_VR)
#: VRs pydicom writes with ``write_string`` (no character set), and their padding
_ASCII_STRING_VRS = {"AE": " ", "AS": " ", "CS": " ", "UI": "\0"}
# Text VRs with a 2-byte length whose ASCII values encode the same in every character set
# pydicom supports (PS3.5 6.1.2.3): written directly, like the VRs above.
_ASCII_TEXT_VRS = {"DA": " ", "DT": " ", "TM": " ", "LO": " ", "SH": " ", "PN": " ", "LT": " ", "ST": " "}


class _Codec:
    """Precompiled packers for one (implicit VR, little endian) encoding."""

    __slots__ = (
        "implicit",
        "item_delimiter",
        "item_tag_prefix",
        "little",
        "long_header",
        "sequence_delimiter",
        "short_header",
        "tag_length",
        "uint32",
        "undefined_short_header",
    )

    def __init__(self, implicit: bool, little: bool) -> None:
        order = "<" if little else ">"
        self.implicit = implicit
        self.little = little
        #: implicit VR header, and item/delimiter headers: group, element, 4-byte length
        self.tag_length = Struct(order + "HHL")
        #: explicit VR, 2-byte length
        self.short_header = Struct(order + "HH2sH")
        #: explicit VR, 2 reserved bytes, 4-byte length
        self.long_header = Struct(order + "HH2s2xL")
        #: explicit VR with a short VR and undefined length (pydicom writes no reserved bytes)
        self.undefined_short_header = Struct(order + "HH2sL")
        self.uint32 = Struct(order + "L")
        self.item_tag_prefix = Struct(order + "HH").pack(0xFFFE, 0xE000)
        self.item_delimiter = self.tag_length.pack(0xFFFE, 0xE00D, 0)
        self.sequence_delimiter = self.tag_length.pack(0xFFFE, 0xE0DD, 0)


_CODECS = {
    (True, True): _Codec(True, True),
    (False, True): _Codec(False, True),
    (False, False): _Codec(False, False),
}
_EXPLICIT_LE = _CODECS[(False, True)]


class _EncodeError(Exception):
    """Internal: the element at ``path`` (outermost tag first) could not be encoded."""

    def __init__(self, tag: int) -> None:
        super().__init__()
        self.path: list[int] = [tag]


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _failure(exc: _EncodeError) -> ProcessingError:
    path = exc.path
    if len(path) > 8:
        shown = " > ".join(_tag_text(t) for t in path[:4])
        shown += " > ... > " + " > ".join(_tag_text(t) for t in path[-3:])
    else:
        shown = " > ".join(_tag_text(t) for t in path)
    return ProcessingError(f"cannot encode element {shown}", reference=_REFERENCE)


def _ascii_string(elem: DataElement, padding: str, *, ascii_only: bool = False) -> bytes | None:
    """The bytes pydicom's ``write_string`` writes for `elem`, or None if its value is unusual.

    With `ascii_only`, values with any non-ASCII character return None (they go
    through pydicom's character set encoding).
    """
    value = elem.value
    if value is None:
        return b""
    if isinstance(value, str | PersonName):
        text = str(value)
    elif isinstance(value, list | tuple | MutableSequence) and all(
        isinstance(v, str | PersonName) for v in value
    ):
        text = "\\".join(str(v) for v in value)
    else:
        return None
    if ascii_only and not text.isascii():
        return None
    if len(text) & 1:
        text += padding
    return text.encode(default_encoding)

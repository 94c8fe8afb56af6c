"""Walk a dataset's leaf elements (file meta, any depth, private included) for ``verify``.

Each :class:`Leaf` keeps the element as read (raw bytes when pydicom has not
converted it) so its identity can be hashed cheaply (:func:`leaf_key`), and
decodes its value to text only when asked (:func:`leaf_texts`): most
elements of an output are unchanged and kept, and are never decoded.

This is deliberately independent of the engine's own walk
(``engine/deidentify.py``): a verifier that shared the engine's code would
share its blind spots. Only the data dictionary's VRs are common.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterator
from functools import lru_cache
from typing import NamedTuple

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from dicomcloak.engine.outcome import TagPath
from dicomcloak.engine.values import dictionary_vr
from dicomcloak.raw import read_items

__all__ = ["PIXEL_TAGS", "STRING_VRS", "Leaf", "leaf_key", "leaf_texts", "leaves"]

PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
#: VRs whose value is character text (PS3.5 6.2).
STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
_OPAQUE_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_PN_DELIMITERS = {0x5E, 0x3D}  # "^" and "=" (PS3.5 6.2)
_CHARSET = 0x00080005
_UNDEFINED = 0xFFFFFFFF
_MAX_TEXT_BYTES = 1_000_000
_CONCAT_BELOW = 4096  # hashing a joined copy is cheaper for small values, two updates for big ones
_PIXEL_CHUNKS, _PIXEL_CHUNK = 64, 256
_PIXEL_SAMPLED_ABOVE = _PIXEL_CHUNKS * _PIXEL_CHUNK * 4
_PRINTABLE_RUN = re.compile(r"[\x20-\x5b\x5d-\x7e\xa0-\xff]+")  # Latin-1 printable, no backslash


class Leaf(NamedTuple):
    """One non-sequence element: where it is, its VR, its value as read, its private creator."""

    path: TagPath
    vr: str
    value: object  # bytes when raw, else pydicom's converted value
    encodings: tuple[str, ...]
    creator: str | None

    @property
    def tag(self) -> int:
        """The element's tag."""
        return self.path[-1]


def _encodings(ds: Dataset, inherited: tuple[str, ...]) -> tuple[str, ...]:
    if _CHARSET not in ds:
        return inherited
    try:
        return tuple(convert_encodings(ds[_CHARSET].value))
    except Exception:  # noqa: BLE001 - unknown character set: decode as the default repertoire
        return inherited


def _is_creator(tag: int) -> bool:
    return (tag >> 16) % 2 == 1 and 0x0010 <= tag & 0xFFFF <= 0x00FF


def _creator_text(value: object, encodings: tuple[str, ...]) -> str:
    if isinstance(value, bytes):
        return decode_bytes(value, list(encodings), set()).strip(" \x00")
    return str(value[0] if isinstance(value, MultiValue) and value else value or "").strip()


def _creator_of(tag: int, creators: dict[int, str]) -> str | None:
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 == 0 or element < 0x1000:
        return None
    return creators.get((group << 16) | (element >> 8))


def _vr_of(raw: DataElement | RawDataElement, tag: int) -> str:
    vr = raw.VR or dictionary_vr(tag)
    return "UN" if " or " in vr else str(vr)


def leaves(ds: Dataset, prefix: TagPath = (), encodings: tuple[str, ...] = ("iso8859",)) -> Iterator[Leaf]:
    """Every non-sequence element of ``ds`` at any depth (File Meta first when present)."""
    if not prefix:
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            yield from _level(meta, (), encodings)
    yield from _level(ds, prefix, encodings)


def _level(ds: Dataset, prefix: TagPath, inherited: tuple[str, ...]) -> Iterator[Leaf]:
    encodings = _encodings(ds, inherited)
    creators: dict[int, str] = {}
    elements = ds._dict  # noqa: SLF001 - raw access, as the engine's walk (Dataset.get_item is slow)
    for tag in sorted(elements, key=int):  # int keys: BaseTag's Python-level __lt__ is slow
        number = int(tag)
        if _is_creator(number):
            creators[number] = _creator_text(elements[tag].value, encodings)
        yield from _element(ds, elements[tag], (*prefix, number), encodings, _creator_of(number, creators))


def _element(
    ds: Dataset, raw: DataElement | RawDataElement, path: TagPath, encodings: tuple[str, ...],
    creator: str | None,
) -> Iterator[Leaf]:
    tag = path[-1]
    vr = _vr_of(raw, tag)
    value = raw.value
    if _plain(raw, vr):
        yield Leaf(path, vr, value, encodings, creator)
        return
    items = _fast_items(raw, vr, encodings)
    if items is None:
        try:
            elem = ds[tag]
        except Exception:  # noqa: BLE001 - an undecodable value: its raw bytes stand for it
            yield Leaf(path, "UN", value if isinstance(value, bytes) else b"", encodings, creator)
            return
        if not (elem.VR == "SQ" and isinstance(elem.value, list | Sequence)):
            yield Leaf(path, str(elem.VR), elem.value, encodings, creator)
            return
        items = list(elem.value)
    for index, item in enumerate(items):
        yield from leaves(item, (*path, index), encodings)


def _plain(raw: DataElement | RawDataElement, vr: str) -> bool:
    """A raw value read as it is: anything but a sequence (an undefined-length UN may be one)."""
    if not isinstance(raw, RawDataElement) or not isinstance(raw.value, bytes) or vr == "SQ":
        return False
    return not (vr == "UN" and raw.length == _UNDEFINED)


def _fast_items(
    raw: DataElement | RawDataElement, vr: str, encodings: tuple[str, ...]
) -> list[Dataset] | None:
    """A defined-length sequence's items by dicomcloak's raw reader (pydicom's is the slow part)."""
    if vr != "SQ" or not isinstance(raw, RawDataElement) or raw.length == _UNDEFINED:
        return None
    if not isinstance(raw.value, bytes):
        return None
    return read_items(raw.value, bool(raw.is_implicit_VR), bool(raw.is_little_endian), list(encodings))


def _canonical(leaf: Leaf) -> bytes:
    value = leaf.value
    if isinstance(value, bytes | bytearray | memoryview):
        # padding stripped whatever the VR: a private value reads as UN in one file and LO in another
        return bytes(value).rstrip(b" \x00")
    if value is None:
        return b""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(item) for item in value).encode("utf-8", "surrogateescape")
    return str(value).strip(" \x00").encode("utf-8", "surrogateescape")


def _pixel_sample(data: bytes) -> bytes:
    step = len(data) // _PIXEL_CHUNKS
    view = memoryview(data)
    chunks = [view[start:start + _PIXEL_CHUNK] for start in range(0, step * _PIXEL_CHUNKS, step)]
    return len(data).to_bytes(8, "little") + b"".join(chunks)


@lru_cache(maxsize=1 << 16)
def _path_bytes(path: TagPath) -> bytes:
    return struct.pack(f"<{len(path)}I", *path)


def leaf_key(leaf: Leaf) -> bytes:
    """A 64-bit digest of (value, tag path): equal for an element left as it was at the same place.

    Pixel data, never searched, only tells outputs and originals apart: its
    length and 64 chunks spread over it are digested, not every byte.
    """
    value = leaf.value
    if leaf.tag in PIXEL_TAGS and isinstance(value, bytes) and len(value) > _PIXEL_SAMPLED_ABOVE:
        canonical = _pixel_sample(value)
    else:
        canonical = _canonical(leaf)
    if len(canonical) < _CONCAT_BELOW:
        return hashlib.blake2b(canonical + _path_bytes(leaf.path), digest_size=8).digest()
    digest = hashlib.blake2b(canonical, digest_size=8)
    digest.update(_path_bytes(leaf.path))
    return digest.digest()


def leaf_texts(leaf: Leaf) -> list[str]:
    """The value as text pieces: multi-values split; opaque bytes as their printable runs."""
    value = leaf.value
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if len(data) > _MAX_TEXT_BYTES:
            return []
        if leaf.vr in STRING_VRS:
            return _split(leaf.vr, _decode(data, leaf))
        return _PRINTABLE_RUN.findall(data.decode("latin-1"))
    if value is None or leaf.vr in _OPAQUE_VRS:
        return []
    items = value if isinstance(value, MultiValue | list | tuple) else [value]
    return [text for text in (str(item).strip(" \x00") for item in items if item is not None) if text]


def _decode(data: bytes, leaf: Leaf) -> str:
    if leaf.vr not in _CHARSET_VRS:
        return data.decode("latin-1")
    delimiters = _PN_DELIMITERS if leaf.vr == "PN" else set()
    return decode_bytes(data, list(leaf.encodings), delimiters)


def _split(vr: str, text: str) -> list[str]:
    if vr in _SINGLE_VALUED:
        text = text.strip(" \x00")
        return [text] if text else []
    parts = [part.strip(" \x00") for part in text.split("\\")]
    return [part for part in parts if part]

"""Capture the original attributes de-identification changed, as a Modified Attributes Sequence item.

PS3.15 E.1.1 (step 1) copies every attribute to be protected into the single
item of the Modified Attributes Sequence (0400,0550); E.1.2 (step 2) moves
them back into the main data set, *replacing* what is there. Both act on
top-level attributes: so do we. When anything at any depth inside a top-level
sequence changed, the whole original top-level sequence is captured (the
minimal enclosing top-level element), which is also what GDCM's
``gdcmanon`` captures and restores. Private elements are captured like
public ones, with their private creator when the creator was removed too.

Exactness: raw elements are copied as read, so an Explicit VR Little Endian
input keeps its very bytes (value, VR, length, padding). Elements of an
Implicit VR or Big Endian input get their dictionary VR and are re-encoded
in Explicit VR Little Endian (PS3.15 E.1.1 step 4 asks for a transfer
syntax): their *values* are unchanged. Group Length (gggg,0000) elements are
retired (PS3.5 7.2) and never written by pydicom: they are not captured. Markers de-identification added
(Change action ``A``) are not captured unless the input already had the
element (its original value is then restored, never the marker).

The encoded (0400,0550) element is the vault's payload, and the start of an
embedded seal's plaintext (:mod:`dicomcloak.engine.sealcontent` adds what
binds and authenticates it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection, Iterable
from io import BytesIO

from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import correct_ambiguous_vr_element, write_data_element
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from dicomcloak.engine.outcome import Change
from dicomcloak.engine.quiet import quiet_pydicom
from dicomcloak.errors import SealError
from dicomcloak.raw import new_dataset

__all__ = [
    "MODIFIED_ATTRIBUTES",
    "capture",
    "capture_encoded",
    "captured_tags",
    "decode_modified",
    "element_or_none",
    "encode_modified",
    "parse_sealed",
    "single_item",
]

#: Modified Attributes Sequence (PS3.3 C.12.1, PS3.15 E.1.1).
MODIFIED_ATTRIBUTES = 0x04000550
_EXPLICIT_LE = (False, True)


def captured_tags(source: Dataset, changes: Iterable[Change]) -> list[int]:
    """The top-level tags of ``source`` whose original must be kept for re-identification.

    One per changed top-level element or top-level sequence containing a
    change; private creators of captured private blocks come along.
    """
    # Plain int keys: membership of an int among BaseTag keys calls BaseTag's Python-level __eq__.
    return _captured(set(map(int, source._dict)), changes)  # noqa: SLF001 - keys only, nothing converted


def _captured(elements: Collection[int], changes: Iterable[Change]) -> list[int]:
    tags = {change.path[0] for change in changes if change.path and change.path[0] in elements}
    tags.discard(MODIFIED_ATTRIBUTES)
    tags = {tag for tag in tags if tag & 0xFFFF}  # group lengths are retired and never written (PS3.5 7.2)
    for tag in list(tags):
        if (tag >> 16) % 2 and (tag & 0xFFFF) >= 0x1000:
            creator = (tag & 0xFFFF0000) | ((tag >> 8) & 0xFF)
            if creator in elements:
                tags.add(creator)
    return sorted(tags)


def capture(source: Dataset, changes: Iterable[Change], extra: Iterable[int] = ()) -> Dataset:
    """The Modified Attributes Sequence item: the original top-level elements ``changes`` touched.

    ``extra`` names further top-level tags to capture (e.g. Pixel Data before
    a redaction, see :mod:`dicomcloak.engine.pixelseal`). ``source`` is not
    modified.
    """
    quiet_pydicom()
    keys = {int(key): key for key in source._dict}  # noqa: SLF001 - see captured_tags
    tags = sorted(set(_captured(keys, changes)) | {t for t in extra if t in keys})
    charset = source.original_character_set
    elements = {keys[tag]: _exact(source, keys[tag]) for tag in tags}  # in tag order
    return new_dataset(elements, False, True, charset if isinstance(charset, str) else list(charset))


def capture_encoded(
    source: Dataset, changes: Iterable[Change], extra: Iterable[int] = ()
) -> tuple[bytes, int]:
    """``encode_modified(capture(source, changes, extra))`` and how many elements it holds.

    When every captured element is a raw Explicit VR Little Endian element of
    defined length (any such input), its header and value are copied straight
    from ``source``: no intermediate item is built. Anything else takes the
    general path, so the bytes are the same either way.
    """
    changes = tuple(changes)  # read twice on the general path
    keys = {int(key): key for key in source._dict}  # noqa: SLF001 - see captured_tags
    tags = sorted(set(_captured(keys, changes)) | {t for t in extra if t in keys})
    elements = source._dict  # noqa: SLF001 - raw elements, never converted
    body: list[bytes] = []
    packers = _PACKERS
    for tag in tags:
        elem = elements[keys[tag]]
        # _copyable, inlined: this loop runs for every captured element of every sealed file.
        if type(elem) is not RawDataElement:
            return _general(source, changes, extra)
        _, vr, length, value, _, implicit, little, _, _ = elem
        if implicit or not little or not vr or length == 0xFFFFFFFF:
            return _general(source, changes, extra)
        if value is None:
            if length:
                return _general(source, changes, extra)
        elif type(value) is not bytes or len(value) != length:
            return _general(source, changes, extra)
        pack, code = packers.get(vr) or _packer(vr)
        body.append(pack(tag >> 16, tag & 0xFFFF, code, length))
        if value:
            body.append(value)
    return _modified_element(b"".join(body)), len(tags)


def _general(source: Dataset, changes: Iterable[Change], extra: Iterable[int]) -> tuple[bytes, int]:
    item = capture(source, changes, extra)
    return encode_modified(item), len(item._dict)  # noqa: SLF001


def _exact(source: Dataset, key: BaseTag) -> RawDataElement | DataElement:
    """The element as read when it is Explicit VR Little Endian, else its decoded form."""
    elem: object = source._dict[key]  # noqa: SLF001 - the raw element, not converted
    if not isinstance(elem, RawDataElement):
        return source[key]
    if not elem.is_implicit_VR and elem.is_little_endian:
        return elem
    # Decoded without storing the conversion in the input (``source[key]`` would).
    converted: DataElement | RawDataElement = convert_raw_data_element(
        elem, encoding=source.original_character_set, ds=source
    )
    if " or " in str(converted.VR):  # an implicit VR input's "OB or OW" Pixel Data, "US or SS" values
        converted = correct_ambiguous_vr_element(converted, source, elem.is_little_endian)
    return converted


def encode_modified(item: Dataset) -> bytes:
    """Encode the (0400,0550) element holding ``item``, Explicit VR Little Endian (PS3.5 A.2, 7.5).

    Raw elements read as Explicit VR Little Endian with a defined length are
    copied as they are, header and value (their exact original encoding, and
    ten times cheaper than pydicom's writer); anything else goes through
    pydicom's ``write_data_element``. Lengths are defined throughout.
    """
    charset = item.original_character_set
    body: list[bytes] = []
    for tag, elem in sorted(item._dict.items(), key=_as_int):  # noqa: SLF001 - raw, never converted
        if isinstance(elem, RawDataElement) and _copyable(elem):
            body.append(_header(int(tag), elem.VR or "UN", elem.length))
            if elem.value:
                body.append(elem.value)
        else:
            body.append(_written(item[tag], charset))
    return _modified_element(b"".join(body))


def _modified_element(encoded: bytes) -> bytes:
    """The (0400,0550) element of one item of defined length holding the ``encoded`` elements."""
    item_part = _ITEM.pack(0xFFFE, 0xE000, len(encoded)) + encoded
    return _LONG_HEADER.pack(0x0400, 0x0550, b"SQ", len(item_part)) + item_part


def _as_int(entry: tuple[BaseTag, object]) -> int:
    return int(entry[0])  # BaseTag's own __lt__ is Python-level and slow


_SHORT_HEADER = struct.Struct("<HH2sH")
_LONG_HEADER = struct.Struct("<HH2s2xL")
_ITEM = struct.Struct("<HHL")


def _copyable(elem: RawDataElement) -> bool:
    value: object = elem.value
    return (
        not elem.is_implicit_VR
        and elem.is_little_endian
        and bool(elem.VR)
        and elem.length != 0xFFFFFFFF
        and (value is None or isinstance(value, bytes))
        and len(value or b"") == elem.length
    )


def _header(tag: int, vr: str, length: int) -> bytes:
    pack, code = _PACKERS.get(vr) or _packer(vr)
    return pack(tag >> 16, tag & 0xFFFF, code, length)


def _packer(vr: str) -> tuple[Callable[..., bytes], bytes]:
    """The header layout of a VR (PS3.5 7.1.2: 4-byte length for these VRs, else 2), cached."""
    packer = (_LONG_HEADER.pack if vr in EXPLICIT_VR_LENGTH_32 else _SHORT_HEADER.pack, vr.encode())
    _PACKERS[vr] = packer
    return packer


_PACKERS: dict[str, tuple[Callable[..., bytes], bytes]] = {}


def _written(elem: DataElement, charset: object) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = _EXPLICIT_LE
    write_data_element(buffer, elem, charset if isinstance(charset, str) else list(charset))  # type: ignore[call-overload]
    return buffer.getvalue()


def decode_modified(data: bytes) -> Dataset:
    """The item of an encoded (0400,0550) element (vault payloads: GCM already authenticates them)."""
    return single_item(parse_sealed(data))


def parse_sealed(data: bytes) -> Dataset:
    """Parse decrypted or vault content (Explicit VR Little Endian); garbage is ``seal-tampered``."""
    quiet_pydicom()
    try:
        ds = read_dataset(BytesIO(data), *_EXPLICIT_LE)
        ds.get(MODIFIED_ATTRIBUTES)  # forces the sequence to parse now
    except Exception:  # noqa: BLE001 - garbage after a flipped bit: a typed, value-free error
        raise _tampered() from None
    return ds


def single_item(outer: Dataset) -> Dataset:
    """The single item of the (0400,0550) element of ``outer``; ``seal-content-invalid`` otherwise."""
    sequence = element_or_none(outer, MODIFIED_ATTRIBUTES)
    if sequence is None or sequence.VR != "SQ" or len(sequence.value) != 1:
        raise SealError(
            "the sealed content is not a Modified Attributes Sequence of one item",
            reference="seal-content-invalid",
            hint="the Encrypted Attributes Sequence was not made by a PS3.15 E.1.1 de-identifier",
        )
    item: Dataset = sequence.value[0]
    return item


def element_or_none(ds: Dataset, tag: int) -> DataElement | None:
    """``ds[tag]`` or None (pydicom's ``get`` is typed as never returning None)."""
    if tag not in ds:
        return None
    return ds[tag]


def _tampered() -> SealError:
    return SealError(
        "the sealed attributes fail their integrity check",
        reference="seal-tampered",
        hint="the file was altered after de-identification; restore it from a trusted copy",
    )

"""Fast DICOM encoder: raw elements are copied byte for byte, the rest goes through pydicom.

A de-identified data set is mostly made of pydicom ``RawDataElement``\\ s
copied unchanged from the input, plus a few new ``DataElement``\\ s and
sequences. pydicom's writer spends ~30 µs per element (a ``DicomBytesIO``
per element, encoding checks); this module writes the header of a raw
element with a precompiled :class:`struct.Struct` and appends its value
bytes as they are, collecting everything in one list joined at the end.

Rules, chosen to give the same bytes as ``pydicom.dcmwrite(...,
enforce_file_format=True)`` for a data set read from a file and written back
unchanged:

* Elements are written in ascending tag order; group lengths (gggg,0000) of
  groups above 0x0006 are dropped, as pydicom does.
* A ``RawDataElement`` read in the target encoding (same implicit/explicit
  VR, same endianness) is copied as is. An undefined-length raw element
  (encapsulated Pixel Data) holds its items without the Sequence
  Delimitation Item; the header gets length 0xFFFFFFFF and the delimiter is
  appended, exactly as pydicom's writer does.
* A raw element in another encoding (an implicit-VR item inside an explicit
  VR data set, ...), a deferred-read element, or one whose data set's
  *Specific Character Set* was changed after reading, is converted to a
  ``DataElement`` (ambiguous VRs corrected) and written by pydicom's
  ``write_data_element``: the few elements de-identification creates take
  this path too. The data set itself is not modified by conversion.
* Sequences (``DataElement`` with VR SQ) are encoded here, recursively.
  Length encoding follows pydicom: a sequence or item read with undefined
  length keeps it (``is_undefined_length`` /
  ``is_undefined_length_sequence_item``, closed with the delimitation
  items); everything else — in particular every new ``Sequence`` and new
  item ``Dataset`` — gets an explicit, computed length.
* The top-level (7FE0,0010) *Pixel Data* gets undefined length exactly when
  the transfer syntax is compressed (encapsulated), as in ``dcmwrite``.
* Side effects of ``dcmwrite`` reading elements are mirrored, so that the
  bytes match: it converts (and so re-encodes) the top-level *Pixel Data*
  (odd length padded, VR UN replaced), *SOP Class/Instance UID* (read for the
  File Meta: canonical NUL padding, VR UN replaced by UI) and every empty raw
  element whose raw value is ``None`` (explicit VR UN gets its dictionary VR).
* The preamble is always 128 zero bytes (a preamble may carry anything,
  e.g. a TIFF header with identifying data); the File Meta Information is
  completed the way pydicom's ``enforce_file_format=True`` does
  (version, implementation UID/name, media storage UIDs taken from the data
  set) and gets a computed (0002,0000) group length.
* Deflated Explicit VR Little Endian is deflated like pydicom (raw deflate,
  ``wbits=-15``, padded to even length). Data sets without a Transfer
  Syntax UID, or with a private one, are delegated to ``dcmwrite``.

Known differences from pydicom (all deliberate):

* Raw elements inside *new* data sets (``Dataset()`` built by the caller)
  are copied byte for byte. pydicom decodes and re-encodes every element of a
  data set without an original encoding, which can change padding or the
  text of a value whose character set it guesses wrongly. The caller is
  responsible for keeping the (0008,0005) *Specific Character Set* of a
  new data set consistent with the raw text elements it copies into it.
* The preamble (see above).

Failures raise :class:`~dicomcloak.errors.ProcessingError` with reference
``encode-failed`` and a message naming the element's tag (and the path of
sequence tags leading to it), never a value nor pydicom's message.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import cast

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr_element, write_data_element
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from dicomcloak.errors import ProcessingError
from dicomcloak.io._encode_binding import _NEVER, BOUNDARIES, mark
from dicomcloak.io._encode_charset import Charset, _charset_changed, _Context
from dicomcloak.io._encode_codec import (
    _AMBIGUOUS_VRS,
    _ASCII_STRING_VRS,
    _ASCII_TEXT_VRS,
    _CODECS,
    _EXPLICIT_LE,
    _LONG_VRS,
    _REFERENCE,
    _SLOW_PATH,
    _UNDEFINED,
    _ascii_string,
    _Codec,
    _EncodeError,
    _failure,
    _tag_text,
)
from dicomcloak.io._encode_meta import (
    _PREAMBLE,
    _as_dcmwrite_reads_it,
    _coalesced,
    _deflate,
    _encode_with_pydicom,
    _meta_elements,
    _uid_of,
)

__all__ = ["encode_dataset", "encode_file", "encode_file_parts"]

_PIXEL_DATA = 0x7FE00010
_SQ = "SQ"
_SOP_CLASS = 0x00080016
_SOP_INSTANCE = 0x00080018


# --------------------------------------------------------------------------- data sets


def _encode_items(
    ds: Dataset,
    codec: _Codec,
    out: list[bytes],
    parent_charset: Charset,
    ancestors: list[Dataset],
    pixel_undefined: bool | None,
    elements: Mapping[BaseTag, DataElement | RawDataElement] | None = None,
    marks: list[int] | None = None,
) -> None:
    """Append the encoding of the elements of `ds` (or of `elements`, on behalf of `ds`) to `out`.

    `pixel_undefined` is the length rule for a top-level (7FE0,0010)
    (``None`` inside sequence items and for plain data sets). `marks`, for a
    top-level data set only, receives the positions in `out` where the
    elements at and after (0400,0500) and (7FE0,0010) begin (see
    :mod:`._encode_binding`).
    """
    d = ds._dict if elements is None else elements
    implicit = codec.implicit
    little = codec.little
    tag_length = codec.tag_length.pack
    short_header = codec.short_header.pack
    long_header = codec.long_header.pack
    undefined_short_header = codec.undefined_short_header.pack
    sequence_delimiter = codec.sequence_delimiter
    long_vrs = _LONG_VRS
    append = out.append
    raw_ok = not _charset_changed(ds)
    context: _Context | None = None
    next_mark = _NEVER if marks is None else BOUNDARIES[0]

    # plain ints: BaseTag compares in Python, ~10x slower; keys are unique so values are never compared
    for tag, elem in sorted(zip(map(int, d), d.values(), strict=True)):
        if tag >= next_mark:  # one int comparison per element; true at most four times
            next_mark = mark(marks, tag, len(out))
        if not tag & 0xFFFF and tag >> 16 > 6:
            continue  # retired group length, not written (PS3.5 7.2)
        try:
            if isinstance(elem, RawDataElement):
                if pixel_undefined is not None and tag in (_SOP_CLASS, _SOP_INSTANCE):
                    elem = _as_dcmwrite_reads_it(elem)
                value = elem.value
                if (
                    raw_ok
                    and elem.is_implicit_VR == implicit
                    and elem.is_little_endian == little
                    # empty DS/IS/binary/UN values are None: pydicom's writer converts those,
                    # which only changes the bytes of an explicit UN (to the dictionary VR)
                    and (value is not None or (elem.length == 0 and (implicit or elem.VR != "UN")))
                ):
                    value = value or b""
                    length = len(value)
                    undefined = elem.length == _UNDEFINED
                    if tag == _PIXEL_DATA and pixel_undefined is not None:
                        # dcmwrite converts the top-level Pixel Data: odd values get padded,
                        # VR UN becomes OB/OW
                        fast = undefined is pixel_undefined and not length & 1 and elem.VR != "UN"
                        if fast and undefined and not value.startswith(codec.item_tag_prefix):
                            raise ValueError("not encapsulated")  # as pydicom's writer
                    elif tag == _PIXEL_DATA and undefined:
                        fast = value.startswith(codec.item_tag_prefix)
                        if not fast:
                            raise ValueError("not encapsulated")  # as pydicom's writer
                    else:
                        fast = True
                    vr = elem.VR
                    if not fast:
                        pass
                    elif implicit:
                        append(tag_length(tag >> 16, tag & 0xFFFF, _UNDEFINED if undefined else length))
                        append(value)
                        if undefined:
                            append(sequence_delimiter)
                        continue
                    elif isinstance(vr, str) and len(vr) == 2:
                        vrb = vr.encode("latin-1")  # as pydicom: bytes(vr, default_encoding)
                        if undefined:
                            if vr in long_vrs:
                                append(long_header(tag >> 16, tag & 0xFFFF, vrb, _UNDEFINED))
                            else:  # what pydicom writes: no reserved bytes
                                append(undefined_short_header(tag >> 16, tag & 0xFFFF, vrb, _UNDEFINED))
                            append(value)
                            append(sequence_delimiter)
                            continue
                        if vr in long_vrs:
                            append(long_header(tag >> 16, tag & 0xFFFF, vrb, length))
                            append(value)
                            continue
                        if length <= 0xFFFF:
                            append(short_header(tag >> 16, tag & 0xFFFF, vrb, length))
                            append(value)
                            continue
                # slow path: convert without touching `ds`
                if context is None:
                    context = _Context(ds, parent_charset, ancestors)
                original = cast(RawDataElement, d[BaseTag(tag)]) if elem.length == _SLOW_PATH else elem
                if original.value is None and original.length != 0:
                    converted = ds[tag]  # deferred read: pydicom reads and converts it in place
                else:
                    converted = convert_raw_data_element(original, encoding=context.decode_charset, ds=ds)
                _encode_element(ds, converted, codec, out, context, pixel_undefined, fresh=True)
            else:
                if context is None:
                    context = _Context(ds, parent_charset, ancestors)
                _encode_element(ds, elem, codec, out, context, pixel_undefined, fresh=False)
        except _EncodeError as exc:
            exc.path.insert(0, tag)
            raise
        except Exception:  # noqa: BLE001 - any pydicom failure becomes a typed, value-free error
            raise _EncodeError(tag) from None


def _encode_element(
    ds: Dataset,
    elem: DataElement,
    codec: _Codec,
    out: list[bytes],
    context: _Context,
    pixel_undefined: bool | None,
    *,
    fresh: bool,
) -> None:
    """Encode a ``DataElement`` of `ds`; `fresh` if it is a private copy we may modify."""
    vr = elem.VR
    if vr == _SQ:
        _encode_sequence(elem, codec, out, context)
        return
    padding = _ASCII_STRING_VRS.get(vr)
    text_vr = padding is None and vr in _ASCII_TEXT_VRS
    if text_vr:
        padding = _ASCII_TEXT_VRS[vr]
    if padding is not None and not elem.is_undefined_length:
        data = _ascii_string(elem, padding, ascii_only=text_vr)
        if data is not None and (codec.implicit or len(data) <= 0xFFFF):
            tag = elem.tag
            if codec.implicit:
                out.append(codec.tag_length.pack(tag >> 16, tag & 0xFFFF, len(data)))
            else:
                out.append(codec.short_header.pack(tag >> 16, tag & 0xFFFF, vr.encode(), len(data)))
            out.append(data)
            return
    if vr in _AMBIGUOUS_VRS:
        if not fresh:
            elem = copy.copy(elem)
            fresh = True
        try:
            correct_ambiguous_vr_element(elem, ds, codec.little, [ds, *context.ancestors])
        except AttributeError:
            if not codec.implicit:
                raise  # explicit VR needs the VR; implicit VR can be written uncorrected
    if (
        elem.tag == _PIXEL_DATA
        and pixel_undefined is not None
        and elem.is_undefined_length != pixel_undefined
    ):
        if not fresh:
            elem = copy.copy(elem)
        elem.is_undefined_length = pixel_undefined
    fp = DicomBytesIO()
    fp.is_implicit_VR = codec.implicit
    fp.is_little_endian = codec.little
    write_data_element(fp, elem, cast("str | list[str] | None", context.write_charset))
    out.append(fp.getvalue())


def _encode_sequence(elem: DataElement, codec: _Codec, out: list[bytes], context: _Context) -> None:
    """Encode a sequence and its items; lengths as described in the module docstring."""
    charset = context.write_charset
    items_charset: Charset = convert_encodings(charset or [default_encoding])
    parts: list[bytes] = []
    tag_length = codec.tag_length.pack
    for item in elem.value or ():
        body: list[bytes] = []
        _encode_items(item, codec, body, items_charset, [item, *context.ancestors], None)
        encoded = b"".join(body)
        if getattr(item, "is_undefined_length_sequence_item", False):
            parts.append(tag_length(0xFFFE, 0xE000, _UNDEFINED))
            parts.append(encoded)
            parts.append(codec.item_delimiter)
        else:
            parts.append(tag_length(0xFFFE, 0xE000, len(encoded)))
            parts.append(encoded)
    tag = elem.tag
    undefined = elem.is_undefined_length
    length = _UNDEFINED if undefined else sum(map(len, parts))
    if codec.implicit:
        out.append(tag_length(tag >> 16, tag & 0xFFFF, length))
    else:
        out.append(codec.long_header.pack(tag >> 16, tag & 0xFFFF, b"SQ", length))
    out.extend(parts)
    if undefined:
        out.append(codec.sequence_delimiter)


def _encode_body(
    ds: Dataset, codec: _Codec, pixel_undefined: bool | None, marks: list[int] | None = None
) -> list[bytes]:
    """Encode `ds` as a list of byte strings (joined by the caller, or written as they are).

    The outermost data set's own character set context starts at the default.
    """
    out: list[bytes] = []
    _encode_items(ds, codec, out, default_encoding, [], pixel_undefined, marks=marks)
    return out


def encode_dataset(ds: Dataset, implicit_vr: bool, little_endian: bool) -> bytes:
    """Return the elements of `ds` encoded in the given encoding (no preamble, no File Meta).

    Raises
    ------
    ProcessingError
        ``encode-failed``, naming the tag of the element that failed.
    """
    codec = _CODECS.get((implicit_vr, little_endian))
    if codec is None:
        raise ProcessingError("implicit VR big endian is not a DICOM encoding", reference=_REFERENCE)
    try:
        return b"".join(_encode_body(ds, codec, None))
    except _EncodeError as exc:
        raise _failure(exc) from None
    except RecursionError:
        raise ProcessingError("cannot encode: sequences nested too deeply", reference=_REFERENCE) from None


# --------------------------------------------------------------------------- files


def _file_meta(ds: Dataset) -> bytes:
    """Encode the File Meta Information group as ``dcmwrite(enforce_file_format=True)`` would."""
    meta = _meta_elements(ds)
    parts: list[bytes] = []
    _encode_items(ds.file_meta, _EXPLICIT_LE, parts, default_encoding, [], None, meta)
    body = b"".join(parts)
    group_length = _EXPLICIT_LE.short_header.pack(0x0002, 0x0000, b"UL", 4) + _EXPLICIT_LE.uint32.pack(
        len(body)
    )
    return group_length + body


def encode_file(ds: Dataset) -> bytes:
    """Return `ds` as a DICOM Part 10 file: preamble, ``DICM``, File Meta Information, data set.

    The data set is encoded in ``ds.file_meta.TransferSyntaxUID``.

    Raises
    ------
    ProcessingError
        ``encode-failed``, naming the tag of the element that failed.
    """
    return b"".join(encode_file_parts(ds))


def encode_file_parts(ds: Dataset) -> list[bytes]:
    """As :func:`encode_file`, as a list of byte strings to write one after the other.

    Writing the parts (``writev``) instead of joining them saves a copy of
    the pixel data, the bulk of a large file; the many small parts around it
    (one or more per element) are joined (see :func:`_coalesced`).
    """
    return _encode_file(ds, None)[0]


def _syntax(ds: Dataset) -> UID | None:
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is None:
        return None
    try:
        ts_text = _uid_of(file_meta._dict.get(BaseTag(0x00020010)))
    except Exception:  # noqa: BLE001 - an unreadable syntax is an encode failure
        raise ProcessingError("cannot encode: unreadable (0002,0010)", reference=_REFERENCE) from None
    return UID(ts_text) if ts_text else None


def _encode_file(
    ds: Dataset, marks: list[int] | None, insert: Callable[[list[bytes], _Codec], None] | None = None
) -> tuple[list[bytes], list[bytes] | None, bool]:
    """The file's parts; with `marks`, also the data set's parts before deflating, and whether implicit VR.

    The body is None when the data set goes through pydicom (no or a private transfer syntax).
    `insert` may change the body's parts before they are deflated and joined (an embedded seal).
    """
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is None:
        raise ProcessingError(
            "cannot encode: the data set has no File Meta Information", reference=_REFERENCE
        )
    for tag in ds._dict:
        if tag >> 16 in (0x0000, 0x0002):
            raise ProcessingError(
                f"cannot encode: element {_tag_text(tag)} does not belong in the data set",
                reference=_REFERENCE,
            )
    tsyntax = _syntax(ds)
    if tsyntax is None or not tsyntax.is_transfer_syntax or tsyntax.is_private:
        return [_encode_with_pydicom(ds)], None, False
    codec = _CODECS.get((tsyntax.is_implicit_VR, tsyntax.is_little_endian))
    if codec is None:
        raise ProcessingError("cannot encode: invalid transfer syntax", reference=_REFERENCE)
    try:
        meta = _file_meta(ds)
        body = _encode_body(ds, codec, tsyntax.is_compressed, marks)
        if insert is not None:
            insert(body, codec)
    except _EncodeError as exc:
        raise _failure(exc) from None
    except RecursionError:
        raise ProcessingError("cannot encode: sequences nested too deeply", reference=_REFERENCE) from None
    written = _deflate(body) if tsyntax == DeflatedExplicitVRLittleEndian else body
    return _coalesced([_PREAMBLE, meta, *written]), body, codec.implicit

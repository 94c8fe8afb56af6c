"""The binding digest: what ties a vault record to the one output it was made for (architecture.md, 3).

It is SHA-256 over the data set as encoded in its transfer syntax (File Meta
excluded; a deflated data set before deflating), without two top-level
elements:

* the Encrypted Attributes Sequence (0400,0500), whole: the embedded seal
  (PS3.15 E.1.1) can then carry this same digest (bound embedded seals);
* the *value* of Pixel Data (7FE0,0010): its tag, VR and length stay in, so a
  changed size or frame count shows, while hashing the pixels (the bulk of a
  file) is spared; identity lives in the header, and a pixel redaction seal
  carries its own digest. For encapsulated Pixel Data the value left out is
  its items and the Sequence Delimitation Item.

De-identification takes it from the parts the encoder makes for the output
(:func:`encode_file_bound`: no second encoding; the encoder marks where the
two elements lie, :mod:`._encode_binding`); an embedded seal, which carries
the digest of the very data set it is added to, is made from the digest and
spliced in where the marks say (:func:`encode_file_sealed`), still one
encoding. Re-identification takes it from the file as read
(:func:`binding_digest`). The encoder copies the elements it reads
byte for byte, so both agree on an unchanged output and disagree as soon as
one header byte differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dicomcloak.errors import ProcessingError
from dicomcloak.io._encode_binding import BOUNDARIES
from dicomcloak.io._encode_codec import (
    _CODECS,
    _EXPLICIT_LE,
    _LONG_VRS,
    _REFERENCE,
    _Codec,
    _EncodeError,
    _failure,
)
from dicomcloak.io.encode import _encode_body, _encode_file, _encode_items, _syntax, encode_file_parts

__all__ = ["binding_digest", "binding_of", "encode_file_bound", "encode_file_sealed"]

_ENCRYPTED_ATTRIBUTES = BaseTag(BOUNDARIES[0])

_LONG = frozenset(vr.encode("ascii") for vr in _LONG_VRS)


def encode_file_bound(ds: Dataset) -> tuple[list[bytes], bytes]:
    """:func:`~dicomcloak.io.encode.encode_file_parts` and the data set's binding digest, from one encoding.

    The digest is taken from the parts as the encoder makes them (before
    deflating or joining): binding costs a hash of the header, not a second
    encoding. A data set the fast encoder hands to pydicom (no or a private
    transfer syntax) is digested by :func:`binding_digest`.

    Raises
    ------
    ProcessingError
        ``encode-failed``.
    """
    marks: list[int] = []
    parts, body, implicit = _encode_file(ds, marks)
    return parts, (binding_digest(ds) if body is None else binding_of(body, marks, implicit))


def encode_file_sealed(ds: Dataset, seal: Callable[[bytes], DataElement]) -> tuple[list[bytes], bytes]:
    """The file's parts with the Encrypted Attributes Sequence ``seal(digest)`` in it, and the digest.

    The digest is taken from the parts the encoder made (without (0400,0500),
    by definition), then the element ``seal`` returns is encoded in the data
    set's transfer syntax and put where (0400,0500) belongs, replacing any
    there, before the parts are deflated or joined: the bytes are those of
    encoding the data set with the element in it. ``ds`` gains the element
    only when pydicom's writer encodes it (no or a private transfer syntax).

    Raises
    ------
    ProcessingError
        ``encode-failed``; what ``seal`` raises propagates.
    """
    marks: list[int] = []
    digests: list[bytes] = []

    def insert(body: list[bytes], codec: _Codec) -> None:
        digest = binding_of(body, marks, codec.implicit)
        element: list[bytes] = []
        _encode_items(ds, codec, element, default_encoding, [], None, {_ENCRYPTED_ATTRIBUTES: seal(digest)})
        start, end = (*marks, len(body), len(body))[:2]  # where (0400,0500) is or belongs, see binding_of
        body[start:end] = element
        digests.append(digest)

    parts, body, _ = _encode_file(ds, marks, insert)
    if body is not None:
        return parts, digests[0]
    digest = binding_digest(ds)
    ds._dict[_ENCRYPTED_ATTRIBUTES] = seal(digest)  # noqa: SLF001 - the caller's fresh data set
    return encode_file_parts(ds), digest


def binding_digest(ds: Dataset) -> bytes:
    """The binding digest of `ds` (see the module docstring), encoded in its transfer syntax.

    A data set without a transfer syntax the fast encoder writes is digested
    as Explicit VR Little Endian.

    Raises
    ------
    ProcessingError
        ``encode-failed``.
    """
    tsyntax = _syntax(ds)
    known = tsyntax is not None and tsyntax.is_transfer_syntax and not tsyntax.is_private
    codec = _EXPLICIT_LE
    if tsyntax is not None and known:
        codec = _CODECS.get((tsyntax.is_implicit_VR, tsyntax.is_little_endian), _EXPLICIT_LE)
    marks: list[int] = []
    try:
        body = _encode_body(ds, codec, bool(known and tsyntax and tsyntax.is_compressed), marks)
    except _EncodeError as exc:
        raise _failure(exc) from None
    except RecursionError:
        raise ProcessingError("cannot encode: sequences nested too deeply", reference=_REFERENCE) from None
    return binding_of(body, marks, codec.implicit)


def binding_of(body: list[bytes], marks: list[int], implicit: bool) -> bytes:
    """The binding digest of a data set encoded as `body`, given the positions the encoder marked."""
    eas, after_eas, pixel, after_pixel = (*marks, *[len(body)] * (len(BOUNDARIES) - len(marks)))
    kept = [*body[:eas], *body[after_eas:pixel]]
    if after_pixel > pixel:
        kept.append(_header(body[pixel:after_pixel], implicit))
    kept.extend(body[after_pixel:])
    return hashlib.sha256(b"".join(kept)).digest()


def _header(parts: list[bytes], implicit: bool) -> bytes:
    """The element header (tag, VR, length) of the Pixel Data element encoded as `parts`.

    The fast path writes the header as a part of its own; pydicom's writer
    (the slow path) writes the element as one part, whose header is 8 bytes,
    or 12 for an explicit VR with a 4-byte length (PS3.5 7.1.2).
    """
    if len(parts) > 1:
        return parts[0]
    first = parts[0]
    return first[:12] if not implicit and first[4:6] in _LONG else first[:8]

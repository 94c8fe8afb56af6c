"""The plaintext of an embedded seal: the Modified Attributes Sequence, then what binds and authenticates it.

PS3.15 E.1.1 step 4 encrypts a data set whose single item of the Modified
Attributes Sequence (0400,0550) holds the originals. The CMS envelope is
AES-CBC (what the standard and ``gdcmanon`` use): not authenticated, and made
by anyone holding the owner's public certificate. So after the (0400,0550)
element a dicomcloak seal carries a private block (PS3.5 7.8.1), Explicit VR
Little Endian, creator ``DICOMCLOAK SEAL 2`` in (0401,0010)::

    (0401,1001) UI  SOP Instance UID of the de-identified instance the seal sits in
    (0401,1002) OB  its binding digest (dicomcloak.io.binding: the data set without
                    (0400,0500) and without the Pixel Data value)
    (0401,1003) OB  sealer fingerprint, SHA-256 of its public key   } when signed
    (0401,1004) OB  signature over "dicomcloak/seal/v2" NUL and     } (keys.sealing)
                    every byte before (0401,1004)
    (0401,1005) OB  SHA-256 of every byte before (0401,1005): the integrity check

GDCM's re-identifier (``Anonymizer::BasicApplicationLevelConfidentialityProfile2``)
reads the first element of the decrypted content and nothing after it, so
``gdcmanon -d`` restores our seals and checks none of this. Seals of the
first version (creator ``DICOMCLOAK SEAL 1``, (0401,1001) SHA-256 of the
(0400,0550) element) carry an integrity check only; content from other
tools carries nothing. Both still decode, as unbound and unauthenticated.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Protocol

from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dicomcloak.engine.originals import parse_sealed, single_item
from dicomcloak.errors import SealError

__all__ = [
    "SEAL_CREATOR",
    "SIGNATURE_LABEL",
    "SealContent",
    "Signer",
    "decode_sealed",
    "encode_sealed",
    "encode_sealed_v1",
]

#: The private creator of the seal's block, this version and the first (PS3.5 7.8.1).
SEAL_CREATOR = "DICOMCLOAK SEAL 2"
_CREATOR_V1 = "DICOMCLOAK SEAL 1"
_CREATOR_TAG = 0x04010010
_V1_DIGEST = 0x04011001  # the first version's only element: SHA-256 of the (0400,0550) element
_INSTANCE, _BINDING, _SEALER, _SIGNATURE, _DIGEST = 0x04011001, 0x04011002, 0x04011003, 0x04011004, 0x04011005
#: Domain separation: a seal signature can never be taken for a signature of anything else.
SIGNATURE_LABEL = b"dicomcloak/seal/v2\x00"

_SHORT = struct.Struct("<HH2sH")
_LONG = struct.Struct("<HH2s2xL")
_MODIFIED_HEADER = _LONG.pack(0x0400, 0x0550, b"SQ", 0)[:8]  # (0400,0550) SQ, reserved bytes


class Signer(Protocol):
    """What signs a seal (:class:`dicomcloak.keys.sealing.SealerKey`)."""

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the sealer's public key."""

    def sign(self, message: bytes) -> bytes:
        """A signature over ``message`` (even length)."""


@dataclass(frozen=True)
class SealContent:
    """A decrypted seal, its integrity checked; what it claims is checked by the caller.

    ``version``: 2 (bound, maybe signed), 1 (integrity check only) or 0 (no
    dicomcloak block: another tool's). ``signed``: the bytes the signature
    covers, label included.
    """

    item: Dataset
    version: int
    instance: str = ""
    binding: bytes = b""
    sealer: bytes = b""
    signature: bytes = b""
    signed: bytes = b""


def _creator(text: str) -> bytes:
    value = text.encode("ascii") + b" " * (len(text) % 2)  # LO padded to even length
    return _SHORT.pack(0x0401, 0x0010, b"LO", len(value)) + value


def _ob(tag: int, value: bytes) -> bytes:
    return _LONG.pack(tag >> 16, tag & 0xFFFF, b"OB", len(value)) + value


def _ui(tag: int, value: bytes) -> bytes:
    return _SHORT.pack(tag >> 16, tag & 0xFFFF, b"UI", len(value)) + value


_CREATOR_V2_ELEMENT = _creator(SEAL_CREATOR)
_CREATOR_V1_ELEMENT = _creator(_CREATOR_V1)


def _uid_value(uid: str) -> bytes:
    value = uid.encode("ascii")
    return value + b"\x00" * (len(value) % 2)  # UI padded with NUL (PS3.5 6.2)


def encode_sealed(modified: bytes, instance: str, binding: bytes, signer: Signer | None = None) -> bytes:
    """The plaintext sealing ``modified`` (an encoded (0400,0550)), bound to ``instance`` and ``binding``."""
    return _assemble(modified, _uid_value(instance), binding, signer)


def _assemble(modified: bytes, uid: bytes, binding: bytes, signer: Signer | None) -> bytes:
    head = modified + _CREATOR_V2_ELEMENT + _ui(_INSTANCE, uid) + _ob(_BINDING, binding)
    if signer is not None:
        head += _ob(_SEALER, signer.fingerprint)
        head += _ob(_SIGNATURE, signer.sign(SIGNATURE_LABEL + head))
    return head + _ob(_DIGEST, hashlib.sha256(head).digest())


def encode_sealed_v1(modified: bytes) -> bytes:
    """The plaintext of a seal of the first version (integrity check only): for tests of old seals."""
    return modified + _CREATOR_V1_ELEMENT + _ob(_V1_DIGEST, hashlib.sha256(modified).digest())


def decode_sealed(plaintext: bytes) -> SealContent:
    """Parse decrypted content; check its integrity when it has a check (versions 1 and 2).

    Raises
    ------
    SealError
        ``seal-content-invalid`` (not a Modified Attributes Sequence of one
        item), ``seal-tampered`` (the integrity check or the layout does not match).
    """
    outer = parse_sealed(plaintext)
    item = single_item(outer)
    if len(outer._dict) == 1:  # noqa: SLF001 - the (0400,0550) element alone: another tool's content
        return SealContent(item, 0)
    # Anything after (0400,0550) must be exactly one of our layouts: a damaged creator must not
    # pass for another tool's content (it would skip the checks below).
    name = _raw(outer, _CREATOR_TAG).rstrip(b" \x00")
    if name == SEAL_CREATOR.encode("ascii"):
        return _decode_v2(plaintext, outer, item)
    modified = plaintext[: len(plaintext) - len(encode_sealed_v1(b""))]
    if name != _CREATOR_V1.encode("ascii") or not hmac.compare_digest(encode_sealed_v1(modified), plaintext):
        raise _tampered()
    return SealContent(item, 1)


def _decode_v2(plaintext: bytes, outer: Dataset, item: Dataset) -> SealContent:
    """Rebuild the plaintext from its parts: any byte out of place, or a wrong digest, is tampering."""
    if not plaintext.startswith(_MODIFIED_HEADER):
        raise _tampered()
    modified = plaintext[: 12 + int.from_bytes(plaintext[8:12], "little")]
    uid, binding = _raw(outer, _INSTANCE), _raw(outer, _BINDING)
    sealer, signature = _raw(outer, _SEALER), _raw(outer, _SIGNATURE)
    head = modified + _CREATOR_V2_ELEMENT + _ui(_INSTANCE, uid) + _ob(_BINDING, binding)
    signed = b""
    if _SEALER in outer or _SIGNATURE in outer:
        head += _ob(_SEALER, sealer)
        signed = SIGNATURE_LABEL + head
        head += _ob(_SIGNATURE, signature)
    expected = head + _ob(_DIGEST, hashlib.sha256(head).digest())
    if not hmac.compare_digest(expected, plaintext):
        raise _tampered()
    instance = uid.rstrip(b"\x00 ").decode("ascii", "replace")
    return SealContent(item, 2, instance, binding, sealer, signature, signed)


def _raw(outer: Dataset, tag: int) -> bytes:
    """The value bytes of a private element as sealed (never converted), or empty."""
    elem = outer._dict.get(BaseTag(tag))  # noqa: SLF001 - the raw element, as read
    value = getattr(elem, "value", b"")
    return value if isinstance(value, bytes) else b""


def _tampered() -> SealError:
    return SealError(
        "the sealed attributes fail their integrity check",
        reference="seal-tampered",
        hint="the file was altered after de-identification; restore it from a trusted copy",
    )


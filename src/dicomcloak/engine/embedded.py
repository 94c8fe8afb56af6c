"""The Encrypted Attributes Sequence (0400,0500): originals sealed in the file (PS3.15 E.1.1/E.1.2).

One item, Encrypted Content Transfer Syntax UID (0400,0510) Explicit VR Little
Endian, Encrypted Content (0400,0520) a CMS EnvelopedData to every recipient
certificate. Several recipients share one item (one RecipientInfo each), so
any of their private keys restores the file; items made by other tools
(several of them, PS3.15 E.1.1 step 1 allows it) are tried in turn.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceT

from cryptography import x509
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian

from dicomcloak.engine.originals import decode_sealed, element_or_none, encode_sealed
from dicomcloak.errors import SealError
from dicomcloak.keys.cms import Envelope, OwnerKey, open_envelope
from dicomcloak.raw import new_dataset

__all__ = ["ENCRYPTED_ATTRIBUTES", "embed", "open_embedded"]

ENCRYPTED_ATTRIBUTES = 0x04000500
_TRANSFER_SYNTAX = 0x04000510
_CONTENT = 0x04000520
_EXPLICIT_LE = (False, True)


def embed(out: Dataset, modified: bytes, recipients: SequenceT[x509.Certificate] | Envelope) -> None:
    """Add the Encrypted Attributes Sequence sealing ``modified`` (an encoded (0400,0550)) to ``out``.

    ``recipients`` are certificates, or an :class:`~dicomcloak.keys.cms.Envelope`
    made once for them (a batch seals every file to the same recipients).

    ``out`` is the de-identified data set, freshly built by the engine and not
    yet shared, so adding one element to it in place is safe.
    """
    envelope = recipients if isinstance(recipients, Envelope) else Envelope(recipients)
    ciphertext = envelope.seal(encode_sealed(modified))
    if len(ciphertext) % 2:
        ciphertext += b"\x00"  # OB values have even length (PS3.5 7.1.1); the DER length ends it
    # Raw Explicit VR Little Endian elements: the encoder copies them as they are (converting
    # them only for an output in another transfer syntax).
    item = new_dataset(
        {BaseTag(_TRANSFER_SYNTAX): _SYNTAX_ELEMENT, BaseTag(_CONTENT): _raw(_CONTENT, "OB", ciphertext)},
        *_EXPLICIT_LE,
        "iso8859",
    )
    out._dict[BaseTag(ENCRYPTED_ATTRIBUTES)] = DataElement(  # noqa: SLF001 - a fresh element, no checks needed
        ENCRYPTED_ATTRIBUTES, "SQ", Sequence([item])
    )


def _raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    return RawDataElement(BaseTag(tag), vr, len(value), value, 0, False, True, True, False)


_SYNTAX_ELEMENT = _raw(_TRANSFER_SYNTAX, "UI", str(ExplicitVRLittleEndian).encode("ascii") + b"\x00")


def open_embedded(ds: Dataset, owner: OwnerKey, *, accept_unverified: bool = False) -> tuple[Dataset, bool]:
    """Decrypt the Modified Attributes item sealed in ``ds``; return it and whether it was verified.

    Raises
    ------
    SealError
        ``seal-missing`` (no Encrypted Attributes Sequence), ``seal-wrong-key``,
        ``seal-tampered``, ``seal-unverified``, ``seal-content-invalid``.
    """
    items = _items(ds)
    wrong_key: SealError | None = None
    for item in items:
        if _TRANSFER_SYNTAX not in item or _CONTENT not in item:
            continue
        syntax, content = item[_TRANSFER_SYNTAX], item[_CONTENT]
        if str(syntax.value) != ExplicitVRLittleEndian:
            continue  # PS3.15 E.1.2: a re-identifier may skip items it cannot decode
        try:
            plaintext = open_envelope(bytes(content.value), owner)
        except SealError as error:
            if error.reference != "seal-wrong-key":
                raise
            wrong_key = error
            continue
        return decode_sealed(plaintext, require_check=not accept_unverified)
    if wrong_key is not None:
        raise wrong_key
    raise _missing()


def _items(ds: Dataset) -> list[Dataset]:
    try:
        element = element_or_none(ds, ENCRYPTED_ATTRIBUTES)
        items = list(element.value or []) if element is not None and element.VR == "SQ" else []
    except Exception:  # noqa: BLE001 - a damaged sequence is a tampered seal, reported without values
        raise SealError(
            "the Encrypted Attributes Sequence cannot be read",
            reference="seal-tampered",
            hint="the file was altered after de-identification; restore it from a trusted copy",
        ) from None
    if not items:
        raise _missing()
    return items


def _missing() -> SealError:
    return SealError(
        "the file holds no Encrypted Attributes Sequence this tool can open",
        reference="seal-missing",
        hint="it was de-identified without --recipient; re-identify it from the vault (--vault) instead",
    )

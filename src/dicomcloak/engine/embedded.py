"""The Encrypted Attributes Sequence (0400,0500): originals sealed in the file (PS3.15 E.1.1/E.1.2).

One item, Encrypted Content Transfer Syntax UID (0400,0510) Explicit VR
Little Endian, Encrypted Content (0400,0520) a CMS EnvelopedData to every
recipient certificate. Several recipients share one item (one RecipientInfo
each), so any of their private keys restores the file; items made by other
tools (several of them, PS3.15 E.1.1 step 1 allows it) are tried in turn.

A seal is bound to the instance it sits in and signed by its sealer
(:mod:`dicomcloak.engine.sealcontent`); :func:`open_embedded` restores
nothing that is not both, unless the owner accepts unverified seals, and
never a seal made for another instance.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence as SequenceT
from dataclasses import dataclass

from cryptography import x509
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian

from dicomcloak.engine.originals import element_or_none
from dicomcloak.engine.sealcontent import SealContent, Signer, decode_sealed, encode_sealed
from dicomcloak.errors import SealError
from dicomcloak.keys.cms import Envelope, OwnerKey, open_envelope
from dicomcloak.keys.sealing import TrustedSealers
from dicomcloak.raw import new_dataset

__all__ = ["ENCRYPTED_ATTRIBUTES", "OpenedSeal", "embed", "open_embedded", "seal_element"]

ENCRYPTED_ATTRIBUTES = 0x04000500
_TRANSFER_SYNTAX = 0x04000510
_CONTENT = 0x04000520
_SOP_INSTANCE = 0x00080018
_EXPLICIT_LE = (False, True)


def seal_element(
    modified: bytes,
    recipients: SequenceT[x509.Certificate] | Envelope,
    *,
    instance: str,
    binding: bytes,
    signer: Signer | None = None,
) -> DataElement:
    """The Encrypted Attributes Sequence sealing ``modified`` (an encoded (0400,0550)).

    ``instance`` and ``binding`` are the SOP Instance UID and the binding
    digest of the de-identified data set the element will be added to;
    ``signer`` signs the seal (unsigned seals are refused by default on
    re-identification). ``recipients`` are certificates, or an
    :class:`~dicomcloak.keys.cms.Envelope` made once for them (a batch seals
    every file to the same recipients).
    """
    envelope = recipients if isinstance(recipients, Envelope) else Envelope(recipients)
    ciphertext = envelope.seal(encode_sealed(modified, instance, binding, signer))
    if len(ciphertext) % 2:
        ciphertext += b"\x00"  # OB values have even length (PS3.5 7.1.1); the DER length ends it
    # Raw Explicit VR Little Endian elements: the encoder copies them as they are (converting
    # them only for an output in another transfer syntax).
    item = new_dataset(
        {BaseTag(_TRANSFER_SYNTAX): _SYNTAX_ELEMENT, BaseTag(_CONTENT): _raw(_CONTENT, "OB", ciphertext)},
        *_EXPLICIT_LE,
        "iso8859",
    )
    return DataElement(ENCRYPTED_ATTRIBUTES, "SQ", Sequence([item]))


def embed(
    out: Dataset,
    modified: bytes,
    recipients: SequenceT[x509.Certificate] | Envelope,
    *,
    binding: bytes,
    signer: Signer | None = None,
) -> None:
    """Add the Encrypted Attributes Sequence to ``out``, bound to its SOP Instance UID and ``binding``.

    ``out`` is the de-identified data set, freshly built by the engine and not
    yet shared, so adding one element to it in place is safe; ``binding`` is
    its binding digest, taken before the element is added.
    """
    element = seal_element(modified, recipients, instance=_instance(out), binding=binding, signer=signer)
    out._dict[BaseTag(ENCRYPTED_ATTRIBUTES)] = element  # noqa: SLF001 - a fresh element, no checks needed


def _raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    return RawDataElement(BaseTag(tag), vr, len(value), value, 0, False, True, True, False)


_SYNTAX_ELEMENT = _raw(_TRANSFER_SYNTAX, "UI", str(ExplicitVRLittleEndian).encode("ascii") + b"\x00")


@dataclass(frozen=True)
class OpenedSeal:
    """An opened seal: the Modified Attributes item, and what was proven about it.

    ``verified``: signed by a trusted sealer (``sealer``, its fingerprint);
    ``bound``: made for this very instance (its SOP Instance UID and binding
    digest matched). Unverified or unbound seals are only ever returned when
    the caller accepts unverified seals.
    """

    item: Dataset
    verified: bool
    bound: bool
    sealer: bytes = b""


def open_embedded(
    ds: Dataset,
    owner: OwnerKey,
    *,
    binding: Callable[[], bytes],
    trusted: TrustedSealers | None = None,
    accept_unverified: bool = False,
) -> OpenedSeal:
    """Decrypt the seal in ``ds``; check it was made for ``ds`` and by a trusted sealer.

    ``binding`` computes the binding digest of ``ds`` as read (called only for
    a seal that carries one). Checked in this order: integrity, binding (a
    seal made for another instance is refused whatever else holds), then the
    sealer's signature.

    Raises
    ------
    SealError
        ``seal-missing`` (no Encrypted Attributes Sequence), ``seal-wrong-key``,
        ``seal-tampered``, ``seal-content-invalid``, ``seal-mismatch`` (made for
        another instance), ``seal-signature-invalid`` (a trusted sealer's name
        with a signature it did not make), ``seal-unverified`` (unsigned, an
        untrusted sealer, or no binding, without ``accept_unverified``).
    """
    content = decode_sealed(_decrypt(ds, owner))
    bound = content.version == 2
    if bound and (content.instance != _instance(ds) or content.binding != binding()):
        raise SealError(
            "the seal was made for another instance: its SOP Instance UID or binding digest differs",
            reference="seal-mismatch",
            hint="the Encrypted Attributes Sequence was copied from another file, or the file changed "
            "after de-identification; nothing was restored",
        )
    if content.sealer and trusted is not None and trusted.knows(content.sealer):
        if not trusted.verify(content.sealer, content.signature, content.signed):
            raise SealError(
                f"the seal names trusted sealer {content.sealer.hex()[:16]} but its signature is not theirs",
                reference="seal-signature-invalid",
                hint="the seal was forged or altered; nothing was restored",
            )
        return OpenedSeal(content.item, True, True, content.sealer)
    if not accept_unverified:
        raise _unverified(content)
    return OpenedSeal(content.item, False, bound)


def _decrypt(ds: Dataset, owner: OwnerKey) -> bytes:
    """The decrypted content of the first item addressed to ``owner``."""
    wrong_key: SealError | None = None
    for item in _items(ds):
        if _TRANSFER_SYNTAX not in item or _CONTENT not in item:
            continue
        syntax, content = item[_TRANSFER_SYNTAX], item[_CONTENT]
        if str(syntax.value) != ExplicitVRLittleEndian:
            continue  # PS3.15 E.1.2: a re-identifier may skip items it cannot decode
        try:
            return open_envelope(bytes(content.value), owner)
        except SealError as error:
            if error.reference != "seal-wrong-key":
                raise
            wrong_key = error
    if wrong_key is not None:
        raise wrong_key
    raise _missing()


def _unverified(content: SealContent) -> SealError:
    why = {
        0: "carries no dicomcloak integrity check, binding or signature (made by another tool?)",
        1: "carries an integrity check only: it was made before seals were bound and signed",
    }.get(content.version, "is not signed")
    if content.sealer:
        why = f"is signed by sealer {content.sealer.hex()[:16]}, which is not among the trusted sealers"
    return SealError(
        f"the seal {why}",
        reference="seal-unverified",
        hint="pass the sealer's certificate with --trusted-sealer, or --accept-unverified to restore "
        "a seal whose maker cannot be checked",
    )


def _instance(ds: Dataset) -> str:
    """The SOP Instance UID of ``ds`` as text, or empty."""
    try:
        elem = element_or_none(ds, _SOP_INSTANCE)
        return "" if elem is None or elem.value is None else str(elem.value).strip()
    except Exception:  # noqa: BLE001 - an unreadable UID binds to nothing
        return ""


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

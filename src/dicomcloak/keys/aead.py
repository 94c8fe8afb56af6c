"""AES-256-GCM for the vault: wrap per-study data keys, seal records with associated data.

architecture.md decision 3 and STYLE.md habit 7: authenticated encryption only. A
blob is ``nonce (12 bytes) || ciphertext || tag (16 bytes)`` with a fresh
random 96-bit nonce (NIST SP 800-38D, section 8.2.2). The associated data binds
a record to its pseudonymous study and instance, and a wrapped key to its study,
wrapping key id and patient pseudonym, so a blob moved anywhere else fails its tag. On any
failure a :class:`SealError` is raised and nothing is returned.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dicomcloak.errors import SealError

__all__ = [
    "DATA_KEY_BYTES",
    "new_data_key",
    "open_blob",
    "record_aad",
    "seal_blob",
    "uid_map_aad",
    "unwrap_key",
    "wrap_key",
    "wrapped_key_aad",
]

DATA_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16


def new_data_key() -> bytes:
    """A fresh random AES-256 data key from the OS CSPRNG."""
    return os.urandom(DATA_KEY_BYTES)


def _join(label: bytes, *parts: str) -> bytes:
    # NUL cannot occur in a UID, an ID pseudonym or a key id: the encoding is unambiguous.
    return b"\x00".join((label, *(p.encode("utf-8") for p in parts)))


def record_aad(study: str, instance: str, binding: str | None = None) -> bytes:
    """Associated data of a vault record: its pseudonymous study and instance, and its binding.

    ``binding`` is the hex binding digest of the output the record was made
    for (empty: sealed without one); None for records of the first format,
    bound to (study, instance) only.
    """
    if binding is None:
        return _join(b"dicomcloak/vault/record/v1", study, instance)
    return _join(b"dicomcloak/vault/record/v2", study, instance, binding)


def uid_map_aad(study: str, pseudonym: str) -> bytes:
    """Associated data of one pseudonym-to-original entry."""
    return _join(b"dicomcloak/vault/uid-map/v1", study, pseudonym)


def wrapped_key_aad(study: str, wrapping_key_id: str, patient: str | None = None) -> bytes:
    """Associated data of a wrapped data key: its study, the wrapping key's id and its patient.

    ``patient`` is the patient pseudonym of the study (version 2: an edited
    patient column fails the tag, so ``vault shred --patient`` can trust it);
    None for keys wrapped before patients were bound (version 1).
    """
    if patient is None:
        return _join(b"dicomcloak/vault/data-key/v1", study, wrapping_key_id)
    return _join(b"dicomcloak/vault/data-key/v2", study, wrapping_key_id, patient)


def seal_blob(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` bound to ``aad``: nonce || ciphertext || tag."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def open_blob(aead: AESGCM, blob: bytes, aad: bytes, *, reference: str, what: str) -> bytes:
    """Verify and decrypt ``blob``; :class:`SealError` ``reference`` on any mismatch."""
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise _tampered(reference, what)
    try:
        return aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
    except InvalidTag:
        raise _tampered(reference, what) from None


def _tampered(reference: str, what: str) -> SealError:
    return SealError(
        f"{what} failed its integrity check", reference=reference,
        hint="it was changed, moved to another study or instance, or sealed under another key; "
        "nothing was decrypted",
    )


def wrap_key(wrapping_secret: bytes, data_key: bytes, aad: bytes) -> bytes:
    """Wrap a data key under a wrapping key (AES-256-GCM, bound to ``aad``)."""
    return seal_blob(AESGCM(wrapping_secret), data_key, aad)


def unwrap_key(wrapping_secret: bytes, wrapped: bytes, aad: bytes, *, what: str) -> bytes:
    """Unwrap a data key; :class:`SealError` ``vault-key-tampered`` if it fails its tag."""
    key = open_blob(AESGCM(wrapping_secret), wrapped, aad, reference="vault-key-tampered", what=what)
    if len(key) != DATA_KEY_BYTES:
        raise _tampered("vault-key-tampered", what)
    return key

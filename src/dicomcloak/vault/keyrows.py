"""Rows of the study-key table: data keys wrapped with their study *and patient* bound, checked on use.

``vault shred --patient P`` selects studies by the ``patient`` column; an
edited column (``P`` changed to ``Q``) used to make it shred nothing and
report success. So a data key is wrapped with associated data naming its
study, its wrapping key id **and its patient pseudonym** (version 2, the
wrapped blob starts with the byte ``0x02``); a row whose patient column no
longer matches fails its tag. Rows wrapped before (version 1: 60 bytes,
study and key id only) still open; ``keys rewrap`` re-wraps them as version
2, binding the patient column as it stands then. The version byte cannot be
forged: each version's associated data carries its own label, so a blob
relabelled as the other version fails its tag.

Every value read from the table is type-checked first (:func:`blob`,
:func:`text`): a wrong type (``sealed`` stored as TEXT or as an integer, as a
SQLite column allows) is tampering, exit 4, never an ``internal-error``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dicomcloak.errors import SealError
from dicomcloak.keys import aead
from dicomcloak.keys.keyring import Keyring

__all__ = [
    "LEGACY_WRAPPED_BYTES",
    "KeyRow",
    "ShredPlan",
    "blob",
    "key_rows",
    "plan_shred",
    "text",
    "unwrap_row",
    "wrap_row",
]

_V2 = b"\x02"
#: Length of a version-1 wrapped key (nonce, 32-byte key, tag): rows not yet bound to their patient.
LEGACY_WRAPPED_BYTES = 12 + aead.DATA_KEY_BYTES + 16


def blob(value: object, reference: str, what: str) -> bytes:
    """``value`` as bytes; any other type read from a binary column is tampering (``reference``)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise _wrong_type(reference, what)


def text(value: object, reference: str, what: str) -> str:
    """``value`` as str; any other type read from a text column is tampering (``reference``)."""
    if isinstance(value, str):
        return value
    raise _wrong_type(reference, what)


def _wrong_type(reference: str, what: str) -> SealError:
    return SealError(
        f"{what} is stored with the wrong type", reference=reference,
        hint="the vault database was altered outside dicomcloak; nothing was decrypted",
    )


def _aad(study: str, key_id: str, patient: str | None) -> bytes:
    if patient is None:
        return aead.wrapped_key_aad(study, key_id)
    return aead.wrapped_key_aad(study, key_id, patient)


def wrap_row(secret: bytes, data_key: bytes, study: str, key_id: str, patient: str) -> bytes:
    """A data key wrapped as version 2: study, wrapping key id and patient pseudonym bound."""
    return _V2 + aead.wrap_key(secret, data_key, _aad(study, key_id, patient))


def unwrap_row(keyring: Keyring, study: str, patient: str, key_id: str, wrapped: bytes) -> tuple[bytes, bool]:
    """The data key of a live row and whether it is a version-1 row (patient not bound).

    Raises
    ------
    SealError
        ``vault-key-tampered`` (the study, key id or patient column does not
        match what the key was wrapped for, or the blob is damaged),
        ``vault-key-unknown``, ``vault-key-retired``.
    """
    secret = keyring.by_id(key_id).usable_secret()
    what = f"the data key of study {study}"
    if len(wrapped) == LEGACY_WRAPPED_BYTES:
        return aead.unwrap_key(secret, wrapped, _aad(study, key_id, None), what=what), True
    if not wrapped.startswith(_V2):
        raise SealError(f"{what} failed its integrity check", reference="vault-key-tampered")
    return aead.unwrap_key(secret, wrapped[1:], _aad(study, key_id, patient), what=what), False


@dataclass(frozen=True)
class KeyRow:
    """One live row of the study-key table, type-checked."""

    study: str
    patient: str
    key_id: str
    wrapped: bytes


def key_rows(rows: Iterable[Any]) -> list[KeyRow]:
    """Type-check (study, patient, key_id, wrapped) rows; a wrong type is ``vault-key-tampered``."""
    checked = []
    for row in rows:
        what = "a row of the study-key table"
        study, patient = text(row[0], "vault-key-tampered", what), text(row[1], "vault-key-tampered", what)
        checked.append(KeyRow(study, patient, text(row[2], "vault-key-tampered", what),
                              blob(row[3], "vault-key-tampered", what)))
    return checked


@dataclass
class ShredPlan:
    """What a shred destroys (studies, by their stored study column) and what it found wrong."""

    studies: list[str] = field(default_factory=list)
    tampered: int = 0  # rows failing their tag: an edited patient or study column, a damaged key
    legacy: int = 0  # rows wrapped before patients were bound (version 1): an edit there cannot show
    unverifiable: int = 0  # rows wrapped by a wrapping key this key ring lacks: their columns are trusted


def plan_shred(
    rows: Iterable[KeyRow], keyring: Keyring, *, study: str | None, patient: str | None
) -> ShredPlan:
    """Check every live row; plan to shred those of the target, including rows whose column was edited.

    A row whose own columns fail its tag is counted as tampered; if it opens
    as the target's (the target put in place of the edited column), it is
    the target's and is shredded too.
    """
    plan = ShredPlan()
    for row in rows:
        verdict = _verdict(row, keyring)
        if verdict == "legacy":
            plan.legacy += 1
        elif verdict == "unverifiable":
            plan.unverifiable += 1
        elif verdict == "tampered":
            plan.tampered += 1
            if _opens_as_target(row, keyring, study, patient):
                plan.studies.append(row.study)
            continue
        if (row.study == study) if study is not None else (row.patient == patient):
            plan.studies.append(row.study)
    return plan


def _verdict(row: KeyRow, keyring: Keyring) -> str:
    try:
        _, legacy = unwrap_row(keyring, row.study, row.patient, row.key_id, row.wrapped)
    except SealError as error:
        return "tampered" if error.reference == "vault-key-tampered" else "unverifiable"
    return "legacy" if legacy else "ok"


def _opens_as_target(row: KeyRow, keyring: Keyring, study: str | None, patient: str | None) -> bool:
    try:
        unwrap_row(keyring, study or row.study, patient or row.patient, row.key_id, row.wrapped)
    except SealError:
        return False
    return True

"""Keyed, deterministic, domain-separated pseudonyms (architecture.md decision 2).

One project secret; HKDF-SHA256 derives a sub-key per purpose (``uid``, ``id``,
``patient``, ``name``, ``date``) and per pseudonym domain, so two recipients of
the same data get unlinkable pseudonyms and nobody without the key can test a
guess. Every value is HMAC-SHA256 of the original under the purpose's sub-key:
the same input always gives the same output on every worker, with no shared
state.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dicomcloak.keys.project import ProjectKey

__all__ = ["PERSON_NAME_PREFIX", "UID_ROOT", "DateShift", "Pseudonymizer"]

#: The root of every keyed UID, and the prefix of every keyed dummy person name (``verify`` skips both).
UID_ROOT = "2.25."
PERSON_NAME_PREFIX = "ANON^"
_SALT = b"dicomcloak/pseudonyms/v1"
_CONFLICT_LABEL = b"dicomcloak/uid-conflict/v1\x00"
# Crockford base32: no I, L, O, U, so tokens read unambiguously.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DAYS_RANGE = 3650  # shift dates back by 1..3650 days
_SECONDS_PER_DAY = 86400


@dataclass(frozen=True, slots=True)
class DateShift:
    """A per-patient offset: whole days plus a time-of-day part, both non-zero."""

    days: int
    seconds: int

    @property
    def total_seconds(self) -> int:
        """The offset in seconds (negative: dates move back)."""
        return self.days * _SECONDS_PER_DAY + self.seconds


def _derive(secret: bytes, purpose: str, domain: str) -> bytes:
    info = f"dicomcloak|{purpose}|{domain}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=info).derive(secret)


def _uid_from(mac: bytes) -> str:
    """``2.25.`` + the version-8 UUID made of a MAC's first 16 bytes, as a decimal integer."""
    raw = bytearray(mac[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant 10xx
    return f"{UID_ROOT}{int.from_bytes(raw, 'big')}"


def _token(digest: bytes, length: int) -> str:
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, 32)
        chars.append(_ALPHABET[index])
    return "".join(chars)


class Pseudonymizer:
    """Keyed pseudonyms for one key and one domain; picklable for worker processes.

    Parameters
    ----------
    key:
        The project key.
    domain:
        The pseudonym domain (one per recipient); enters every derivation.
    """

    def __init__(self, key: ProjectKey, domain: str = "default") -> None:
        self.domain = domain
        self.key_id = key.key_id
        self._keys = {p: _derive(key.secret, p, domain) for p in ("uid", "id", "patient", "name", "date")}
        self.uid = lru_cache(maxsize=65536)(self._uid)

    def __getstate__(self) -> dict[str, object]:
        return {"domain": self.domain, "key_id": self.key_id, "_keys": self._keys}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.uid = lru_cache(maxsize=65536)(self._uid)

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_id={self.key_id!r}, domain={self.domain!r})"

    def _mac(self, purpose: str, value: str) -> bytes:
        data = value.encode("utf-8", "surrogateescape")
        return hmac.new(self._keys[purpose], data, hashlib.sha256).digest()

    def _uid(self, original: str) -> str:
        """``2.25.`` + a version-8 UUID from HMAC(k_uid, UID) as a decimal integer.

        PS3.5 B.2 and ISO/IEC 9834-8: the 2.25 arc takes a UUID's 128 bits as one
        integer; RFC 9562 version 8 is the "custom" UUID, with the variant bits
        set to 10.
        """
        return _uid_from(self._mac("uid", original))

    def conflict_uid(self, original: str, content_digest: bytes) -> str:
        """The SOP Instance UID of an object that reuses ``original`` with other content (a UID conflict).

        Real archives hold different objects under one UID (corrected re-sends,
        broken modalities); ``deid --uid-conflicts keep-both`` writes the later
        one under this UID: HMAC under the uid sub-key of a distinct label, the
        original UID and the object's content digest (SHA-256 of its data set),
        in the same ``2.25.`` form as :meth:`uid`. The label is no UID (those are
        digits and dots, PS3.5 9.1), so no original UID maps here; another object
        under the same UID gets another UID, and the same object always this one.
        """
        message = _CONFLICT_LABEL + original.encode("utf-8", "surrogateescape") + b"\x00" + content_digest
        return _uid_from(hmac.new(self._keys["uid"], message, hashlib.sha256).digest())

    def identifier(self, value: str, max_len: int = 16) -> str:
        """A keyed ID for ``value`` (accession, study ID, other IDs), at most ``max_len`` chars."""
        return _token(self._mac("id", value), min(max_len, 16))

    def patient(self, patient_key: str) -> str:
        """The patient pseudonym (used as Patient ID, Patient's Name and folder name)."""
        return "P" + _token(self._mac("patient", patient_key), 11)

    def person_name(self, value: str) -> str:
        """A keyed dummy person name (PN) for other persons (operators, physicians)."""
        return PERSON_NAME_PREFIX + _token(self._mac("name", value), 8)

    def date_shift(self, patient_key: str) -> DateShift:
        """The per-patient date offset: back 1..3650 days, plus 1..86399 seconds."""
        digest = self._mac("date", patient_key)
        days = -(1 + int.from_bytes(digest[:4], "big") % _DAYS_RANGE)
        seconds = 1 + int.from_bytes(digest[4:8], "big") % (_SECONDS_PER_DAY - 1)
        return DateShift(days, seconds)

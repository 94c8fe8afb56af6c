"""The key ring: the pseudonymization key plus the vault's rotating wrapping keys.

architecture.md decision 3: the pseudonymization secret is long-lived (rotating it
would change every pseudonym); what rotates is the vault's wrapping ("master")
key, which only wraps per-study data keys. A ring holds one ``current``
wrapping key (wraps new data keys), any number of ``old`` ones (still unwrap)
and ``retired`` ones (id kept for the record, secret destroyed).

Pure: randomness and time are the only inputs drawn here, through
:meth:`WrappingKey.generate`, which callers at the edge invoke.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dicomcloak.errors import KeyError_, SealError, UsageError
from dicomcloak.keys.project import ProjectKey

__all__ = ["KeyState", "Keyring", "WrappingKey", "wrapping_key_id"]

_SECRET_BYTES = 32
_DERIVED_SALT = b"dicomcloak/vault-wrapping/v1"


class KeyState(StrEnum):
    """Life cycle of a wrapping key (docs/vault.md, "Rotation")."""

    CURRENT = "current"  # wraps new data keys; exactly one per ring
    OLD = "old"  # still unwraps; `keys rewrap` moves its data keys to the current key
    RETIRED = "retired"  # secret destroyed; id kept so errors can name it


@dataclass(frozen=True)
class WrappingKey:
    """One AES-256 key-wrapping key; ``repr`` never shows the secret."""

    key_id: str
    created: str
    secret: bytes | None = field(repr=False)
    state: KeyState

    def __post_init__(self) -> None:
        if self.state is KeyState.RETIRED:
            if self.secret is not None:
                raise KeyError_("a retired wrapping key keeps no secret", reference="key-file-invalid")
        elif self.secret is None or len(self.secret) != _SECRET_BYTES:
            raise KeyError_("a wrapping key secret must be 32 bytes", reference="key-file-invalid")

    @classmethod
    def generate(cls, state: KeyState = KeyState.CURRENT) -> WrappingKey:
        """A fresh random key from the OS CSPRNG; its id is derived from the secret."""
        secret = secrets.token_bytes(_SECRET_BYTES)
        return cls(wrapping_key_id(secret), _now(), secret, state)

    @classmethod
    def derived(cls, project: ProjectKey) -> WrappingKey:
        """The implicit wrapping key of a version-1 key file: HKDF of the project secret.

        Label-separated from every pseudonym sub-key (STYLE.md habit 7), so using it
        reveals nothing about pseudonyms; ``keys rotate`` writes it out explicitly.
        """
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_DERIVED_SALT, info=b"dicomcloak|wrap|v1")
        secret = hkdf.derive(project.secret)
        return cls(wrapping_key_id(secret), project.created, secret, KeyState.CURRENT)

    def with_state(self, state: KeyState) -> WrappingKey:
        """This key in another state; retiring drops the secret."""
        secret = None if state is KeyState.RETIRED else self.secret
        return replace(self, state=state, secret=secret)

    def check_value(self) -> bytes:
        """A key check value (HMAC of a fixed label): tells a wrong key from a tampered wrap."""
        return hmac.new(self.usable_secret(), b"dicomcloak/wrapping-key-check", hashlib.sha256).digest()

    def usable_secret(self) -> bytes:
        """The secret, or :class:`SealError` ``vault-key-retired`` if it was destroyed."""
        if self.secret is None:
            raise SealError(
                f"wrapping key {self.key_id} is retired", reference="vault-key-retired",
                hint="a retired key's secret is destroyed; restore the key file from before it was retired",
            )
        return self.secret


def wrapping_key_id(secret: bytes) -> str:
    """A public name for a wrapping key: ``w`` + 15 hex digits of HMAC(secret, label)."""
    return "w" + hmac.new(secret, b"dicomcloak/wrapping-key-id", hashlib.sha256).hexdigest()[:15]


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Keyring:
    """The project key and the wrapping keys, in file order; exactly one is current.

    ``derived`` marks the ring of a version-1 key file, whose only wrapping key
    is derived from the project secret and not yet written to the file.
    """

    project: ProjectKey
    wrapping: tuple[WrappingKey, ...]
    derived: bool = False

    def __post_init__(self) -> None:
        currents = [k for k in self.wrapping if k.state is KeyState.CURRENT]
        if len(currents) != 1:
            raise KeyError_("a key ring needs exactly one current wrapping key", reference="key-file-invalid")
        if len({k.key_id for k in self.wrapping}) != len(self.wrapping):
            raise KeyError_("wrapping key ids must be unique", reference="key-file-invalid")

    @classmethod
    def create(cls, project: ProjectKey) -> Keyring:
        """A new ring: the project key and one fresh current wrapping key."""
        return cls(project, (WrappingKey.generate(),))

    @classmethod
    def from_project_key(cls, project: ProjectKey) -> Keyring:
        """The ring of a version-1 key file: its wrapping key derived from the project secret."""
        return cls(project, (WrappingKey.derived(project),), derived=True)

    @property
    def current(self) -> WrappingKey:
        """The wrapping key new data keys are wrapped with."""
        return next(k for k in self.wrapping if k.state is KeyState.CURRENT)

    def by_id(self, key_id: str) -> WrappingKey:
        """The wrapping key named ``key_id``; :class:`SealError` ``vault-key-unknown`` if absent."""
        for key in self.wrapping:
            if key.key_id == key_id:
                return key
        raise SealError(
            f"the key ring holds no wrapping key {key_id}", reference="vault-key-unknown",
            hint="use the key file (or DICOMCLOAK_WRAPPING_KEYS) that holds it, e.g. a backup taken "
            "after the rotation that created it",
        )

    def rotated(self, new: WrappingKey) -> Keyring:
        """A ring where ``new`` is current and the previous current key is old."""
        if new.state is not KeyState.CURRENT:
            raise UsageError("a new wrapping key must be current", reference="key-rotate-invalid")
        demoted = tuple(
            k.with_state(KeyState.OLD) if k.state is KeyState.CURRENT else k for k in self.wrapping
        )
        return Keyring(self.project, (*demoted, new))

    def retired(self, key_id: str) -> Keyring:
        """A ring where ``key_id`` is retired (secret destroyed); the current key cannot be."""
        key = self.by_id(key_id)
        if key.state is KeyState.CURRENT:
            raise UsageError(
                f"wrapping key {key_id} is current", reference="key-retire-current",
                hint="run 'dicomcloak keys rotate' and 'keys rewrap' first",
            )
        keys = tuple(k.with_state(KeyState.RETIRED) if k.key_id == key_id else k for k in self.wrapping)
        return Keyring(self.project, keys)

    def __repr__(self) -> str:
        ids = ", ".join(f"{k.key_id}:{k.state}" for k in self.wrapping)
        return f"Keyring(project={self.project.key_id!r}, wrapping=[{ids}])"

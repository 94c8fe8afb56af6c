"""Where the key ring comes from: a :class:`KeyProvider` protocol and its two built-ins.

STYLE.md habit 6: a small Protocol, so a KMS or HSM provider can replace the
key file later without touching the vault. Built-ins:

- :class:`KeyFileProvider`: the project key file (version 1 or 2), the default.
- :class:`EnvironmentKeyProvider`: the pseudonymization key from the key file,
  the wrapping keys from ``DICOMCLOAK_WRAPPING_KEYS``: comma-separated base64
  32-byte secrets, the first one current, the others old (still unwrap). Key
  ids are derived from the secrets, as in the key file.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dicomcloak.errors import KeyError_
from dicomcloak.keys.keyfile import load_keyring
from dicomcloak.keys.keyring import Keyring, KeyState, WrappingKey, wrapping_key_id

__all__ = [
    "WRAPPING_KEYS_ENV",
    "EnvironmentKeyProvider",
    "KeyFileProvider",
    "KeyProvider",
    "resolve_provider",
]

#: Environment variable holding the wrapping keys (base64, comma-separated, current first).
WRAPPING_KEYS_ENV = "DICOMCLOAK_WRAPPING_KEYS"


class KeyProvider(Protocol):
    """Supplies the key ring; called once at the edge, the ring is then passed down."""

    def keyring(self) -> Keyring:
        """Return the project key and the wrapping keys."""
        ...


@dataclass(frozen=True)
class KeyFileProvider:
    """The key ring of a key file."""

    path: Path

    def keyring(self) -> Keyring:
        """Read the key file (version 1 or 2)."""
        return load_keyring(self.path)


@dataclass(frozen=True)
class EnvironmentKeyProvider:
    """Wrapping keys from :data:`WRAPPING_KEYS_ENV`, the project key from a key file."""

    path: Path
    value: str

    def keyring(self) -> Keyring:
        """The key file's project key with the environment's wrapping keys."""
        project = load_keyring(self.path).project
        secrets = [_decode(part) for part in self.value.split(",") if part.strip()]
        if not secrets:
            raise KeyError_(f"{WRAPPING_KEYS_ENV} holds no key", reference="wrapping-keys-invalid")
        states = [KeyState.CURRENT] + [KeyState.OLD] * (len(secrets) - 1)
        pairs = zip(secrets, states, strict=True)
        keys = tuple(WrappingKey(wrapping_key_id(s), "", s, st) for s, st in pairs)
        return Keyring(project, keys)


def _decode(part: str) -> bytes:
    try:
        secret = base64.b64decode(part.strip(), validate=True)
    except binascii.Error:
        secret = b""
    if len(secret) != 32:
        raise KeyError_(
            f"{WRAPPING_KEYS_ENV} holds a value that is not a base64 32-byte key",
            reference="wrapping-keys-invalid", hint="comma-separated base64 secrets, the current one first",
        )
    return secret


def resolve_provider(key_path: Path, environ: Mapping[str, str]) -> KeyProvider:
    """The environment provider when :data:`WRAPPING_KEYS_ENV` is set, else the key file."""
    value = environ.get(WRAPPING_KEYS_ENV, "").strip()
    return EnvironmentKeyProvider(key_path, value) if value else KeyFileProvider(key_path)

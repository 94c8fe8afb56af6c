"""The project key: the long-lived 256-bit pseudonymization secret (architecture.md decision 2)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field

from dicomcloak.errors import KeyError_

__all__ = ["ProjectKey"]

_FORMAT = "dicomcloak-key"
_SECRET_BYTES = 32


@dataclass(frozen=True)
class ProjectKey:
    """The project secret. Keep it out of logs: ``repr`` shows only the key id."""

    secret: bytes = field(repr=False)
    created: str = ""
    ephemeral: bool = False

    def __post_init__(self) -> None:
        if len(self.secret) != _SECRET_BYTES:
            raise KeyError_("the project secret must be 32 bytes", reference="key-invalid")

    @classmethod
    def generate(cls, *, ephemeral: bool = False) -> ProjectKey:
        """Return a fresh random key from the OS CSPRNG."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        return cls(secrets.token_bytes(_SECRET_BYTES), now, ephemeral)

    @property
    def key_id(self) -> str:
        """A public name for the key (HMAC of a fixed label), safe to print."""
        return hmac.new(self.secret, b"dicomcloak/key-id", hashlib.sha256).hexdigest()[:16]

    def to_json(self) -> str:
        """Serialize in the documented version-1 file format (no wrapping keys)."""
        doc = {
            "format": _FORMAT, "version": 1, "key_id": self.key_id,
            "created": self.created, "secret": base64.b64encode(self.secret).decode("ascii"),
        }
        return json.dumps(doc, indent=2) + "\n"

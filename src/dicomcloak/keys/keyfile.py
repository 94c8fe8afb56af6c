"""The project key file: a long-lived 256-bit pseudonymization secret, versioned, mode 0600.

Format (JSON, UTF-8), version 1::

    {"format": "dicomcloak-key", "version": 1, "key_id": "<16 hex>",
     "created": "<ISO 8601 UTC>", "secret": "<base64 of 32 bytes>"}

``key_id`` is derived from the secret (HMAC, label ``key-id``), so it names the
key without revealing it. The secret is never printed or logged; ``repr`` of
:class:`ProjectKey` hides it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dicomcloak.errors import KeyError_, UsageError

__all__ = ["KEY_ENV", "ProjectKey", "load_key_file", "resolve_key_path", "write_key_file"]

#: Environment variable naming the key file when ``--key`` is not given.
KEY_ENV = "DICOMCLOAK_KEY_FILE"
_FORMAT = "dicomcloak-key"
_VERSION = 1
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
        """Serialize in the documented version-1 file format."""
        doc = {
            "format": _FORMAT, "version": _VERSION, "key_id": self.key_id,
            "created": self.created, "secret": base64.b64encode(self.secret).decode("ascii"),
        }
        return json.dumps(doc, indent=2) + "\n"


def write_key_file(path: Path, key: ProjectKey, *, overwrite: bool = False) -> None:
    """Write ``key`` to ``path`` with mode 0600, atomically; refuse to overwrite a key."""
    if path.exists() and not overwrite:
        raise UsageError(
            f"key file {path} already exists", reference="key-file-exists",
            hint="losing a key loses its pseudonyms and re-identification; choose another path",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_key_file(path: Path) -> ProjectKey:
    """Read and validate a key file; errors never echo its content."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise KeyError_(f"key file {path} not found", reference="key-file-missing",
                        hint="create one with 'dicomcloak keys init --out FILE'") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise KeyError_(f"key file {path} is unreadable or not a dicomcloak key",
                        reference="key-file-invalid") from None
    return _parse(doc, path)


def _parse(doc: object, path: Path) -> ProjectKey:
    if not isinstance(doc, Mapping) or doc.get("format") != _FORMAT:
        raise KeyError_(f"{path} is not a dicomcloak key file", reference="key-file-invalid")
    if doc.get("version") != _VERSION:
        raise KeyError_(f"{path} has an unsupported key file version",
                        reference="key-file-version", hint="upgrade dicomcloak")
    try:
        secret = base64.b64decode(str(doc["secret"]), validate=True)
    except (KeyError, binascii.Error):
        raise KeyError_(f"{path} holds no valid secret", reference="key-file-invalid") from None
    key = ProjectKey(secret, str(doc.get("created", "")))
    if doc.get("key_id") not in (None, key.key_id):
        raise KeyError_(f"{path}: key id does not match its secret", reference="key-file-corrupt")
    return key


def resolve_key_path(cli_path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """``--key`` wins over ``DICOMCLOAK_KEY_FILE``; None when neither is set."""
    if cli_path is not None:
        return cli_path
    env = environ.get(KEY_ENV, "").strip()
    return Path(env) if env else None

"""The project key file: the pseudonymization secret and the vault's wrapping keys, mode 0600.

Format (JSON, UTF-8), version 2 (written by ``keys init`` and ``keys rotate``)::

    {"format": "dicomcloak-key", "version": 2, "key_id": "<16 hex>",
     "created": "<ISO 8601 UTC>", "secret": "<base64 of 32 bytes>",
     "wrapping_keys": [
        {"id": "w<15 hex>", "created": "<ISO 8601 UTC>", "secret": "<base64>", "state": "old"},
        {"id": "w<15 hex>", "created": "<ISO 8601 UTC>", "secret": "<base64>", "state": "current"},
        {"id": "w<15 hex>", "created": "<ISO 8601 UTC>", "secret": null, "state": "retired"}]}

Version 1 is the same without ``wrapping_keys``; it is still read, and its
wrapping key is derived from the project secret (:meth:`WrappingKey.derived`)
until the first ``keys rotate`` writes the file as version 2. ``key_id`` and
each wrapping ``id`` are derived from their secrets (HMAC, fixed labels), so
they name keys without revealing them. Secrets are never printed or logged;
errors never echo the file's content.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path

from dicomcloak.errors import KeyError_, UsageError
from dicomcloak.keys.keyring import Keyring, KeyState, WrappingKey, wrapping_key_id
from dicomcloak.keys.project import ProjectKey

__all__ = [
    "KEY_ENV",
    "ProjectKey",
    "exposed_mode",
    "keyring_to_json",
    "load_key_file",
    "load_keyring",
    "resolve_key_path",
    "write_key_file",
    "write_keyring_file",
]

#: Environment variable naming the key file when ``--key`` is not given.
KEY_ENV = "DICOMCLOAK_KEY_FILE"
_FORMAT = "dicomcloak-key"
_VERSIONS = (1, 2)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def keyring_to_json(ring: Keyring) -> str:
    """Serialize ``ring`` in the documented version-2 format."""
    doc = {
        "format": _FORMAT, "version": 2, "key_id": ring.project.key_id,
        "created": ring.project.created, "secret": _b64(ring.project.secret),
        "wrapping_keys": [
            {"id": k.key_id, "created": k.created, "secret": _b64(k.secret), "state": str(k.state)}
            for k in ring.wrapping
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def write_key_file(path: Path, key: ProjectKey, *, overwrite: bool = False) -> None:
    """Write a new version-2 key file for ``key`` with one fresh wrapping key; refuse to overwrite."""
    write_keyring_file(path, Keyring.create(key), overwrite=overwrite)


def write_keyring_file(path: Path, ring: Keyring, *, overwrite: bool = False) -> None:
    """Write ``ring`` to ``path`` with mode 0600, atomically (temp, fsync, rename)."""
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
            handle.write(keyring_to_json(ring))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_key_file(path: Path) -> ProjectKey:
    """Read and validate a key file (version 1 or 2); the pseudonymization key only."""
    return load_keyring(path).project


def load_keyring(path: Path) -> Keyring:
    """Read and validate a key file (version 1 or 2) as a :class:`Keyring`."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise KeyError_(f"key file {path} not found", reference="key-file-missing",
                        hint="create one with 'dicomcloak keys init --out FILE'") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise KeyError_(f"key file {path} is unreadable or not a dicomcloak key",
                        reference="key-file-invalid") from None
    return _parse(doc, path)


def _parse(doc: object, path: Path) -> Keyring:
    if not isinstance(doc, Mapping) or doc.get("format") != _FORMAT:
        raise KeyError_(f"{path} is not a dicomcloak key file", reference="key-file-invalid")
    if doc.get("version") not in _VERSIONS:
        raise KeyError_(f"{path} has an unsupported key file version",
                        reference="key-file-version", hint="upgrade dicomcloak")
    key = ProjectKey(_secret(doc.get("secret"), path), str(doc.get("created", "")))
    if doc.get("key_id") not in (None, key.key_id):
        raise KeyError_(f"{path}: key id does not match its secret", reference="key-file-corrupt")
    if doc["version"] == 1:
        return Keyring.from_project_key(key)
    entries = doc.get("wrapping_keys")
    if not isinstance(entries, list):
        raise KeyError_(f"{path} holds no wrapping key list", reference="key-file-invalid")
    return Keyring(key, tuple(_wrapping(entry, path) for entry in entries))


def _secret(value: object, path: Path) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error:
        raise KeyError_(f"{path} holds an invalid secret", reference="key-file-invalid") from None


def _wrapping(entry: object, path: Path) -> WrappingKey:
    if not isinstance(entry, Mapping):
        raise KeyError_(f"{path}: a wrapping key entry is not an object", reference="key-file-invalid")
    try:
        state = KeyState(str(entry.get("state")))
    except ValueError:
        raise KeyError_(f"{path}: a wrapping key has an unknown state",
                        reference="key-file-invalid") from None
    raw = entry.get("secret")
    secret = None if raw is None else _secret(raw, path)
    key = WrappingKey(str(entry.get("id", "")), str(entry.get("created", "")), secret, state)
    if secret is not None and wrapping_key_id(secret) != key.key_id:
        raise KeyError_(f"{path}: wrapping key {key.key_id} does not match its secret",
                        reference="key-file-corrupt")
    return key


def exposed_mode(path: Path) -> int | None:
    """The permission bits of ``path`` when users other than its owner may read or change it, else None.

    A key file (or an owner's private key) that the group or others can read
    gives away every pseudonym (or every embedded seal); one they can change
    lets them swap the key. The caller warns; the file is still used (the
    operator may share it with a service account on purpose). None also when
    the file cannot be examined: reading it reports that.
    """
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        return None
    return mode if mode & 0o077 else None


def resolve_key_path(cli_path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """``--key`` wins over ``DICOMCLOAK_KEY_FILE``; None when neither is set."""
    if cli_path is not None:
        return cli_path
    env = environ.get(KEY_ENV, "").strip()
    return Path(env) if env else None

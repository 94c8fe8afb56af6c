"""Pure key handling: the project key file, the key ring, keyed pseudonyms, AES-GCM sealing."""

from dicomcloak.keys.keyfile import (
    KEY_ENV,
    load_key_file,
    load_keyring,
    resolve_key_path,
    write_key_file,
    write_keyring_file,
)
from dicomcloak.keys.keyring import Keyring, KeyState, WrappingKey
from dicomcloak.keys.project import ProjectKey
from dicomcloak.keys.provider import (
    WRAPPING_KEYS_ENV,
    EnvironmentKeyProvider,
    KeyFileProvider,
    KeyProvider,
    resolve_provider,
)
from dicomcloak.keys.pseudonyms import DateShift, Pseudonymizer

__all__ = [
    "KEY_ENV",
    "WRAPPING_KEYS_ENV",
    "DateShift",
    "EnvironmentKeyProvider",
    "KeyFileProvider",
    "KeyProvider",
    "KeyState",
    "Keyring",
    "ProjectKey",
    "Pseudonymizer",
    "WrappingKey",
    "load_key_file",
    "load_keyring",
    "resolve_key_path",
    "resolve_provider",
    "write_key_file",
    "write_keyring_file",
]

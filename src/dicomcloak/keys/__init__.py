"""Pure key handling: the project key file and keyed, domain-separated pseudonyms."""

from dicomcloak.keys.keyfile import KEY_ENV, ProjectKey, load_key_file, resolve_key_path, write_key_file
from dicomcloak.keys.pseudonyms import DateShift, Pseudonymizer

__all__ = [
    "KEY_ENV",
    "DateShift",
    "ProjectKey",
    "Pseudonymizer",
    "load_key_file",
    "resolve_key_path",
    "write_key_file",
]

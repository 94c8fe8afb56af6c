"""The owner key's passphrase: from the environment for automation, or asked on the terminal; never argv.

``keys cert`` protects ``owner.key.pem`` with a passphrase (PKCS#8 encryption,
:func:`dicomcloak.keys.cms.make_owner`) unless told ``--no-passphrase``;
``reid --private-key`` asks for it when the key is protected. A passphrase on
the command line would be readable by every user of the machine (``ps``) and
kept in shell histories, so it comes from :data:`PASSPHRASE_ENV` (a secrets
manager, a CI secret) or from a prompt on the terminal that echoes nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from dicomcloak.cli._common import warn
from dicomcloak.errors import DicomcloakError, KeyError_, UsageError

__all__ = ["MIN_LENGTH", "PASSPHRASE_ENV", "new_passphrase", "passphrase_for"]

#: Environment variable holding the owner key's passphrase (``keys cert``, ``reid --private-key``).
PASSPHRASE_ENV = "DICOMCLOAK_OWNER_KEY_PASSPHRASE"
#: Shorter passphrases are accepted with a warning: the key file's KDF is PBKDF2 with few iterations.
MIN_LENGTH = 12


def new_passphrase(key_path: Path, *, unprotected: bool) -> bytes | None:
    """The passphrase to protect a new owner key with: the environment's, else asked twice on a terminal.

    ``unprotected`` (``--no-passphrase``): None, with a warning.

    Raises
    ------
    UsageError
        ``passphrase-required``: none in the environment, no terminal to ask on,
        and no ``--no-passphrase``; ``passphrase-empty``.
    """
    if unprotected:
        warn(f"{key_path} is not protected by a passphrase: whoever can read it can re-identify every "
             "file sealed to its certificate")
        return None
    missing = UsageError(
        f"no passphrase to protect {key_path} with",
        reference="passphrase-required",
        hint=f"set {PASSPHRASE_ENV}, run it on a terminal to be asked, or pass --no-passphrase "
        "(tests and small sites; the key is then protected by its file mode only)",
    )
    return _checked(_given(key_path, missing, confirm=True))


def passphrase_for(key_path: Path) -> bytes:
    """The passphrase of a protected owner key: the environment's, else asked on the terminal.

    Raises
    ------
    KeyError_
        ``private-key-passphrase``: none in the environment and no terminal to ask on.
    """
    missing = KeyError_(
        f"{key_path} is protected by a passphrase and none was given",
        reference="private-key-passphrase",
        hint=f"set {PASSPHRASE_ENV}, or run it on a terminal to be asked",
    )
    return _given(key_path, missing, confirm=False).encode("utf-8")


def _given(key_path: Path, missing: DicomcloakError, *, confirm: bool) -> str:
    """The environment's passphrase, else one typed on the terminal (echoing nothing); else ``missing``."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise missing
    answer: str = typer.prompt(
        f"passphrase for {key_path}", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return answer


def _checked(value: str) -> bytes:
    if not value:
        raise UsageError(
            f"{PASSPHRASE_ENV} is empty", reference="passphrase-empty",
            hint="give a passphrase, or --no-passphrase to write the key unprotected",
        )
    if len(value) < MIN_LENGTH:
        warn(f"a passphrase shorter than {MIN_LENGTH} characters protects the key little; "
             "prefer several random words")
    return value.encode("utf-8")

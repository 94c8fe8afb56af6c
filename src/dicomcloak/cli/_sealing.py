"""Sealing on the command line: ``deid``'s certificates and sealer key, ``reid --trusted-sealer``.

``deid --sealer-key`` signs each embedded seal, ``reid --trusted-sealer``
names the sealers whose seals are restored. Everything is read before any
work, so a missing or malformed key stops the command at once (exit 2 or 3),
never half way through a batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dicomcloak.cli._common import warn_if_exposed
from dicomcloak.errors import UsageError

if TYPE_CHECKING:
    from dicomcloak.batch.worker import SealSettings
    from dicomcloak.keys import Keyring
    from dicomcloak.keys.sealing import TrustedSealers

__all__ = ["SealerKeyArg", "TrustedSealerArg", "read_sealer_key", "read_trusted_sealers", "seal_settings"]

SealerKeyArg = Annotated[
    Path | None,
    typer.Option(
        "--sealer-key",
        help="Sign each embedded seal with this sealer key (PEM, from 'keys sealer'; "
        "else $DICOMCLOAK_SEALER_KEY). Needed with --recipient.",
    ),
]
TrustedSealerArg = Annotated[
    list[Path] | None,
    typer.Option(
        "--trusted-sealer",
        help="Restore embedded seals signed by this sealer certificate (PEM; repeatable).",
    ),
]


def read_sealer_key(path: Path | None) -> bytes:
    """The sealer key's PEM from ``path`` or ``$DICOMCLOAK_SEALER_KEY``, checked now.

    Raises
    ------
    UsageError
        ``sealer-key-required`` when neither names one.
    KeyError_
        ``sealer-key-unreadable``, ``sealer-key-invalid``.
    """
    from dicomcloak.batch import keyfiles
    from dicomcloak.keys.sealing import SEALER_KEY_ENV

    chosen = path or (Path(os.environ[SEALER_KEY_ENV]) if os.environ.get(SEALER_KEY_ENV) else None)
    if chosen is None:
        raise UsageError(
            "--recipient needs a sealer key: embedded seals are signed, and reid refuses unsigned ones",
            reference="sealer-key-required",
            hint=f"make one with 'dicomcloak keys sealer --out-dir DIR', then pass --sealer-key "
            f"DIR/sealer.key.pem (or set {SEALER_KEY_ENV}); the owner trusts DIR/sealer.cert.pem",
        )
    pem = keyfiles.read_sealer_key(chosen)
    warn_if_exposed(chosen.resolve(), "sealer key")  # whoever reads it makes seals the owner trusts
    return pem


def read_trusted_sealers(paths: Sequence[Path]) -> TrustedSealers:
    """The trusted sealers from ``reid --trusted-sealer`` certificates (none: an empty list)."""
    from dicomcloak.batch.keyfiles import read_trusted_sealers as read

    return read(paths)


def seal_settings(
    recipients: list[Path],
    vault: str | None,
    audit: str | None,
    key: Path | None,
    *,
    ephemeral: bool,
    sealer_key: Path | None = None,
    vault_wait: float | None = None,
) -> SealSettings | None:
    """Sealing asked on the command line: certificates and the sealer key read now (a bad one stops
    before any work)."""
    from dicomcloak.batch.keyfiles import make_seal_settings

    if audit is not None and vault is None and not recipients:
        raise UsageError(
            "--audit needs sealing", reference="audit-without-sealing", hint="add --vault URL or --recipient"
        )
    if vault_wait is not None and vault is None:
        raise UsageError("--vault-wait needs --vault", reference="usage", hint="add --vault URL or drop it")

    def keyring() -> Keyring:
        from dicomcloak.cli.vault import load_keyring_from

        if ephemeral:
            raise UsageError(
                "--vault needs a project key file, not --ephemeral-key",
                reference="vault-needs-key",
                hint="the vault's records are opened later with the same key file",
            )
        return load_keyring_from(key)

    return make_seal_settings(
        recipients, lambda: read_sealer_key(sealer_key), vault, keyring, audit=audit, vault_wait=vault_wait
    )

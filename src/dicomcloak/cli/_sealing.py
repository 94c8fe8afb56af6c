"""Sealer keys on the command line: ``deid --sealer-key`` signs seals, ``reid --trusted-sealer`` checks them.

Both are read before any work, so a missing or malformed key stops the
command at once (exit 2 or 3), never half way through a batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dicomcloak.errors import KeyError_, UsageError

if TYPE_CHECKING:
    from dicomcloak.keys.sealing import TrustedSealers

__all__ = ["SealerKeyArg", "TrustedSealerArg", "read_sealer_key", "read_trusted_sealers"]

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
    from dicomcloak.keys.sealing import SEALER_KEY_ENV, load_sealer_key

    chosen = path or (Path(os.environ[SEALER_KEY_ENV]) if os.environ.get(SEALER_KEY_ENV) else None)
    if chosen is None:
        raise UsageError(
            "--recipient needs a sealer key: embedded seals are signed, and reid refuses unsigned ones",
            reference="sealer-key-required",
            hint=f"make one with 'dicomcloak keys sealer --out-dir DIR', then pass --sealer-key "
            f"DIR/sealer.key.pem (or set {SEALER_KEY_ENV}); the owner trusts DIR/sealer.cert.pem",
        )
    pem = _read(chosen, "sealer-key-unreadable", "the sealer key")
    load_sealer_key(pem, str(chosen))
    return pem


def read_trusted_sealers(paths: Sequence[Path]) -> TrustedSealers:
    """The trusted sealers from ``reid --trusted-sealer`` certificates (none: an empty list)."""
    from dicomcloak.keys.sealing import load_trusted_sealers

    files = ((_read(path, "certificate-unreadable", "the certificate"), str(path)) for path in paths)
    return load_trusted_sealers(files)


def _read(path: Path, reference: str, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        raise KeyError_(f"cannot read {what} {path}", reference=reference, hint="check the path") from None

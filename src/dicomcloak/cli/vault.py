"""``dicomcloak vault shred``: crypto-shred a study or a patient; shared vault/key options of the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dicomcloak.cli._common import JsonFlag, handles_errors, warn, warn_if_exposed
from dicomcloak.errors import KeyError_, UsageError

if TYPE_CHECKING:
    from dicomcloak.keys import Keyring
    from dicomcloak.vault import Vault

__all__ = ["KeyArg", "VaultArg", "app", "load_keyring_from", "open_vault", "shred"]

app = typer.Typer(help="Manage the key vault (sealed originals).", no_args_is_help=True)

VaultArg = Annotated[
    str,
    typer.Option("--vault", help="Vault SQLAlchemy URL, e.g. sqlite:///vault.db or postgresql+pg8000://..."),
]
KeyArg = Annotated[Path | None, typer.Option("--key", help="Project key file (else $DICOMCLOAK_KEY_FILE).")]


def load_keyring_from(key_file: Path | None) -> Keyring:
    """The key ring: ``--key`` or ``DICOMCLOAK_KEY_FILE``, wrapping keys from the environment if set."""
    from dicomcloak.batch.keyfiles import resolve_keyring
    from dicomcloak.keys import KEY_ENV

    found = resolve_keyring(key_file, os.environ)
    if found is None:
        raise KeyError_(
            f"no project key: pass --key FILE or set {KEY_ENV}",
            reference="key-required",
            hint="the vault is opened with the key file it was created with",
        )
    ring, path = found
    warn_if_exposed(path.resolve())
    return ring


def open_vault(url: str, key_file: Path | None) -> Vault:
    """Open the vault at ``url`` with the key ring of ``key_file`` (SQLAlchemy is imported here)."""
    from dicomcloak.vault import Vault

    return Vault.open(url, load_keyring_from(key_file))


@app.command("shred")
@handles_errors
def shred(
    vault: VaultArg,
    study: Annotated[str | None, typer.Option("--study", help="Pseudonymous Study Instance UID.")] = None,
    patient: Annotated[
        str | None, typer.Option("--patient", help="Patient pseudonym (all its studies).")
    ] = None,
    key: KeyArg = None,
    as_json: JsonFlag = False,
) -> None:
    """Destroy the data keys of a study or of a patient's studies: their vault records become unreadable.

    Audited. Irreversible. Copies sealed inside files (--recipient) are out of the vault's reach.
    Every data key is checked first: rows whose patient or study column was edited are found (and the
    target's shredded all the same), then reported with exit 4 (vault-key-tampered).
    """
    if (study is None) == (patient is None):
        raise UsageError("give exactly one of --study or --patient", reference="shred-target")
    with open_vault(vault, key) as store:
        count = store.shred(study=study, patient=patient)
        legacy = store.legacy_key_rows()
    if as_json:
        print(json.dumps({"schema": "dicomcloak/shred/1", "shredded": count}))
    else:
        print(f"shredded data keys: {count}")
    if count == 0:
        warn("no live data key matched: nothing was shredded (unknown pseudonym, or already shredded)")
    if legacy:
        warn(f"{legacy} data keys were wrapped before their patient was bound: an edited patient column "
             "cannot be detected on them; run 'dicomcloak keys rewrap --vault URL' once to bind them")

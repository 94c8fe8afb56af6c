"""``dicomcloak vault shred|lookup``: crypto-shred a study or a patient, find a patient's pseudonym and back;
the vault/key options shared by the CLI."""

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
    from dicomcloak.vault.patients import Holdings

__all__ = ["KeyArg", "VaultArg", "app", "load_keyring_from", "lookup", "open_vault", "shred"]

_PATIENT_ID = 0x00100020  # (0010,0020) Patient ID, PS3.3 C.7.1.1
#: Version tag of ``vault lookup --json`` (docs/vault.md, "Looking a patient up").
LOOKUP_SCHEMA = "dicomcloak/vault-lookup/1"

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
        warn("no live data key matched: nothing was shredded (unknown pseudonym, or already shredded); "
             "--patient takes the pseudonym 'vault lookup --patient-id ID' prints, not the original ID")
    if legacy:
        warn(f"{legacy} data keys were wrapped before their patient was bound: an edited patient column "
             "cannot be detected on them; run 'dicomcloak keys rewrap --vault URL' once to bind them")


@app.command("lookup")
@handles_errors
def lookup(
    vault: VaultArg,
    patient_id: Annotated[
        str | None,
        typer.Option("--patient-id", metavar="ID", help="An original Patient ID: print its pseudonym(s)."),
    ] = None,
    pseudonym: Annotated[
        str | None,
        typer.Option("--pseudonym", help="A patient pseudonym: print its original Patient ID."),
    ] = None,
    issuer: Annotated[
        str, typer.Option("--issuer", help="With --patient-id: its Issuer of Patient ID, if any.")
    ] = "",
    domain: Annotated[
        list[str] | None,
        typer.Option("--domain", help="With --patient-id: the pseudonym domain(s) deid used (repeatable).")
    ] = None,
    key: KeyArg = None,
    as_json: JsonFlag = False,
) -> None:
    """Which pseudonym is this patient (--patient-id), or whose is this pseudonym (--pseudonym).

    Needs the project key file and the vault; the answer is printed, the lookup audited in the vault
    (its direction, the pseudonyms and counts, never the original ID). The pseudonym printed is what
    'reid --patient' and 'vault shred --patient' take.
    """
    if (patient_id is None) == (pseudonym is None):
        raise UsageError("give exactly one of --patient-id or --pseudonym", reference="lookup-target",
                         hint="--patient-id ID prints its pseudonym; --pseudonym P prints its Patient ID")
    if pseudonym is not None and (issuer or domain):
        raise UsageError("--issuer and --domain go with --patient-id", reference="lookup-target",
                         hint="a pseudonym already names its domain")
    if patient_id is not None:
        found = _pseudonyms_of(vault, key, patient_id, issuer, domain or ["default"])
        _print_pseudonyms(found, as_json=as_json)
        return
    assert pseudonym is not None  # checked above
    from dicomcloak.engine.uidmap import map_key

    with open_vault(vault, key) as store:  # the map qualifies a patient pseudonym by its tag
        original, held = store.patient_id_of(pseudonym, map_key(_PATIENT_ID, pseudonym, "LO"))
    _print_patient_id(original, held, as_json=as_json)


def _pseudonyms_of(
    url: str, key: Path | None, patient_id: str, issuer: str, domains: list[str]
) -> list[Holdings]:
    """The pseudonym of ``patient_id`` in each domain, computed with the project key (the engine's own
    derivation, architecture.md decision 2), and what the vault holds for each."""
    from dicomcloak.engine.identity import patient_pseudonym
    from dicomcloak.keys.pseudonyms import Pseudonymizer
    from dicomcloak.vault import Vault

    ring = load_keyring_from(key)
    with Vault.open(url, ring) as store:  # the vault's project key is checked before anything is computed
        named = {d: patient_pseudonym(Pseudonymizer(ring.project, d), patient_id, issuer) for d in domains}
        return store.patient_holdings(named)


def _print_pseudonyms(found: list[Holdings], *, as_json: bool) -> None:
    if as_json:
        doc = {"schema": LOOKUP_SCHEMA, "direction": "patient-id-to-pseudonym",
               "pseudonyms": [h.to_dict() for h in found]}
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        for held in found:
            print(f"{held.pseudonym}  domain {held.domain}  {_counts(held)}")
    if not any(h.held for h in found):
        warn("the vault holds nothing for this patient in the domain(s) given: another --domain or --issuer, "
             "or not de-identified with this vault")


def _print_patient_id(original: str | None, held: Holdings, *, as_json: bool) -> None:
    if as_json:
        doc = {"schema": LOOKUP_SCHEMA, "direction": "pseudonym-to-patient-id", "patient_id": original,
               **held.to_dict()}
        del doc["domain"]
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        shown = "(unknown)" if original is None else original
        print(f"{held.pseudonym}  patient id {shown}  {_counts(held)}")
    if original is None:
        why = "every study of it was shredded" if held.shredded else "the vault holds no Patient ID for it"
        warn(f"no original Patient ID: {why}")


def _counts(held: Holdings) -> str:
    return f"studies {held.studies}  instances {held.instances}  shredded studies {held.shredded}"

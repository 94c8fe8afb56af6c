"""``dicomcloak keys``: the project key, the vault's wrapping keys, owner and sealer key pairs (embedded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dicomcloak.cli._common import JsonFlag, handles_errors
from dicomcloak.cli.vault import KeyArg, VaultArg, open_vault

__all__ = ["app", "init", "retire", "rewrap", "rotate", "sealer"]

app = typer.Typer(help="Manage the project key and the vault's wrapping keys.", no_args_is_help=True)


@app.command("init")
@handles_errors
def init(
    out: Annotated[Path, typer.Option("--out", help="Where to write the new key file (mode 0600).")],
) -> None:
    """Create a new project key; prints its id, never the secret. Refuses to overwrite."""
    from dicomcloak.keys import KEY_ENV, ProjectKey, write_key_file

    key = ProjectKey.generate()
    write_key_file(out, key)
    print(f"key id: {key.key_id}")
    typer.echo(
        f"wrote {out} (mode 0600). Back it up: losing it changes every pseudonym and UID.\n"
        f"Use it with --key {out} or {KEY_ENV}={out}.",
        err=True,
    )


def _key_path(key: Path | None) -> Path:
    """The key file to rewrite; refuses when the wrapping keys come from the environment."""
    import os

    from dicomcloak.errors import KeyError_, UsageError
    from dicomcloak.keys import KEY_ENV, WRAPPING_KEYS_ENV, resolve_key_path

    if os.environ.get(WRAPPING_KEYS_ENV, "").strip():
        raise UsageError(
            f"the wrapping keys come from {WRAPPING_KEYS_ENV}, not the key file",
            reference="wrapping-keys-external",
            hint="rotate or retire them where they are managed",
        )
    path = resolve_key_path(key, os.environ)
    if path is None:
        raise KeyError_(f"no project key: pass --key FILE or set {KEY_ENV}", reference="key-required")
    return path


def _audit(vault: str | None, action: str, **facts: object) -> None:
    if vault is not None:
        from dicomcloak.audit import AuditLog

        log = AuditLog.open(vault)
        try:
            log.append(action, **facts)
        finally:
            log.close()


@app.command("rotate")
@handles_errors
def rotate(
    key: KeyArg = None,
    vault: Annotated[
        str | None, typer.Option("--vault", help="Record the rotation in this vault's audit log.")
    ] = None,
) -> None:
    """Add a new current wrapping key; the previous ones stay (state old) and still unwrap.

    The pseudonymization secret is untouched, so pseudonyms never change. Then run
    'keys rewrap --vault URL' and, once nothing uses it, 'keys retire KEY_ID'.
    """
    from dicomcloak.keys import WrappingKey, load_keyring, write_keyring_file

    path = _key_path(key)
    ring = load_keyring(path)
    new = ring.rotated(WrappingKey.generate())
    write_keyring_file(path, new, overwrite=True)
    _audit(vault, "rotate", previous=ring.current.key_id, current=new.current.key_id)
    print(f"current wrapping key: {new.current.key_id} (previous {ring.current.key_id} is now old)")
    typer.echo(
        f"rewrote {path} (mode 0600). Back it up again: the new wrapping key is only in this file.", err=True
    )


@app.command("rewrap")
@handles_errors
def rewrap(vault: VaultArg, key: KeyArg = None, as_json: JsonFlag = False) -> None:
    """Re-wrap every data key of the vault under the current wrapping key (records are not re-encrypted)."""
    with open_vault(vault, key) as store:
        count = store.rewrap()
        usage = store.key_usage()
    if as_json:
        doc = {"schema": "dicomcloak/rewrap/1", "rewrapped": count, "data_keys_by_wrapping_key": usage}
        print(json.dumps(doc))
        return
    print(f"rewrapped data keys: {count}")
    for key_id, used in sorted(usage.items()):
        print(f"  {key_id}: {used} data keys")


@app.command("retire")
@handles_errors
def retire(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The wrapping key id to retire.")],
    vault: VaultArg,
    key: KeyArg = None,
) -> None:
    """Retire a wrapping key: its secret is deleted from the key file. Refuses while the vault uses it."""
    from dicomcloak.errors import UsageError
    from dicomcloak.keys import load_keyring, write_keyring_file

    path = _key_path(key)
    ring = load_keyring(path)
    retired = ring.retired(key_id)
    with open_vault(vault, key) as store:
        used = store.key_usage().get(key_id, 0)
        if used:
            raise UsageError(
                f"wrapping key {key_id} still wraps {used} data keys in this vault",
                reference="key-still-in-use",
                hint="run 'dicomcloak keys rewrap --vault URL' first",
            )
        write_keyring_file(path, retired, overwrite=True)
        store.audit.append("retire", key_id=key_id)
    print(f"retired wrapping key {key_id}; its secret is deleted from {path}")


@app.command("cert")
@handles_errors
def cert(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where to write owner.key.pem, owner.cert.pem.")],
    name: Annotated[
        str, typer.Option("--name", help="Certificate subject/issuer name (readable in every sealed file).")
    ] = "dicomcloak owner",
    no_passphrase: Annotated[
        bool,
        typer.Option("--no-passphrase", help="Write owner.key.pem unprotected (tests, small sites; warned)."),
    ] = False,
) -> None:
    """Make an owner key pair (RSA 3072) and self-signed certificate for embedded sealing (--recipient).

    For tests and small sites; real sites bring their own PKI. The private key
    (mode 0600) is what re-identifies embedded files: back it up, never share it.
    It is protected by a passphrase, asked twice on a terminal or taken from
    DICOMCLOAK_OWNER_KEY_PASSPHRASE, unless --no-passphrase.
    """
    import os

    from dicomcloak.cli._passphrase import new_passphrase
    from dicomcloak.errors import UsageError
    from dicomcloak.io.writer import write_atomic
    from dicomcloak.keys.cms import make_owner

    key_path, cert_path = out_dir / "owner.key.pem", out_dir / "owner.cert.pem"
    for path in (key_path, cert_path):
        if path.exists():
            raise UsageError(
                f"{path} already exists", reference="cert-exists", hint="choose another --out-dir"
            )
    passphrase = new_passphrase(key_path, unprotected=no_passphrase)
    out_dir.mkdir(parents=True, exist_ok=True)
    key_pem, cert_pem = make_owner(name, passphrase)
    write_atomic(key_path, key_pem)  # created 0600 and renamed: never readable by others
    write_atomic(cert_path, cert_pem)
    os.chmod(cert_path, 0o644)  # a certificate is public
    protection = "unprotected" if passphrase is None else "protected by a passphrase"
    print(f"wrote {key_path} (mode 0600, {protection}) and {cert_path}")
    typer.echo(
        f"Seal with 'deid --recipient {cert_path}'; re-identify with "
        f"'reid --private-key {key_path} --cert {cert_path}'. Back the private key up: "
        "losing it loses re-identification of embedded files.",
        err=True,
    )


@app.command("sealer")
@handles_errors
def sealer(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where to write sealer.key.pem and .cert.pem.")],
    name: Annotated[str, typer.Option("--name", help="Certificate subject name.")] = "dicomcloak sealer",
) -> None:
    """Make a sealer key pair (Ed25519) and self-signed certificate: deid signs embedded seals with it.

    'deid --recipient CERT --sealer-key sealer.key.pem' signs each seal inside its
    encrypted content; the owner restores only seals signed by a sealer it trusts
    ('reid --trusted-sealer sealer.cert.pem'). Keep the key (mode 0600) on the
    de-identifying machines only: whoever holds it can make seals the owner trusts.
    """
    import os

    from dicomcloak.errors import UsageError
    from dicomcloak.io.writer import write_atomic
    from dicomcloak.keys.sealing import SEALER_KEY_ENV, make_sealer

    key_path, cert_path = out_dir / "sealer.key.pem", out_dir / "sealer.cert.pem"
    for path in (key_path, cert_path):
        if path.exists():
            raise UsageError(
                f"{path} already exists", reference="cert-exists", hint="choose another --out-dir"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    key_pem, cert_pem = make_sealer(name)
    write_atomic(key_path, key_pem)  # created 0600 and renamed: never readable by others
    write_atomic(cert_path, cert_pem)
    os.chmod(cert_path, 0o644)  # a certificate is public
    print(f"wrote {key_path} (mode 0600) and {cert_path}")
    typer.echo(
        f"Sign seals with 'deid --recipient OWNER_CERT --sealer-key {key_path}' (or {SEALER_KEY_ENV}); "
        f"the owner re-identifies with 'reid --private-key KEY --trusted-sealer {cert_path}'.",
        err=True,
    )

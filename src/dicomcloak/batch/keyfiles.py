"""Reading the key material a run is configured with: certificates, sealer keys, the owner key, the key ring.

Shared by every way in that assembles sealing or re-identification settings
(``dicomcloak deid``/``reid`` in :mod:`dicomcloak.cli`, the gateway's routes in
:mod:`dicomcloak.net.routes`), so a file is read and checked the same way
everywhere: before any work, so a missing or malformed key stops at once,
never half way through (architecture.md decision 3: every failure fails
closed). Nothing here prompts, prints or warns: that is the caller's edge.
Errors name the file (an operator-chosen path) and a reference code, never a
key's content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dicomcloak.errors import KeyError_

if TYPE_CHECKING:
    from dicomcloak.batch.worker import SealSettings
    from dicomcloak.keys import Keyring
    from dicomcloak.keys.cms import OwnerKey
    from dicomcloak.keys.sealing import TrustedSealers

__all__ = [
    "load_owner",
    "make_seal_settings",
    "owner_certificate_path",
    "read_certificates",
    "read_key_file",
    "read_sealer_key",
    "read_trusted_certificates",
    "read_trusted_sealers",
    "resolve_keyring",
]


def read_key_file(path: Path, reference: str, what: str) -> bytes:
    """The bytes of a key or certificate file; ``reference`` is the error code when it is unreadable."""
    try:
        return path.read_bytes()
    except OSError:
        raise KeyError_(f"cannot read {what} {path}", reference=reference, hint="check the path") from None


def read_certificates(paths: Sequence[Path]) -> tuple[bytes, ...]:
    """The recipients' certificates (PEM or DER) for embedded seals, each parsed now (PS3.15 E.1.2)."""
    from dicomcloak.keys.cms import load_certificate  # cryptography's x509: only when sealing

    pems = tuple(read_key_file(path, "certificate-unreadable", "the certificate") for path in paths)
    for path, pem in zip(paths, pems, strict=True):
        load_certificate(pem, str(path))
    return pems


def read_sealer_key(path: Path) -> bytes:
    """The PEM sealer key at ``path`` that signs embedded seals, parsed now.

    Raises
    ------
    KeyError_
        ``sealer-key-unreadable``, ``sealer-key-invalid``.
    """
    from dicomcloak.keys.sealing import load_sealer_key

    pem = read_key_file(path, "sealer-key-unreadable", "the sealer key")
    load_sealer_key(pem, str(path))
    return pem


def read_trusted_sealers(paths: Sequence[Path]) -> TrustedSealers:
    """The sealers whose signed embedded seals are restored, from PEM certificates (none: an empty list)."""
    from dicomcloak.keys.sealing import load_trusted_sealers

    files = ((read_key_file(path, "certificate-unreadable", "the certificate"), str(path)) for path in paths)
    return load_trusted_sealers(files)


def read_trusted_certificates(paths: Sequence[Path]) -> tuple[tuple[bytes, ...], int]:
    """The trusted sealers' PEM certificates as read, each parsed now, and how many sealers they name.

    For ``reid --jobs``: the workers rebuild the trusted sealers from these
    bytes (:class:`dicomcloak.batch.restoring.EmbeddedKeys`).
    """
    from dicomcloak.keys.sealing import load_trusted_sealers

    pems = tuple(read_key_file(path, "certificate-unreadable", "the certificate") for path in paths)
    return pems, len(load_trusted_sealers(zip(pems, map(str, paths), strict=True)))


def owner_certificate_path(private_key: Path, certificate: Path | None = None) -> Path:
    """The owner's certificate: the one given, else ``owner.cert.pem`` beside the key (``keys cert``)."""
    return certificate or private_key.with_name("owner.cert.pem")


def load_owner(
    private_key: Path, certificate: Path | None = None, passphrase: Callable[[], bytes] | None = None
) -> OwnerKey:
    """The owner's private key and certificate, for restoring embedded seals (architecture.md decision 3).

    ``passphrase`` is asked only when the key is protected (PKCS#8
    encryption): the environment, a prompt, a secrets manager; None with a
    protected key is ``private-key-passphrase``.

    Raises
    ------
    KeyError_
        ``private-key-unreadable``, ``private-key-passphrase``, and the
        parsing errors of :func:`dicomcloak.keys.cms.load_owner_key`.
    """
    from dicomcloak.keys.cms import load_certificate, load_owner_key, owner_key_encrypted

    cert_path = owner_certificate_path(private_key, certificate)
    try:
        key_pem, cert_pem = private_key.read_bytes(), cert_path.read_bytes()
    except OSError:
        raise KeyError_(
            f"cannot read {private_key} or {cert_path}",
            reference="private-key-unreadable",
            hint="give the owner's private key and its certificate (owner.cert.pem beside it by default)",
        ) from None
    parsed = load_certificate(cert_pem, str(cert_path))
    secret = None
    if owner_key_encrypted(key_pem):
        if passphrase is None:
            raise KeyError_(
                f"{private_key} is protected by a passphrase and none was given",
                reference="private-key-passphrase",
                hint="configure where its passphrase comes from",
            )
        secret = passphrase()
    return load_owner_key(key_pem, parsed, str(private_key), secret)


def resolve_keyring(key_file: Path | None, environ: Mapping[str, str]) -> tuple[Keyring, Path] | None:
    """The key ring (wrapping keys from the environment if set) and its key file; None when none is named.

    ``key_file`` wins over ``DICOMCLOAK_KEY_FILE`` (:func:`dicomcloak.keys.resolve_key_path`).
    """
    from dicomcloak.keys import resolve_key_path, resolve_provider

    path = resolve_key_path(key_file, environ)
    if path is None:
        return None
    return resolve_provider(path, environ).keyring(), path


def make_seal_settings(
    recipients: Sequence[Path],
    sealer_key: Callable[[], bytes],
    vault: str | None,
    keyring: Callable[[], Keyring],
    *,
    audit: str | None = None,
    vault_wait: float | None = None,
) -> SealSettings | None:
    """How originals are sealed: certificates checked first, then the sealer key, then the key ring.

    ``sealer_key`` is called only with ``recipients`` (embedded seals are
    signed), ``keyring`` only with a ``vault``; None when nothing is sealed.
    """
    from dicomcloak.batch.worker import SealSettings

    if not recipients and vault is None:
        return None
    pems = read_certificates(recipients)
    signer = sealer_key() if recipients else None
    ring = keyring() if vault is not None else None
    return SealSettings(pems, vault, ring, audit, vault_wait, signer)


"""Throw-away keys for embedded seals (tests and benchmarks): an owner, a sealer, the owner's trust in it."""

from __future__ import annotations

from dataclasses import dataclass

from dicomcloak.api import Reidentifier, Sealer
from dicomcloak.keys.cms import OwnerKey, load_certificate, load_owner_key, make_owner
from dicomcloak.keys.sealing import (
    SealerKey,
    TrustedSealers,
    load_sealer_key,
    load_trusted_sealers,
    make_sealer,
)

__all__ = ["SealingKeys", "make_sealing_keys"]


@dataclass(frozen=True)
class SealingKeys:
    """An owner key pair and a sealer key the owner trusts (``sealer_pem``: its certificate)."""

    owner: OwnerKey
    signer: SealerKey
    trusted: TrustedSealers
    sealer_pem: bytes

    def sealer(self, *, vault: bool = False) -> Sealer:
        """A :class:`Sealer` to the owner's certificate, signing with the sealer key."""
        return Sealer([self.owner.certificate], vault=vault, signer=self.signer)

    def reidentifier(self, *, accept_unverified: bool = False) -> Reidentifier:
        """A :class:`Reidentifier` with the owner's key, trusting the sealer."""
        return Reidentifier(self.owner, accept_unverified=accept_unverified, trusted=self.trusted)


def make_sealing_keys() -> SealingKeys:
    """New keys: RSA-3072 owner (about a second to generate: make them once per module), Ed25519 sealer."""
    key_pem, cert_pem = make_owner()
    owner = load_owner_key(key_pem, load_certificate(cert_pem, "owner.cert.pem"), "owner.key.pem")
    sealer_key, sealer_cert = make_sealer()
    trusted = load_trusted_sealers([(sealer_cert, "sealer.cert.pem")])
    return SealingKeys(owner, load_sealer_key(sealer_key, "sealer.key.pem"), trusted, sealer_cert)

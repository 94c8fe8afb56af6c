"""Sealer keys: who made an embedded seal, signed inside it, checked against the owner's trusted sealers.

The owner's certificate is public, so anyone can encrypt a Modified
Attributes Sequence to it; the envelope proves nothing about who did
(PS3.15 E.1.1 names no authentication of the sealer). A dicomcloak seal
therefore carries a signature by a *sealer key* inside its encrypted content
(sign, then encrypt: the signature and the sealer's identity are hidden from
everyone but the recipients). The owner keeps a list of sealer certificates
it trusts (``reid --trusted-sealer``); a seal signed by any other key, or not
signed, is refused unless the owner accepts unverified seals.

Ed25519 is the default (deterministic, RFC 8032; a 64-byte signature); ECDSA
(raw ``r || s``, fixed size) and RSA-PSS keys from a site's own PKI are
accepted too. A sealer is named by its **fingerprint**: SHA-256 of its
SubjectPublicKeyInfo (DER), so deid needs only the private key and the owner
may trust a certificate or any other carrier of the same public key.
Certificates are trust anchors here, as SSH host keys are: their validity
period is not checked (a seal made years ago must still open) and
revocation is removing the certificate from the trusted list.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID

from dicomcloak.errors import KeyError_

__all__ = [
    "SEALER_KEY_ENV",
    "SealerKey",
    "TrustedSealers",
    "fingerprint",
    "load_sealer_key",
    "load_trusted_sealers",
    "make_sealer",
]

#: Environment variable naming the sealer's private key file when ``deid --sealer-key`` is not given.
SEALER_KEY_ENV = "DICOMCLOAK_SEALER_KEY"
_VALID_DAYS = 3650
_PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_PublicKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def fingerprint(public_key: _PublicKey) -> bytes:
    """SHA-256 of the key's SubjectPublicKeyInfo (DER): the sealer's name inside a seal."""
    der = serialization.Encoding.DER
    spki = public_key.public_bytes(der, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


@dataclass(frozen=True)
class SealerKey:
    """A sealer's private key and its fingerprint; ``repr`` shows the fingerprint only."""

    key: _PrivateKey = field(repr=False)

    @cached_property
    def fingerprint(self) -> bytes:
        """SHA-256 of the public key (see :func:`fingerprint`); computed once."""
        return fingerprint(self.key.public_key())

    def sign(self, message: bytes) -> bytes:
        """Sign ``message``: Ed25519, ECDSA-SHA256 as fixed-size ``r || s``, or RSA-PSS-SHA256."""
        key = self.key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(message)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
            size = (key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return key.sign(message, _PSS, hashes.SHA256())


class TrustedSealers:
    """The public keys of the sealers an owner trusts, by fingerprint."""

    def __init__(self, keys: Iterable[_PublicKey] = ()) -> None:
        self._keys: Mapping[bytes, _PublicKey] = {fingerprint(key): key for key in keys}

    def __len__(self) -> int:
        return len(self._keys)

    def knows(self, sealer: bytes) -> bool:
        """Whether the sealer named by this fingerprint is trusted."""
        return sealer in self._keys

    def verify(self, sealer: bytes, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` over ``message`` was made by the trusted sealer ``sealer``."""
        key = self._keys.get(sealer)
        if key is None:
            return False
        try:
            _verify(key, signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def _verify(key: _PublicKey, signature: bytes, message: bytes) -> None:
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, message)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        if len(signature) != 2 * size:
            raise InvalidSignature
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    else:
        key.verify(signature, message, _PSS, hashes.SHA256())


def load_sealer_key(data: bytes, name: str) -> SealerKey:
    """Parse an unencrypted PEM sealer private key (Ed25519, EC or RSA); ``name`` appears in errors."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyError_(
            f"{name} is not an unencrypted PEM private key",
            reference="sealer-key-invalid",
            hint="pass the sealer.key.pem written by 'dicomcloak keys sealer'",
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise KeyError_(
            f"{name} is not an Ed25519, EC or RSA key", reference="sealer-key-invalid",
            hint="make one with 'dicomcloak keys sealer --out-dir DIR'",
        )
    return SealerKey(key)


def load_trusted_sealers(files: Iterable[tuple[bytes, str]]) -> TrustedSealers:
    """Trusted sealers from PEM certificates (a file may hold several); ``(data, name)`` pairs."""
    keys: list[_PublicKey] = []
    for data, name in files:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise KeyError_(
                f"{name} holds no PEM certificate", reference="certificate-invalid",
                hint="pass the sealer.cert.pem written by 'dicomcloak keys sealer'",
            ) from None
        for certificate in certificates:
            key = certificate.public_key()
            if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
                raise KeyError_(f"{name}: not an Ed25519, EC or RSA key", reference="certificate-invalid")
            keys.append(key)
    return TrustedSealers(keys)


def make_sealer(common_name: str = "dicomcloak sealer") -> tuple[bytes, bytes]:
    """A new Ed25519 sealer key and self-signed certificate, as (private key PEM, certificate PEM).

    The certificate is what the owner trusts (``reid --trusted-sealer``); it
    travels nowhere else (seals carry the key's fingerprint, encrypted).
    """
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, None)  # Ed25519 hashes internally: no separate digest (RFC 8410)
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM)

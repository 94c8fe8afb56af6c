"""CMS EnvelopedData for the Encrypted Attributes Sequence (PS3.15 E.1.1 step 4), and owner certificates.

PS3.15 E.1.1 requires RSA key transport (RFC 3370) and AES (RFC 3565) or
Triple-DES content encryption: ``cryptography``'s PKCS#7 envelope builder
makes exactly that (AES-CBC). CBC is not authenticated, so the sealed content
carries its own integrity check (:mod:`dicomcloak.engine.originals`).
Content is sealed in binary mode: without it, line endings are translated
and binary values corrupted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from dicomcloak.errors import KeyError_, SealError

__all__ = [
    "Envelope",
    "OwnerKey", "load_certificate", "load_owner_key", "make_owner",
    "open_envelope", "owner_key_encrypted",
    "seal_envelope",
]

_RSA_BITS = 3072  # NIST SP 800-57: 128-bit security
_VALID_DAYS = 3650


@dataclass(frozen=True)
class OwnerKey:
    """A recipient's private key and the certificate that names it in RecipientInfo."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


class Envelope:
    """Seals plaintexts to a fixed set of recipients: one CMS EnvelopedData per plaintext.

    The recipients' certificates are checked and the builder configured once
    (a file at a time, that setup was a fifth of the envelope's cost). Each
    :meth:`seal` still draws a fresh AES-256 content-encryption key and
    transports it to every recipient (RFC 5652 6.2.1), so each file stays
    independently decryptable (PS3.15 E.1.1 step 4, and ``gdcmanon``).
    """

    def __init__(self, recipients: Sequence[x509.Certificate]) -> None:
        if not recipients:
            raise SealError("no recipient certificate to seal to", reference="seal-no-recipient")
        builder = pkcs7.PKCS7EnvelopeBuilder().set_content_encryption_algorithm(_aes256_cbc())
        for certificate in recipients:
            builder = builder.add_recipient(certificate)
        self._builder = builder

    def seal(self, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` to every recipient: DER CMS EnvelopedData, AES-256-CBC content encryption."""
        return self._builder.set_data(plaintext).encrypt(serialization.Encoding.DER, _BINARY)


_BINARY = (pkcs7.PKCS7Options.Binary,)


def seal_envelope(plaintext: bytes, recipients: Sequence[x509.Certificate]) -> bytes:
    """Encrypt ``plaintext`` to every recipient (one-off; :class:`Envelope` for many plaintexts)."""
    return Envelope(recipients).seal(plaintext)


def _aes256_cbc() -> type:
    # PS3.15 E.1.1 step 4 mandates CMS with AES (RFC 3565), which is CBC; the sealed
    # content carries a SHA-256 integrity check checked before anything is restored.
    from cryptography.hazmat.primitives.ciphers import algorithms

    return algorithms.AES256


def open_envelope(ciphertext: bytes, owner: OwnerKey) -> bytes:
    """Decrypt DER CMS EnvelopedData with the owner's key; trailing DICOM padding is ignored.

    Raises
    ------
    SealError
        ``seal-wrong-key`` when the envelope is not addressed to this
        certificate or the key does not open it; ``seal-tampered`` when the
        envelope is damaged.
    """
    der = _der_only(ciphertext)
    try:
        return pkcs7.pkcs7_decrypt_der(der, owner.certificate, owner.key, [])
    except Exception:  # noqa: BLE001 - ValueError, UnsupportedAlgorithm, ...: all fail closed, typed
        if _addressed_to(der, owner.certificate):
            raise _tampered() from None
        raise SealError(
            "the sealed attributes are not addressed to this certificate or key",
            reference="seal-wrong-key",
            hint="use the private key and certificate of one of the recipients named at de-identification",
        ) from None


def _der_only(data: bytes) -> bytes:
    """The DER SEQUENCE at the start of ``data`` (odd DER lengths are padded to even, PS3.5 7.1.1)."""
    if len(data) < 2 or data[0] != 0x30:
        raise _tampered()
    first = data[1]
    if first < 0x80:
        return data[: 2 + first]
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        raise _tampered()
    length = int.from_bytes(data[2 : 2 + count], "big")
    if 2 + count + length > len(data):
        raise _tampered()
    return data[: 2 + count + length]


def _addressed_to(der: bytes, certificate: x509.Certificate) -> bool:
    """Whether the issuer and serial of ``certificate`` appear in the envelope (its RecipientInfo)."""
    serial = certificate.serial_number
    encoded = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
    return encoded in der and certificate.issuer.public_bytes() in der


def _tampered() -> SealError:
    return SealError(
        "the Encrypted Content is damaged",
        reference="seal-tampered",
        hint="the file was altered after de-identification; restore it from a trusted copy",
    )


def make_owner(common_name: str = "dicomcloak owner", passphrase: bytes | None = None) -> tuple[bytes, bytes]:
    """A new RSA-3072 key and self-signed certificate, as (private key PEM, certificate PEM).

    For tests and small sites; real sites bring their own PKI. The
    certificate's issuer name is readable by anyone in every sealed file's
    RecipientInfo: choose a name that identifies no person. With a
    `passphrase`, the key is PKCS#8 ``ENCRYPTED PRIVATE KEY`` (PBES2:
    PBKDF2-HMAC-SHA256 and AES-256-CBC, what ``cryptography``'s
    ``BestAvailableEncryption`` writes; OpenSSL and ``gdcmanon`` read it).
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    protection: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if passphrase is not None:
        protection = serialization.BestAvailableEncryption(passphrase)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, protection)
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM)


def load_certificate(data: bytes, name: str) -> x509.Certificate:
    """Parse a PEM (or DER) certificate; ``name`` (an operator-chosen path) appears in errors."""
    try:
        if data.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise KeyError_(
            f"{name} is not a certificate", reference="certificate-invalid", hint="pass a PEM certificate"
        ) from None


def owner_key_encrypted(key_data: bytes) -> bool:
    """True when a PEM private key is protected by a passphrase (PKCS#8 encrypted, or OpenSSL's old form)."""
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in key_data or b"Proc-Type: 4,ENCRYPTED" in key_data


def load_owner_key(
    key_data: bytes, certificate: x509.Certificate, name: str, passphrase: bytes | None = None
) -> OwnerKey:
    """Parse a PEM RSA private key (encrypted: opened with `passphrase`) and pair it with ``certificate``.

    Raises
    ------
    KeyError_
        ``private-key-passphrase``: the key is encrypted and no passphrase was
        given, or the passphrase does not open it; ``private-key-invalid``,
        ``private-key-mismatch``.
    """
    encrypted = owner_key_encrypted(key_data)
    if encrypted and not passphrase:
        raise _passphrase_error(name, "is protected by a passphrase and none was given")
    try:
        key = serialization.load_pem_private_key(key_data, password=passphrase if encrypted else None)
    except (ValueError, TypeError):
        if encrypted:
            raise _passphrase_error(name, "cannot be opened with this passphrase") from None
        raise KeyError_(
            f"{name} is not a PEM private key",
            reference="private-key-invalid",
            hint="pass the PEM private key matching the recipient certificate",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyError_(
            f"{name} is not an RSA key", reference="private-key-invalid", hint="CMS key transport is RSA"
        )
    if key.public_key().public_numbers() != certificate.public_key().public_numbers():  # type: ignore[union-attr]
        raise KeyError_(
            f"{name} does not match the certificate",
            reference="private-key-mismatch",
            hint="pass the certificate issued for this private key",
        )
    return OwnerKey(key, certificate)


def _passphrase_error(name: str, what: str) -> KeyError_:
    return KeyError_(
        f"{name} {what}",
        reference="private-key-passphrase",
        hint="give the passphrase 'keys cert' protected it with (prompted on a terminal, "
        "or DICOMCLOAK_OWNER_KEY_PASSPHRASE)",
    )

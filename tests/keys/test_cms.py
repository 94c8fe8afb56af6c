"""CMS EnvelopedData sealing: real RSA keys and certificates, wrong keys and damaged envelopes fail closed."""

from __future__ import annotations

import pytest

from dicomcloak.errors import KeyError_, SealError
from dicomcloak.keys.cms import (
    Envelope,
    OwnerKey,
    load_certificate,
    load_owner_key,
    make_owner,
    open_envelope,
    seal_envelope,
)

PLAINTEXT = bytes(range(256)) * 3 + b"\r\n\n\r"  # binary content with line endings must survive


def _owner() -> OwnerKey:
    key_pem, cert_pem = make_owner()
    return load_owner_key(key_pem, load_certificate(cert_pem, "cert"), "key")


@pytest.fixture(scope="module")
def alice() -> OwnerKey:
    return _owner()


@pytest.fixture(scope="module")
def bob() -> OwnerKey:
    return _owner()


def test_round_trip_is_binary_exact(alice: OwnerKey) -> None:
    assert open_envelope(seal_envelope(PLAINTEXT, [alice.certificate]), alice) == PLAINTEXT


def test_every_recipient_opens_it(alice: OwnerKey, bob: OwnerKey) -> None:
    sealed = seal_envelope(PLAINTEXT, [alice.certificate, bob.certificate])
    assert open_envelope(sealed, alice) == open_envelope(sealed, bob) == PLAINTEXT


def test_encryption_is_randomized(alice: OwnerKey) -> None:
    assert seal_envelope(PLAINTEXT, [alice.certificate]) != seal_envelope(PLAINTEXT, [alice.certificate])


def _content_key(sealed: bytes, owner: OwnerKey) -> bytes:
    """The AES key the envelope transports to ``owner`` (RFC 5652 6.2.1: RSA-3072, 384-byte encryptedKey)."""
    from cryptography.hazmat.primitives.asymmetric import padding

    marker = b"\x04\x82\x01\x80"  # OCTET STRING of 384 bytes
    start = sealed.index(marker) + len(marker)
    return owner.key.decrypt(sealed[start : start + 384], padding.PKCS1v15())


def test_one_envelope_draws_a_fresh_content_key_per_file(alice: OwnerKey, bob: OwnerKey) -> None:
    # Recipients are set up once per batch; every file still gets its own AES key, transported to
    # every recipient, so each file opens alone (PS3.15 E.1.1 step 4).
    envelope = Envelope([alice.certificate, bob.certificate])
    first, second = envelope.seal(PLAINTEXT), envelope.seal(PLAINTEXT[::-1])
    assert open_envelope(first, bob) == PLAINTEXT
    assert open_envelope(second, alice) == PLAINTEXT[::-1]
    alone = Envelope([alice.certificate])
    keys = {_content_key(alone.seal(PLAINTEXT), alice) for _ in range(3)}
    assert len(keys) == 3
    assert all(len(key) == 32 for key in keys)  # AES-256


def test_an_envelope_needs_a_recipient() -> None:
    with pytest.raises(SealError) as caught:
        Envelope([])
    assert caught.value.reference == "seal-no-recipient"


def test_trailing_pad_byte_is_ignored(alice: OwnerKey) -> None:
    sealed = seal_envelope(PLAINTEXT, [alice.certificate])
    assert open_envelope(sealed + b"\x00", alice) == PLAINTEXT


def test_another_owner_cannot_open_it(alice: OwnerKey, bob: OwnerKey) -> None:
    with pytest.raises(SealError) as caught:
        open_envelope(seal_envelope(PLAINTEXT, [alice.certificate]), bob)
    assert caught.value.reference == "seal-wrong-key"


def test_a_key_that_does_not_match_its_certificate_is_refused(alice: OwnerKey, bob: OwnerKey) -> None:
    from cryptography.hazmat.primitives import serialization

    bob_pem = bob.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyError_) as caught:
        load_owner_key(bob_pem, alice.certificate, "key")
    assert caught.value.reference == "private-key-mismatch"


def test_bit_flips_in_the_envelope_fail_closed_or_are_caught_by_the_content_check(alice: OwnerKey) -> None:
    sealed = seal_envelope(PLAINTEXT, [alice.certificate])
    outcomes: set[str] = set()
    for position in range(0, len(sealed), 13):
        damaged = bytearray(sealed)
        damaged[position] ^= 0x01
        try:
            opened = open_envelope(bytes(damaged), alice)
        except SealError as error:
            outcomes.add(error.reference)
            continue
        # CBC is malleable and some DER fields are inert: what still decrypts is either intact or
        # garbled; garbled content is caught by the sealed content's own check (test_sealing).
        outcomes.add("intact" if opened == PLAINTEXT else "decrypted-garbled")
    assert outcomes <= {"seal-tampered", "seal-wrong-key", "decrypted-garbled", "intact"}
    assert "seal-tampered" in outcomes


def test_garbage_is_tampered(alice: OwnerKey) -> None:
    for garbage in (b"", b"\x30", b"\x30\x84\xff\xff\xff\xff", b"not der at all"):
        with pytest.raises(SealError, match="seal-tampered"):
            open_envelope(garbage, alice)


def test_no_recipient_is_refused() -> None:
    with pytest.raises(SealError, match="seal-no-recipient"):
        seal_envelope(PLAINTEXT, [])


def test_bad_certificate_and_key_files_are_typed_errors() -> None:
    with pytest.raises(KeyError_, match="certificate-invalid"):
        load_certificate(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", "c.pem")
    _, cert_pem = make_owner()
    with pytest.raises(KeyError_, match="private-key-invalid"):
        load_owner_key(b"garbage", load_certificate(cert_pem, "c.pem"), "k.pem")

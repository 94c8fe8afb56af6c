"""AES-256-GCM helpers fail closed; the environment provider supplies wrapping keys."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dicomcloak.errors import KeyError_, SealError
from dicomcloak.keys import (
    WRAPPING_KEYS_ENV,
    EnvironmentKeyProvider,
    KeyFileProvider,
    KeyState,
    ProjectKey,
    aead,
    load_keyring,
    resolve_provider,
    write_key_file,
)


def test_record_roundtrip_and_binding() -> None:
    key = AESGCM(aead.new_data_key())
    blob = aead.seal_blob(key, b"payload", aead.record_aad("2.25.1", "2.25.2"))
    opened = aead.open_blob(key, blob, aead.record_aad("2.25.1", "2.25.2"), reference="r", what="w")
    assert opened == b"payload"
    for aad in (aead.record_aad("2.25.1", "2.25.3"), aead.record_aad("2.25.9", "2.25.2")):
        with pytest.raises(SealError) as info:
            aead.open_blob(key, blob, aad, reference="vault-record-tampered", what="w")
        assert info.value.reference == "vault-record-tampered"


@pytest.mark.parametrize("position", [0, 12, -1])
def test_flipped_bit_fails(position: int) -> None:
    key = AESGCM(aead.new_data_key())
    blob = bytearray(aead.seal_blob(key, b"payload", b"aad"))
    blob[position] ^= 0x01
    with pytest.raises(SealError):
        aead.open_blob(key, bytes(blob), b"aad", reference="x", what="w")


def test_wrap_unwrap_and_wrong_wrapping_key() -> None:
    secret, other, data_key = os.urandom(32), os.urandom(32), aead.new_data_key()
    wrapped = aead.wrap_key(secret, data_key, aead.wrapped_key_aad("s", "w1"))
    assert aead.unwrap_key(secret, wrapped, aead.wrapped_key_aad("s", "w1"), what="k") == data_key
    with pytest.raises(SealError) as info:
        aead.unwrap_key(other, wrapped, aead.wrapped_key_aad("s", "w1"), what="k")
    assert info.value.reference == "vault-key-tampered"
    with pytest.raises(SealError):
        aead.unwrap_key(secret, wrapped[:10], aead.wrapped_key_aad("s", "w1"), what="k")


def test_environment_provider(tmp_path: Path) -> None:
    path = tmp_path / "p.key"
    write_key_file(path, ProjectKey.generate())
    first, second = os.urandom(32), os.urandom(32)
    value = ",".join(base64.b64encode(s).decode() for s in (first, second))
    provider = resolve_provider(path, {WRAPPING_KEYS_ENV: value})
    assert isinstance(provider, EnvironmentKeyProvider)
    ring = provider.keyring()
    assert ring.project == load_keyring(path).project
    assert ring.current.secret == first
    assert [k.state for k in ring.wrapping] == [KeyState.CURRENT, KeyState.OLD]
    assert isinstance(resolve_provider(path, {}), KeyFileProvider)


@pytest.mark.parametrize("value", ["not-base64!", base64.b64encode(b"short").decode(), " , "])
def test_environment_provider_rejects_bad_values(tmp_path: Path, value: str) -> None:
    path = tmp_path / "p.key"
    write_key_file(path, ProjectKey.generate())
    with pytest.raises(KeyError_) as info:
        EnvironmentKeyProvider(path, value).keyring()
    assert info.value.reference == "wrapping-keys-invalid"

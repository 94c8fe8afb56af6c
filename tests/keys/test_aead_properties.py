"""Hypothesis: sealing round-trips any payload, and any single flipped bit fails closed."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomcloak.errors import SealError
from dicomcloak.keys import aead
from dicomcloak.vault import VaultRecord

KEY = AESGCM(bytes(range(32)))
UIDS = st.from_regex(r"2\.25\.[1-9][0-9]{0,38}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=2048), study=UIDS, instance=UIDS, bit=st.integers(min_value=0))
def test_roundtrip_and_single_bit_flip(payload: bytes, study: str, instance: str, bit: int) -> None:
    aad = aead.record_aad(study, instance)
    blob = aead.seal_blob(KEY, payload, aad)
    assert aead.open_blob(KEY, blob, aad, reference="r", what="w") == payload
    flipped = bytearray(blob)
    position = bit % (len(blob) * 8)
    flipped[position // 8] ^= 1 << (position % 8)
    with pytest.raises(SealError) as info:
        aead.open_blob(KEY, bytes(flipped), aad, reference="vault-record-tampered", what="w")
    assert info.value.reference == "vault-record-tampered"


@given(study=UIDS, instance=UIDS)
def test_associated_data_is_unambiguous(study: str, instance: str) -> None:
    assert aead.record_aad(study, instance) != aead.record_aad(instance, study) or study == instance
    assert aead.record_aad(study, instance) != aead.uid_map_aad(study, instance)


def test_record_repr_hides_payload_and_originals() -> None:
    record = VaultRecord("PAAA", "2.25.1", "2.25.2", b"Smithers^Waylon", (("2.25.2", "1.2.840.1"),))
    assert "Smithers" not in repr(record) and "1.2.840.1" not in repr(record)

"""Embedded seals bound to their instance and signed by a trusted sealer (issue 13, item 2).

The attacks of the issue, on real files: a seal copied from one patient's
file into another's; a seal forged with the owner's public certificate and a
made-up identity; a seal claiming a trusted sealer with a signature it did
not make; every bit of the sealed plaintext flipped. Each is refused, and
what ``--accept-unverified`` lets through is exactly what it says.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomcloak.api import Deidentifier, Reidentifier, Sealer
from dicomcloak.engine.embedded import ENCRYPTED_ATTRIBUTES, OpenedSeal, open_embedded
from dicomcloak.engine.originals import capture_encoded
from dicomcloak.engine.sealcontent import (
    SIGNATURE_LABEL,
    decode_sealed,
    encode_sealed,
    encode_sealed_v1,
)
from dicomcloak.errors import SealError
from dicomcloak.io.binding import binding_digest
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.keys.cms import seal_envelope
from dicomcloak.keys.sealing import load_sealer_key, make_sealer
from dicomcloak.policy.model import Policy
from dicomcloak.testing.restored import differences
from dicomcloak.testing.sealing import SealingKeys, make_sealing_keys

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
DEID = Deidentifier(Policy(), ProjectKey(bytes(range(32))), "tests")


@pytest.fixture(scope="module")
def keys() -> SealingKeys:
    return make_sealing_keys()


def _patient(name: str, patient_id: str, sop: str, source: str = "CT_small.dcm") -> Dataset:
    ds = read_dataset((TEST_FILES / source).read_bytes())
    ds.PatientName, ds.PatientID = name, patient_id
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
    return read_dataset(encode_dataset(ds))


def _sealed(source: Dataset, sealer: Sealer) -> Dataset:
    """The de-identified file of ``source`` with its embedded seal, as written and read back."""
    outcome = DEID.deidentify(source)
    sealer.seal(source, outcome)
    return read_dataset(encode_dataset(outcome.dataset))


def _with_seal_of(target: Dataset, donor: Dataset) -> Dataset:
    """``target`` with the Encrypted Attributes Sequence of ``donor`` spliced in, written and read back."""
    target[ENCRYPTED_ATTRIBUTES] = donor[ENCRYPTED_ATTRIBUTES]
    return read_dataset(encode_dataset(target))


def _refused(reidentifier: Reidentifier, ds: Dataset) -> str:
    with pytest.raises(SealError) as caught:
        reidentifier.reidentify(ds)
    return caught.value.reference


def test_a_seal_copied_into_another_patients_file_is_refused(keys: SealingKeys) -> None:
    alice = _sealed(_patient("Alice^A", "ID-A", "1.2.3.1"), keys.sealer())
    bob_source = _patient("Bob^B", "ID-B", "1.2.3.2")
    bob = _sealed(bob_source, keys.sealer())
    assert keys.reidentifier().reidentify(bob).dataset.PatientName == "Bob^B"
    spliced = _with_seal_of(bob, alice)
    assert _refused(keys.reidentifier(), spliced) == "seal-mismatch"
    assert _refused(keys.reidentifier(accept_unverified=True), spliced) == "seal-mismatch"


def test_a_seal_on_a_file_changed_after_deidentification_is_refused(keys: SealingKeys) -> None:
    sealed = _sealed(_patient("Alice^A", "ID-A", "1.2.3.1"), keys.sealer())
    sealed.StudyDescription = "edited by a viewer"  # same SOP Instance UID, another header
    assert _refused(keys.reidentifier(), read_dataset(encode_dataset(sealed))) == "seal-mismatch"


def _forged(victim: Dataset, owner_certificate_sealer: Sealer, name: str) -> Dataset:
    """What an attacker holding only the owner's public certificate makes of ``victim``'s file.

    A made-up identity is de-identified and sealed, bound to the victim's SOP
    Instance UID and binding digest (both public), and spliced in.
    """
    made_up = _patient(name, "FAKE-1", str(victim.SOPInstanceUID))
    payload, _ = capture_encoded(made_up, DEID.deidentify(made_up).changes)
    sealed = owner_certificate_sealer.capture(made_up, DEID.deidentify(made_up))
    assert sealed.payload == payload
    sop, binding = str(victim.SOPInstanceUID), binding_digest(victim)
    victim[ENCRYPTED_ATTRIBUTES] = owner_certificate_sealer.seal_element(sealed, sop, binding)
    return read_dataset(encode_dataset(victim))


def test_a_seal_forged_with_the_public_certificate_is_refused_by_default(keys: SealingKeys) -> None:
    victim = _sealed(_patient("Alice^A", "ID-A", "1.2.3.1"), keys.sealer())
    forged = _forged(victim, Sealer([keys.owner.certificate]), "Made^Up")  # no sealer key: unsigned
    assert _refused(keys.reidentifier(), forged) == "seal-unverified"
    assert _refused(Reidentifier(keys.owner), forged) == "seal-unverified"  # no trusted sealer at all
    accepted = keys.reidentifier(accept_unverified=True).reidentify(forged)
    assert accepted.dataset.PatientName == "Made^Up"  # what --accept-unverified means, said in the report
    assert not accepted.verified and accepted.bound and accepted.sealer == b""


def test_a_seal_signed_by_an_untrusted_sealer_is_refused(keys: SealingKeys) -> None:
    victim = _sealed(_patient("Alice^A", "ID-A", "1.2.3.1"), keys.sealer())
    attacker = load_sealer_key(make_sealer("attacker")[0], "attacker")
    forged = _forged(victim, Sealer([keys.owner.certificate], signer=attacker), "Made^Up")
    with pytest.raises(SealError, match="not among the trusted sealers") as caught:
        keys.reidentifier().reidentify(forged)
    assert caught.value.reference == "seal-unverified"
    assert attacker.fingerprint.hex()[:16] in caught.value.message


class _Impostor:
    """Signs with one key and claims another's fingerprint (a forger naming a trusted sealer)."""

    def __init__(self, claimed: bytes) -> None:
        self.fingerprint = claimed
        self._key = load_sealer_key(make_sealer()[0], "impostor")

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def test_a_signature_not_made_by_the_trusted_sealer_it_names_is_refused_always(keys: SealingKeys) -> None:
    victim = _sealed(_patient("Alice^A", "ID-A", "1.2.3.1"), keys.sealer())
    impostor = Sealer([keys.owner.certificate], signer=_Impostor(keys.signer.fingerprint))
    forged = _forged(victim, impostor, "Made^Up")
    assert _refused(keys.reidentifier(), forged) == "seal-signature-invalid"
    assert _refused(keys.reidentifier(accept_unverified=True), forged) == "seal-signature-invalid"


def _plaintext(keys: SealingKeys) -> tuple[bytes, Dataset]:
    source = _patient("Alice^A", "ID-A", "1.2.3.1")
    outcome = DEID.deidentify(source)
    payload, _ = capture_encoded(source, outcome.changes)
    return encode_sealed(payload, "1.2.3.9", b"\x07" * 32, keys.signer), outcome.dataset


def test_every_bit_flip_of_a_signed_plaintext_fails_closed(keys: SealingKeys) -> None:
    plaintext, _ = _plaintext(keys)
    content = decode_sealed(plaintext)
    assert (content.version, content.instance, content.binding) == (2, "1.2.3.9", b"\x07" * 32)
    assert keys.trusted.verify(content.sealer, content.signature, content.signed)
    assert content.signed.startswith(SIGNATURE_LABEL)
    for position in range(0, len(plaintext), 5):
        damaged = bytearray(plaintext)
        damaged[position] ^= 0x10
        with pytest.raises(SealError) as caught:
            decode_sealed(bytes(damaged))
        assert caught.value.reference in {"seal-tampered", "seal-content-invalid"}


def test_bytes_added_after_the_check_are_tampering(keys: SealingKeys) -> None:
    plaintext, _ = _plaintext(keys)
    for extra in (b"\x01\x04\x06\x10OB\x00\x00\x00\x00\x00\x00", b"\x00\x00"):
        with pytest.raises(SealError, match="seal-tampered"):
            decode_sealed(plaintext + extra)


def _open(keys: SealingKeys, ds: Dataset, plaintext: bytes, *, accept: bool) -> OpenedSeal:
    """Open ``plaintext`` sealed into ``ds`` (a seal another version or tool made)."""
    holder = read_dataset(encode_dataset(_sealed(_patient("X^Y", "ID", "1.2.3.5"), keys.sealer())))
    item = holder[ENCRYPTED_ATTRIBUTES].value[0]
    item.EncryptedContent = seal_envelope(plaintext, [keys.owner.certificate])
    ds[ENCRYPTED_ATTRIBUTES] = holder[ENCRYPTED_ATTRIBUTES]
    written = read_dataset(encode_dataset(ds))
    return open_embedded(
        written, keys.owner, binding=lambda: binding_digest(written), trusted=keys.trusted,
        accept_unverified=accept,
    )


def test_seals_of_the_first_version_and_of_other_tools_need_accept_unverified(keys: SealingKeys) -> None:
    source = _patient("Alice^A", "ID-A", "1.2.3.1")
    outcome = DEID.deidentify(source)
    payload, _ = capture_encoded(source, outcome.changes)
    for plaintext in (encode_sealed_v1(payload), payload):  # integrity check only; nothing (gdcmanon)
        with pytest.raises(SealError, match="seal-unverified"):
            _open(keys, outcome.dataset, plaintext, accept=False)
        opened = _open(keys, outcome.dataset, plaintext, accept=True)
        assert (opened.verified, opened.bound) == (False, False)
        assert opened.item.PatientName == "Alice^A"


def test_a_damaged_first_version_seal_is_tampered(keys: SealingKeys) -> None:
    source = _patient("Alice^A", "ID-A", "1.2.3.1")
    damaged = bytearray(encode_sealed_v1(capture_encoded(source, DEID.deidentify(source).changes)[0]))
    damaged[-3] ^= 0x01
    with pytest.raises(SealError, match="seal-tampered"):
        decode_sealed(bytes(damaged))


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm"])
def test_signed_bound_seals_restore_exactly(name: str, keys: SealingKeys) -> None:
    source = read_dataset((TEST_FILES / name).read_bytes())
    result = keys.reidentifier().reidentify(_sealed(source, keys.sealer()))
    assert (result.verified, result.bound, result.sealer) == (True, True, keys.signer.fingerprint)
    assert differences(source, read_dataset(encode_dataset(result.dataset))) == []

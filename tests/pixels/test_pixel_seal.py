"""Cleaned pixels sealed with the originals; reid restores Pixel Data and transfer syntax byte for byte.

The real path: read, de-identify, redact (a stand-in box on every frame), mark,
seal (embedded to a certificate, or a record in a real SQLite/PostgreSQL
vault), encode, read the output back, re-identify, encode: the result's
Pixel Data value, transfer syntax and every attribute equal the input's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomcloak.api import Deidentifier, Reidentifier, Sealed, Sealer
from dicomcloak.engine.originals import decode_modified
from dicomcloak.engine.pixelnote import NOTE_CREATOR
from dicomcloak.errors import SealError
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset, encode_dataset_bound
from dicomcloak.keys import Keyring, ProjectKey
from dicomcloak.pixels.frames import mark_cleaned
from dicomcloak.policy.model import Policy
from dicomcloak.testing.pixelcases import CODEC_CASES, draw_box, load
from dicomcloak.testing.restored import differences
from dicomcloak.testing.sealing import SealingKeys, make_sealing_keys
from dicomcloak.vault import Vault, VaultRecord

KEY = ProjectKey.generate(ephemeral=True)
IDS = [case.name for case in CODEC_CASES]
#: A native input (regions in the vault), a lossy one written native, a lossless one re-encoded, multi-frame.
VAULT_CASES = ["US1_UNCR.dcm", "emri_small_big_endian.dcm", "examples_ybr_color.dcm", "US1_J2KR.dcm",
               "emri_small_RLE.dcm", "SC_rgb_rle_32bit.dcm"]


@pytest.fixture(scope="module")
def owner() -> SealingKeys:
    """The owner's key pair and a sealer the owner trusts (seals are signed: issue 13)."""
    return make_sealing_keys()


@pytest.fixture
def vault(db_url: str) -> Iterator[Vault]:
    store = Vault.open(db_url, Keyring.create(KEY))
    yield store
    store.close()


@dataclass
class Cleaned:
    """One instance through de-identification, cleaning and sealing, and its output as written."""

    data: bytes
    sealed: Sealed
    output: bytes
    binding: bytes
    study: str
    instance: str


def _clean(name: str, sealer: Sealer, *, burned_in: str = "") -> Cleaned:
    data, source = load(name)
    if burned_in:
        source.BurnedInAnnotation = burned_in
        data = encode_dataset(source)
        source = read_dataset(data)
    outcome = Deidentifier(Policy(), KEY).deidentify(source)
    draw_box(outcome.dataset)
    mark_cleaned(outcome.dataset)
    sealed = sealer.seal(source, outcome, pixels=True)
    parts, binding = encode_dataset_bound(outcome.dataset)
    return Cleaned(data, sealed, b"".join(parts), binding, outcome.study_uid, outcome.sop_instance_uid)


def _assert_restored(original: bytes, restored: Dataset) -> None:
    back = read_dataset(encode_dataset(restored))
    first = read_dataset(original)
    assert back.file_meta.TransferSyntaxUID == first.file_meta.TransferSyntaxUID
    assert bytes(back.PixelData) == bytes(first.PixelData)
    assert differences(dcmread(BytesIO(original)), dcmread(BytesIO(encode_dataset(restored)))) == []


@pytest.mark.parametrize("name", IDS)
def test_embedded_seal_restores_pixels_and_syntax(name: str, owner: SealingKeys) -> None:
    cleaned = _clean(name, owner.sealer())
    output = read_dataset(cleaned.output)
    assert bytes(output.PixelData) != bytes(read_dataset(cleaned.data).PixelData)
    back = owner.reidentifier().reidentify(output)
    assert 0x7FE00010 in back.restored
    _assert_restored(cleaned.data, back.dataset)


@pytest.mark.parametrize("name", VAULT_CASES)
def test_vault_record_restores_pixels_and_syntax(name: str, vault: Vault) -> None:
    cleaned = _clean(name, Sealer(vault=True))
    vault.seal_records([_record(cleaned)])
    back = Reidentifier(vault=vault).reidentify(read_dataset(cleaned.output))
    assert 0x7FE00010 in back.restored and back.bound
    _assert_restored(cleaned.data, back.dataset)


def _record(cleaned: Cleaned) -> VaultRecord:
    sealed, study, instance = cleaned.sealed, cleaned.study, cleaned.instance
    return VaultRecord("PAT", study, instance, sealed.payload, sealed.uid_pairs, cleaned.binding)


def test_a_vault_keeps_only_the_changed_rectangles_of_a_native_image(owner: SealingKeys) -> None:
    pixels = len(read_dataset(load("US1_UNCR.dcm")[0]).PixelData)
    vault_only = _clean("US1_UNCR.dcm", Sealer(vault=True)).sealed.payload
    embedded = _clean("US1_UNCR.dcm", owner.sealer(vault=True)).sealed.payload
    assert len(vault_only) < pixels // 100 < pixels < len(embedded)  # one 12 x 36 box of 480 x 640 RGB
    compressed = _clean("US1_J2KR.dcm", Sealer(vault=True)).sealed.payload
    assert len(compressed) > len(read_dataset(load("US1_J2KR.dcm")[0]).PixelData)  # whole: a codestream


def test_the_pixel_note_is_there_only_when_e12_cannot_say_it(owner: SealingKeys) -> None:
    def notes(name: str, sealer: Sealer, burned_in: str = "YES") -> bool:
        item = decode_modified(_clean(name, sealer, burned_in=burned_in).sealed.payload)
        return any(str(elem.value).strip() == NOTE_CREATOR for elem in item if elem.tag.group == 0x0401)

    assert not notes("US1_UNCR.dcm", owner.sealer())  # a plain PS3.15 item: gdcmanon restores it
    assert notes("US1_UNCR.dcm", owner.sealer(), burned_in="")  # Burned In Annotation added
    assert notes("US1_UNCR.dcm", Sealer(vault=True))  # regions
    assert notes("SC_rgb_jpeg_dcmtk.dcm", owner.sealer())  # written native: its syntax
    assert not notes("US1_J2KR.dcm", owner.sealer())  # re-encoded in its own syntax


def test_regions_restore_only_onto_the_pixels_they_were_cut_from(vault: Vault) -> None:
    cleaned = _clean("US1_UNCR.dcm", Sealer(vault=True))
    vault.seal_records([_record(cleaned)])
    output = read_dataset(cleaned.output)
    altered = bytearray(output.PixelData)
    altered[-1] ^= 0xFF  # Pixel Data's value is outside the binding digest: the note's own digest catches it
    output.PixelData = bytes(altered)
    with pytest.raises(SealError) as caught:
        Reidentifier(vault=vault).reidentify(output)
    assert caught.value.reference == "pixel-seal-mismatch"


def test_sealing_without_pixels_is_unchanged(owner: SealingKeys) -> None:
    _, source = load("CT_small.dcm")
    outcome = Deidentifier(Policy(), KEY).deidentify(source)
    sealed = owner.sealer().seal(source, outcome)
    item = decode_modified(sealed.payload)
    assert 0x7FE00010 not in item and not any(elem.tag.group == 0x0401 for elem in item)

"""The binding digest (io.binding): the same from the encoder's parts and from the file read back;
blind to the Encrypted Attributes Sequence and to the Pixel Data value; sensitive to every other byte."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dicomcloak.api import Deidentifier, Sealer
from dicomcloak.errors import InputError
from dicomcloak.io.binding import binding_digest, encode_file_bound
from dicomcloak.io.encode import encode_file_parts
from dicomcloak.io.reader import read_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.keys.cms import load_certificate, make_owner
from dicomcloak.policy import build_policy

TEST_FILES = sorted((Path(pydicom.__file__).parent / "data" / "test_files").rglob("*.dcm"))
CT_SMALL = Path(str(get_testdata_file("CT_small.dcm")))
DEFLATED = Path(__file__).parents[1] / "data" / "dicognito" / "CT_small_deflated.dcm"
_, CERT = make_owner()


def _deidentified(path: Path, *, embedded: bool) -> Dataset | None:
    """The de-identified data set of a bundled file (None when it is quarantined), sealed in it if asked."""
    try:
        source = read_dataset(path.read_bytes())
        outcome = Deidentifier(build_policy([]), ProjectKey(b"k" * 32)).deidentify(source)
    except InputError:
        return None
    if embedded:
        Sealer([load_certificate(CERT, "owner")]).seal(source, outcome)
    return outcome.dataset


@pytest.mark.parametrize("embedded", [False, True], ids=["plain", "embedded"])
def test_deid_and_reid_agree_on_every_bundled_file(embedded: bool) -> None:
    """What deid binds a record to is what reid computes from the file it wrote (every transfer syntax)."""
    checked = 0
    for path in [*TEST_FILES, DEFLATED]:
        dataset = _deidentified(path, embedded=embedded)
        if dataset is None:
            continue
        parts, digest = encode_file_bound(dataset)
        assert b"".join(parts) == b"".join(encode_file_parts(dataset)), path.name  # the same output
        assert binding_digest(read_dataset(b"".join(parts))) == digest, path.name
        checked += 1
    assert checked >= 60


def _roundtrip(ds: Dataset) -> Dataset:
    return read_dataset(b"".join(encode_file_parts(ds)))


def test_the_encrypted_attributes_and_the_pixel_value_are_left_out() -> None:
    plain = _deidentified(CT_SMALL, embedded=False)
    sealed = _deidentified(CT_SMALL, embedded=True)
    assert plain is not None and sealed is not None
    assert "EncryptedAttributesSequence" in sealed
    assert binding_digest(_roundtrip(plain)) == binding_digest(_roundtrip(sealed))
    same_size = _roundtrip(plain)
    same_size.PixelData = bytes(len(plain.PixelData))  # other pixels, same length
    assert binding_digest(same_size) == binding_digest(_roundtrip(plain))


@pytest.mark.parametrize(
    "change",
    [
        ("Modality", "MR"),  # a kept attribute
        ("PatientID", "P0000000000"),  # a pseudonym
        ("SOPInstanceUID", "2.25.1"),  # another instance
        ("PixelData", b"\x00" * 16),  # another pixel length
    ],
    ids=lambda change: change[0],
)
def test_any_other_change_gives_another_digest(change: tuple[str, object]) -> None:
    ds = _deidentified(CT_SMALL, embedded=False)
    assert ds is not None
    before = binding_digest(_roundtrip(ds))
    keyword, value = change
    setattr(ds, keyword, value)
    assert binding_digest(_roundtrip(ds)) != before


def test_a_deflated_output_is_digested_inflated() -> None:
    ds = _deidentified(DEFLATED, embedded=False)
    assert ds is not None and ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1.99"
    parts, digest = encode_file_bound(ds)
    assert binding_digest(read_dataset(b"".join(parts))) == digest

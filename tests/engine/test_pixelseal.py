"""Sealing for pixel redaction: regions (vault) and whole Pixel Data (embedded), restored exactly."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomcloak.api import Deidentifier
from dicomcloak.engine.pixelseal import PIXEL_TAGS, Box, restore_regions, seal_regions
from dicomcloak.errors import SealError
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.policy.model import Policy
from dicomcloak.testing.sealing import make_sealing_keys

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _load(name: str) -> Dataset:
    return read_dataset(next(TEST_FILES.parent.rglob(name)).read_bytes())


def _frames(name: str, count: str) -> Dataset:
    """A multi-frame image made of a real file's frame repeated (no native multi-frame file is bundled)."""
    ds = _load(name)
    ds.PixelData = bytes(ds.PixelData) * int(count)
    ds.NumberOfFrames = int(count)
    return read_dataset(encode_dataset(ds))


def _redact(ds: Dataset, boxes: list[Box]) -> Dataset:
    """A synthetic redaction: the boxes painted black, through the same geometry a redactor uses."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    pixel = ds.BitsAllocated // 8 * ds.SamplesPerPixel
    data = bytearray(ds.PixelData)
    frame_bytes = ds.Rows * ds.Columns * pixel
    assert len(data) >= frames * frame_bytes
    for box in boxes:
        for row in range(box.row, box.row + box.rows):
            start = box.frame * frame_bytes + (row * ds.Columns + box.col) * pixel
            data[start : start + box.cols * pixel] = bytes(box.cols * pixel)
    out = read_dataset(encode_dataset(ds))
    out.PixelData = bytes(data)
    return out


@pytest.mark.parametrize(
    ("name", "boxes"),
    [
        ("CT_small.dcm", [Box(0, 0, 0, 10, 40), Box(0, 100, 90, 28, 38)]),
        ("MR_small.dcm", [Box(0, 5, 5, 1, 1)]),
        ("SC_rgb_jpeg_dcmd.dcm", [Box(0, 30, 200, 12, 56)]),  # native RGB, interleaved
        ("MR_small.dcm*3", [Box(1, 10, 10, 20, 20), Box(2, 0, 0, 64, 64)]),
    ],
)
def test_regions_restore_exactly(name: str, boxes: list[Box]) -> None:
    original = _load(name) if "*" not in name else _frames(*name.split("*"))
    redacted = _redact(original, boxes)
    assert redacted.PixelData != original.PixelData
    payload = seal_regions(original, boxes)
    assert len(payload) < len(original.PixelData)  # only the boxes are kept
    assert restore_regions(redacted, payload).PixelData == original.PixelData
    assert redacted.PixelData != original.PixelData  # the input is not modified


def test_whole_pixel_data_is_sealed_in_the_file_and_restored() -> None:
    keys = make_sealing_keys()
    source = _load("CT_small.dcm")
    outcome = Deidentifier(Policy(), ProjectKey.generate(ephemeral=True)).deidentify(source)
    redacted = _redact(outcome.dataset, [Box(0, 0, 0, 20, 128)])
    outcome.dataset.PixelData = redacted.PixelData
    keys.sealer().seal(source, outcome, extra_tags=PIXEL_TAGS)
    written = read_dataset(encode_dataset(outcome.dataset))
    assert written.PixelData != source.PixelData
    back = keys.reidentifier().reidentify(written)
    assert 0x7FE00010 in back.restored
    assert read_dataset(encode_dataset(back.dataset)).PixelData == source.PixelData


def test_boxes_outside_the_image_are_refused() -> None:
    with pytest.raises(SealError, match="pixel-box-outside"):
        seal_regions(_load("CT_small.dcm"), [Box(0, 120, 0, 20, 5)])
    with pytest.raises(SealError, match="pixel-box-outside"):
        seal_regions(_load("CT_small.dcm"), [Box(1, 0, 0, 1, 1)])


def test_compressed_pixel_data_must_be_sealed_whole() -> None:
    with pytest.raises(SealError, match="pixel-regions-unsupported"):
        seal_regions(_load("JPEG2000.dcm"), [Box(0, 0, 0, 1, 1)])


def test_a_damaged_payload_is_refused() -> None:
    original = _load("CT_small.dcm")
    payload = seal_regions(original, [Box(0, 0, 0, 4, 4)])
    with pytest.raises(SealError, match="pixel-seal-invalid"):
        restore_regions(original, b"garbage" + payload)
    with pytest.raises(SealError, match="pixel-seal-invalid"):
        restore_regions(original, payload[:-3])

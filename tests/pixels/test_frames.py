"""frames: every frame of every transfer syntax decoded; redacted frames written back losslessly, truthfully.

Real files of pydicom and pydicom-data, one or more per transfer syntax; a
filled rectangle stands in for redacted text. Each output is read back by
dicomcloak's reader and by pydicom's, and by GDCM and dcmtk where installed.
"""

from __future__ import annotations

import shutil
import subprocess
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import UID, JPEG2000Lossless

from dicomcloak.errors import ProcessingError, ReadLimitError
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.pixels import frames
from dicomcloak.testing.pixelcases import BOX, CODEC_CASES, FILL, CodecCase, draw_box, load, path_of

IDS = [case.name for case in CODEC_CASES]


def _outside(array: np.ndarray) -> np.ndarray:
    """The pixels of every frame outside the stand-in box."""
    mask = np.ones(array.shape[1:3], dtype=bool)
    mask[BOX.top : BOX.bottom, BOX.left : BOX.right] = False
    return array[:, mask]


@pytest.mark.parametrize("case", CODEC_CASES, ids=IDS)
def test_redacted_frames_read_back_exactly(case: CodecCase) -> None:
    data, ds = load(case.name)
    original = frames.decode(read_dataset(data))
    redacted = draw_box(ds)
    written = encode_dataset(ds)
    for back in (read_dataset(written), dcmread(BytesIO(written))):
        assert back.file_meta.TransferSyntaxUID == case.written
        got = frames.decode(back)
        assert got.shape == original.shape and got.dtype == original.dtype
        assert np.array_equal(got, redacted)
    assert (got[:, BOX.top : BOX.bottom, BOX.left : BOX.right] == FILL).all()
    assert np.array_equal(_outside(got), _outside(original))  # lossless: the rest as decoded before


@pytest.mark.parametrize("case", CODEC_CASES, ids=IDS)
def test_image_attributes_stay_true(case: CodecCase) -> None:
    data, ds = load(case.name)
    source = dcmread(BytesIO(data), stop_before_pixels=True)
    draw_box(ds)
    back = dcmread(BytesIO(encode_dataset(ds)))
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation"):
        assert back.get(keyword) == source.get(keyword), keyword
    assert frames.frame_count(back) == frames.frame_count(source)
    assert back.SamplesPerPixel == source.SamplesPerPixel
    if source.SamplesPerPixel == 3:
        keeps_rct = case.written == JPEG2000Lossless and source.PhotometricInterpretation == "YBR_RCT"
        assert back.PhotometricInterpretation == ("YBR_RCT" if keeps_rct else "RGB")
        assert back.PlanarConfiguration == 0
    else:
        assert back.PhotometricInterpretation == source.PhotometricInterpretation
    if case.lossy:  # PS3.3 C.7.6.1.1.5: once lossy, always said so, with the method
        assert back.LossyImageCompression == "01"
        assert back.get("LossyImageCompressionMethod") or source.get("LossyImageCompression") == "01"
        if "LossyImageCompressionRatio" in source:
            assert back.LossyImageCompressionRatio == source.LossyImageCompressionRatio
    else:
        assert back.get("LossyImageCompression") == source.get("LossyImageCompression")
    assert "ExtendedOffsetTable" not in back


@pytest.mark.parametrize("case", CODEC_CASES, ids=IDS)
def test_decoding_leaves_the_pixel_data_byte_identical(case: CodecCase) -> None:
    data, _ = load(case.name)
    untouched = encode_dataset(read_dataset(data))
    for share in (False, True):  # the batch worker reads with the Pixel Data shared, not copied
        ds = read_dataset(data, share_pixel_data=share)
        frames.decode(ds)
        assert encode_dataset(ds) == untouched


def test_decode_gives_every_frame_writable_in_native_order() -> None:
    _, ds = load("emri_small_big_endian.dcm")
    array = frames.decode(ds)
    assert array.shape == (10, 64, 64) and array.dtype.isnative and array.flags.writeable
    _, ds = load("examples_ybr_color.dcm")
    assert frames.decode(ds).shape == (30, 240, 320, 3)
    _, ds = load("CT_small.dcm")
    assert frames.decode(ds).shape == (1, 128, 128)


@pytest.mark.external
@pytest.mark.skipif(shutil.which("gdcmconv") is None, reason="gdcmconv (libgdcm-tools) is not installed")
@pytest.mark.parametrize(
    "case", [case for case in CODEC_CASES if UID(case.written).is_compressed], ids=lambda case: case.name
)
def test_gdcm_decodes_the_reencoded_frames(case: CodecCase, tmp_path: Path) -> None:
    _, ds = load(case.name)
    redacted = draw_box(ds)
    (tmp_path / "in.dcm").write_bytes(encode_dataset(ds))
    subprocess.run(["gdcmconv", "--raw", tmp_path / "in.dcm", tmp_path / "raw.dcm"], check=True)
    raw = dcmread(tmp_path / "raw.dcm")
    assert not raw.file_meta.TransferSyntaxUID.is_compressed
    assert np.array_equal(frames.decode(raw), redacted)


@pytest.mark.external
@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools is not installed")
@pytest.mark.parametrize("case", CODEC_CASES, ids=IDS)
def test_dciodvfy_finds_no_new_error(case: CodecCase, tmp_path: Path) -> None:
    _, ds = load(case.name)
    draw_box(ds)
    (tmp_path / "out.dcm").write_bytes(encode_dataset(ds))
    before, after = _errors(path_of(case.name)), _errors(tmp_path / "out.dcm")
    assert after - before == set()


def _errors(path: Path) -> set[str]:
    result = subprocess.run(["dciodvfy", "-new", path], capture_output=True, text=True, check=False)
    return {line for line in result.stderr.splitlines() if line.startswith("Error")}


@pytest.mark.external
@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk is not installed")
@pytest.mark.parametrize("name", ["US1_J2KR.dcm", "emri_small_RLE.dcm", "emri_small_jpeg_ls_lossless.dcm"])
def test_dcmtk_reads_the_encapsulated_pixel_data(name: str, tmp_path: Path) -> None:
    _, ds = load(name)
    draw_box(ds)
    (tmp_path / "out.dcm").write_bytes(encode_dataset(ds))
    dump = subprocess.run(["dcmdump", "-dc", "+P", "7fe0,0010", tmp_path / "out.dcm"],
                          capture_output=True, text=True, check=True)
    assert "PixelSequence" in dump.stdout


def test_sample_indices_take_first_last_and_evenly_spaced() -> None:
    assert frames.sample_indices(30, 5) == (0, 7, 14, 22, 29)
    assert frames.sample_indices(30, 2) == (0, 29)
    assert frames.sample_indices(3, 8) == (0, 1, 2)
    assert frames.sample_indices(1, 4) == (0,)
    assert frames.sample_indices(10, 1) == (0,)
    assert frames.sample_indices(0, 3) == ()


def test_a_lossy_input_that_did_not_say_so_says_so_now() -> None:
    _, ds = load("SC_rgb_dcmtk_+eb+cy+np.dcm")
    del ds.LossyImageCompression
    draw_box(ds)
    back = dcmread(BytesIO(encode_dataset(ds)))
    assert back.LossyImageCompression == "01" and back.LossyImageCompressionMethod == "ISO_10918_1"


def test_decode_refuses_what_it_cannot_decode() -> None:
    _, ds = load("JPEG-lossy.dcm")  # 12-bit JPEG Extended: only pylibjpeg-libjpeg (GPL) decodes it
    with pytest.raises(ProcessingError) as caught:
        frames.decode(ds)
    assert caught.value.reference == "pixel-undecodable"
    _, ds = load("CT_small.dcm")
    del ds.PixelData
    with pytest.raises(ProcessingError, match="no Pixel Data"):
        frames.decode(ds)


def test_decode_refuses_frames_beyond_the_limit() -> None:
    _, ds = load("examples_ybr_color.dcm")
    with pytest.raises(ReadLimitError) as caught:
        frames.decode(ds, limit=30 * 240 * 320 * 3 - 1)
    assert caught.value.reference == "pixel-too-large"
    assert frames.decode(ds, limit=30 * 240 * 320 * 3).shape[0] == 30


def test_replace_refuses_frames_that_do_not_fit() -> None:
    _, ds = load("CT_small.dcm")
    array = frames.decode(ds)
    with pytest.raises(ProcessingError) as caught:
        frames.replace(ds, array[:, :64])
    assert caught.value.reference == "pixel-unencodable"
    _, ds = load("US1_UNCR.dcm")  # 8 bits allocated
    wide = frames.decode(ds).astype(np.int32)
    wide[0, 0, 0, 0] = 300
    with pytest.raises(ProcessingError, match="cannot store"):
        frames.replace(ds, wide)

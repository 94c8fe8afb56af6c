"""Compressed inputs with burned-in text: found, redacted on every frame, written truthfully, read back.

The test draws a name and a birth date onto pydicom's own compressed images
(JPEG 2000 lossless, RLE, JPEG lossless, and a 30-frame JPEG baseline cine
re-encoded as JPEG by Pillow), runs the real ``deid --pixels all-text``, and
reads the outputs back: the text is gone from every frame checked, every
pixel changed holds the one fill value (lossless inputs), and the transfer syntax and
lossy-compression attributes say what was written.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont
from pydicom import dcmread, uid
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate

from dicomcloak.pixels import frames
from dicomcloak.pixels.classify.normalise import compact
from dicomcloak.pixels.display import to_uint8
from dicomcloak.pixels.ocr import OcrBackend
from dicomcloak.testing.pixelcases import path_of

RunCli = Callable[..., CompletedProcess[str]]
TEXT = "DOE, JANE  DOB 04/02/1961"
#: name -> (transfer syntax written back, lossless input)
CASES = {
    "US1_J2KR.dcm": (uid.JPEG2000Lossless, True),
    "OBXXXX1A_rle.dcm": (uid.RLELossless, True),
    "JPGLosslessP14SV1_1s_1f_8b.dcm": (uid.ExplicitVRLittleEndian, True),
    "examples_ybr_color.dcm": (uid.ExplicitVRLittleEndian, False),  # JPEG baseline: never lossy again
}
#: Where the text goes: rows and columns, away from the image's own annotations.
TOP, LEFT, HEIGHT, WIDTH = 40, 20, 22, 260


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", 16)
    except OSError:
        return ImageFont.load_default(size=16)


def _with_text(frame: NDArray[np.generic], palette: bool) -> NDArray[np.generic]:
    """``frame`` with TEXT drawn in its brightest value (for a palette image, its highest index)."""
    top = 255 if frame.dtype == np.uint8 or palette else int(np.iinfo(frame.dtype).max)
    picture = Image.fromarray(np.ascontiguousarray(frame))
    fill: int | tuple[int, int, int] = (top, top, top) if frame.ndim == 3 else top
    ImageDraw.Draw(picture).text((LEFT, TOP), TEXT, fill=fill, font=_font())
    return np.asarray(picture).astype(frame.dtype)


def _as_jpeg_baseline(ds: Dataset, array: NDArray[np.uint8]) -> None:
    """Encode ``array`` (frames x rows x cols x 3, RGB) as JPEG baseline 4:2:2, as scanners write it."""
    encoded = []
    for frame in array:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=95, subsampling=1)
        encoded.append(buffer.getvalue())
    ds.PixelData = encapsulate(encoded)
    ds.file_meta.TransferSyntaxUID = uid.JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422"


def _make_input(name: str, out: Path) -> Path:
    ds = dcmread(path_of(name))
    array = frames.decode(ds)
    palette = ds.PhotometricInterpretation == "PALETTE COLOR"
    drawn = np.stack([_with_text(frame, palette) for frame in array])
    if ds.file_meta.TransferSyntaxUID == uid.JPEGBaseline8Bit:
        _as_jpeg_baseline(ds, drawn.astype(np.uint8))
    else:
        frames.replace(ds, drawn)  # back into the file's own lossless syntax
    ds.PatientName, ds.PatientBirthDate, ds.BurnedInAnnotation = "DOE^JANE", "19610402", "YES"
    target = out / name
    ds.save_as(target, enforce_file_format=True)
    return target


def _read(path: Path, backend: OcrBackend, frame: int) -> str:
    ds = dcmread(path)
    image = to_uint8(frames.decode(ds)[frame], ds)
    return compact(" ".join(box.text or "" for box in backend.detect(image, recognise=True)))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compressed-text")
    for name in CASES:
        _make_input(name, root)
    return root


def test_compressed_inputs_are_redacted_and_read_back(
    run_cli: RunCli, inputs: Path, key_file: Path, tmp_path: Path, rapid: OcrBackend
) -> None:
    out = tmp_path / "out"
    result = run_cli("deid", inputs, "--out", out, "--key", key_file, "--layout", "mirror",
                     "--pixels", "all-text", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pixels"] == {"cleaned": len(CASES)}
    for name, (syntax, lossless) in CASES.items():
        before, after = dcmread(inputs / name), dcmread(out / name)
        n_frames = int(before.get("NumberOfFrames", 1) or 1)
        for frame in sorted({0, n_frames // 2, n_frames - 1}):
            drawn, left = _read(inputs / name, rapid, frame), _read(out / name, rapid, frame)
            needles = [compact(word) for word in ("DOE", "JANE", "1961")]
            assert any(needle in drawn for needle in needles), (name, frame)  # the drawn text is readable
            assert not [needle for needle in needles if needle in left], (name, frame)
        assert after.file_meta.TransferSyntaxUID == syntax, name
        assert after.BurnedInAnnotation == "NO"
        if lossless:  # every pixel changed is the one fill value: nothing else was touched
            a, b = frames.decode(before), frames.decode(after)
            changed = (a != b).any(axis=-1) if a.ndim == 4 else a != b
            assert changed.any() and len(np.unique(b[changed], axis=0)) == 1, name
        else:  # the JPEG input was lossy: said so, and not compressed lossy again
            assert after.LossyImageCompression == "01"

"""Real test images in every transfer syntax, and a stand-in redaction of them (tests and benchmarks).

:data:`CODEC_CASES` names pydicom's (and pydicom-data's) test files, one or
more per transfer syntax the pixel stage handles, with the transfer syntax the
redacted frames are expected back in. :func:`draw_box` plays the redactor: a
filled rectangle on every frame, through :func:`~dicomcloak.pixels.frames.decode`
and :func:`~dicomcloak.pixels.frames.replace` (detection is tested elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom import uid
from pydicom.dataset import Dataset

from dicomcloak.io.reader import read_dataset
from dicomcloak.pixels import frames
from dicomcloak.pixels.model import Rect

__all__ = ["BOX", "CODEC_CASES", "FILL", "CodecCase", "draw_box", "load", "path_of"]

#: The stand-in text box: inside every case's image (the smallest is 64 x 64).
BOX = Rect(top=3, left=5, bottom=15, right=41)
#: The stand-in fill: mid-gray in 8 bits, and unlike the black corners of many images.
FILL = 77


@dataclass(frozen=True)
class CodecCase:
    """A test file, the transfer syntax its redacted frames are written in, and whether it was lossy."""

    name: str
    written: str
    lossy: bool = False


_EXPLICIT = uid.ExplicitVRLittleEndian
CODEC_CASES = (
    CodecCase("CT_small.dcm", _EXPLICIT),  # native 16-bit signed
    CodecCase("OBXXXX1A.dcm", _EXPLICIT),  # palette colour, US
    CodecCase("US1_UNCR.dcm", _EXPLICIT),  # native RGB, US
    CodecCase("SC_rgb_jpeg_dcmd.dcm", uid.ImplicitVRLittleEndian),  # implicit VR RGB
    CodecCase("emri_small_big_endian.dcm", uid.ExplicitVRBigEndian),  # 10 frames, big endian
    CodecCase("image_dfl.dcm", uid.DeflatedExplicitVRLittleEndian),
    CodecCase("SC_ybr_full_422_uncompressed.dcm", _EXPLICIT, lossy=True),  # native YBR_FULL_422 -> RGB
    CodecCase("rtdose.dcm", uid.ImplicitVRLittleEndian),  # 32-bit, 15 frames
    CodecCase("SC_rgb_jpeg_dcmtk.dcm", _EXPLICIT, lossy=True),  # JPEG baseline, YBR_FULL
    CodecCase("SC_rgb_dcmtk_+eb+cy+np.dcm", _EXPLICIT, lossy=True),  # JPEG baseline, YBR_FULL_422
    CodecCase("examples_ybr_color.dcm", _EXPLICIT, lossy=True),  # 30-frame ultrasound, JPEG baseline
    CodecCase("SC_rgb_jpeg_gdcm.dcm", _EXPLICIT),  # JPEG lossless (process 14), RGB
    CodecCase("JPGLosslessP14SV1_1s_1f_8b.dcm", _EXPLICIT),  # JPEG lossless SV1
    CodecCase("MR_small_jpeg_ls_lossless.dcm", uid.JPEGLSLossless),
    CodecCase("emri_small_jpeg_ls_lossless.dcm", uid.JPEGLSLossless),  # 10 frames
    CodecCase("SC_rgb_jls_lossy_line.dcm", _EXPLICIT, lossy=True),  # JPEG-LS near-lossless
    CodecCase("MR_small_jp2klossless.dcm", uid.JPEG2000Lossless),
    CodecCase("US1_J2KR.dcm", uid.JPEG2000Lossless),  # YBR_RCT
    CodecCase("emri_small_jpeg_2k_lossless.dcm", uid.JPEG2000Lossless),  # 10 frames
    CodecCase("US1_J2KI.dcm", _EXPLICIT, lossy=True),  # JPEG 2000 lossy, YBR_ICT
    CodecCase("MR_small_RLE.dcm", uid.RLELossless),
    CodecCase("emri_small_RLE.dcm", uid.RLELossless),  # 10 frames
    CodecCase("SC_rgb_rle_2frame.dcm", uid.RLELossless),
    CodecCase("SC_rgb_rle_32bit.dcm", _EXPLICIT),  # RLE of 32-bit samples: no encoder takes it
)


def path_of(name: str) -> Path:
    """A test file of pydicom or pydicom-data, by name."""
    from pydicom.data import get_testdata_file

    found = get_testdata_file(name)
    if not isinstance(found, str):
        raise FileNotFoundError(name)
    return Path(found)


def load(name: str) -> tuple[bytes, Dataset]:
    """A test file's bytes and the data set :func:`dicomcloak.io.reader.read_dataset` makes of them."""
    data = path_of(name).read_bytes()
    return data, read_dataset(data)


def draw_box(ds: Dataset, box: Rect = BOX, value: int = FILL) -> NDArray[np.generic]:
    """Fill ``box`` with ``value`` on every frame of ``ds`` and write the frames back; the new frames."""
    array = frames.decode(ds)
    array[:, box.top : box.bottom, box.left : box.right, ...] = value
    frames.replace(ds, array)
    return array

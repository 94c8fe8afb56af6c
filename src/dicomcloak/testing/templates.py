"""Fake PHI and per-file unique template datasets for the synthetic test corpus.

Adapted from dicomcloak's shared evaluation harness (``shared/eval/make_corpus.py``):
the templates are the test files that ship inside the installed pydicom wheel
(never downloaded), stripped of their own identifiers and private tags.
"""

from __future__ import annotations

import copy
import random
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_fragmented_frames

__all__ = ["KINDS", "Templates", "fake_date", "fake_person", "fake_time", "fake_word", "pick_kind"]

TEST_DIR = Path(pydicom.__file__).parent / "data" / "test_files"

SYL = ["qel", "var", "zor", "bri", "tho", "mak", "lun", "dra", "fes", "gor",
       "hil", "jen", "kav", "mir", "nob", "pex", "ruv", "sal", "tyk", "wen",
       "yor", "zan", "plo", "cre", "dul", "fim", "gax", "hov"]
STREETS = ["Larkspur", "Quillbrook", "Fenwick", "Marrowgate", "Thistlemoor",
           "Brackenridge", "Wolvercote", "Ashgrove"]
CITIES = ["Pennymoor", "Castleford Vale", "Drummondhill", "Elderwick"]

#: Instance kinds and their share of the corpus (multi-frame "mf_big" is placed separately).
KINDS = [("ct128", 0.35), ("mr64", 0.25), ("ct512", 0.25), ("us_rgb", 0.07),
         ("sc_jpeg", 0.05), ("us_mf_jpeg", 0.03)]

_STRIPPED = ["PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs",
             "ReferencedImageSequence", "SourceImageSequence",
             "ReferencedStudySequence", "ReferencedPerformedProcedureStepSequence",
             "RequestAttributesSequence", "ReferencedPatientSequence"]


def fake_word(rng: random.Random, nsyl: int) -> str:
    """A pronounceable made-up word of ``nsyl`` syllables."""
    return "".join(rng.choice(SYL) for _ in range(nsyl))


def fake_person(rng: random.Random, used: set[str]) -> tuple[str, str]:
    """A (family, given) pair, both upper case and never used before in this corpus."""
    while True:
        fam = fake_word(rng, 3).upper()
        giv = fake_word(rng, 2).upper()
        if fam not in used and giv not in used:
            used.add(fam)
            used.add(giv)
            return fam, giv


def fake_date(rng: random.Random, y0: int, y1: int) -> str:
    """A DA value (YYYYMMDD) between the years ``y0`` and ``y1``."""
    y = rng.randint(y0, y1)
    m = rng.randint(1, 12)
    d = rng.randint(1, 28)
    return f"{y:04d}{m:02d}{d:02d}"


def fake_time(rng: random.Random) -> str:
    """A TM value (HHMMSS) in working hours."""
    return f"{rng.randint(7, 19):02d}{rng.randint(0, 59):02d}{rng.randint(10, 59):02d}"


def pick_kind(rng: random.Random) -> str:
    """Draw an instance kind with the weights of :data:`KINDS`."""
    r = rng.random()
    acc = 0.0
    for kind, weight in KINDS:
        acc += weight
        if r < acc:
            return kind
    return KINDS[-1][0]


def _load(name: str) -> Dataset:
    ds = pydicom.dcmread(TEST_DIR / name)
    for keyword in _STRIPPED:
        if keyword in ds:
            del ds[keyword]
    ds.remove_private_tags()
    return ds


def jpeg_insert_comment(frag: bytes, text: bytes) -> bytes:
    """Insert a JPEG COM segment right after SOI; keeps the stream valid."""
    if frag[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream")
    if len(text) % 2:
        text += b" "
    seg = b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text
    return frag[:2] + seg + frag[2:]


def _stamp(data: bytes, tag: bytes) -> bytes:
    px = bytearray(data)
    px[: len(tag)] = tag
    return bytes(px)


class Templates:
    """The pydicom test files used as templates, loaded once."""

    def __init__(self) -> None:
        self.ct = _load("CT_small.dcm")
        self.mr = _load("MR_small.dcm")
        self.us = _load("examples_rgb_color.dcm")
        self.sc_jpeg = _load("SC_rgb_jpeg_gdcm.dcm")
        self.us_mf = _load("examples_ybr_color.dcm")
        ctpix = np.frombuffer(self.ct.PixelData, dtype="<u2").reshape(128, 128)
        self.ct512: npt.NDArray[np.uint16] = np.repeat(np.repeat(ctpix, 4, 0), 4, 1).copy()
        self._makers: dict[str, Callable[[bytes, int], Dataset]] = {
            "ct128": lambda tag, _: self._stamped(self.ct, tag),
            "mr64": lambda tag, _: self._stamped(self.mr, tag),
            "us_rgb": lambda tag, _: self._stamped(self.us, tag),
            "ct512": lambda tag, _: self._ct512(tag),
            "sc_jpeg": lambda tag, _: self._sc_jpeg(tag),
            "us_mf_jpeg": lambda tag, _: self._us_mf_jpeg(tag),
            "mf_big": self._mf_big,
        }

    def make(self, kind: str, idx: int, nframes: int | None = None) -> Dataset:
        """Return a fresh dataset of ``kind`` whose pixel bytes are unique to ``idx``."""
        maker = self._makers.get(kind)
        if maker is None:
            raise ValueError(f"unknown corpus kind {kind!r}")
        ds = maker(f"FILE{idx:08d}".encode(), nframes or 20)
        # make sure the pixel element is written with the right VR
        compressed = ds.file_meta.TransferSyntaxUID.is_compressed
        ds["PixelData"].VR = "OB" if compressed or ds.BitsAllocated == 8 else "OW"
        return ds

    @staticmethod
    def _stamped(template: Dataset, tag: bytes) -> Dataset:
        ds = copy.deepcopy(template)
        ds.PixelData = _stamp(ds.PixelData, tag)
        return ds

    def _ct512(self, tag: bytes) -> Dataset:
        ds = copy.deepcopy(self.ct)
        ds.Rows, ds.Columns = 512, 512
        ds.PixelSpacing = [0.5, 0.5]
        ds.PixelData = _stamp(self.ct512.tobytes(), tag)
        return ds

    def _sc_jpeg(self, tag: bytes) -> Dataset:
        ds = copy.deepcopy(self.sc_jpeg)
        frame = b"".join(next(generate_fragmented_frames(ds.PixelData)))
        ds.PixelData = encapsulate([jpeg_insert_comment(frame, tag)])
        return ds

    def _us_mf_jpeg(self, tag: bytes) -> Dataset:
        ds = copy.deepcopy(self.us_mf)
        frames = [b"".join(f) for f in generate_fragmented_frames(
            ds.PixelData, number_of_frames=int(ds.NumberOfFrames))]
        frames[0] = jpeg_insert_comment(frames[0], tag)
        ds.PixelData = encapsulate(frames)
        return ds

    def _mf_big(self, tag: bytes, nframes: int) -> Dataset:
        ds = copy.deepcopy(self.ct)
        arr = np.broadcast_to(self.ct512, (nframes, 512, 512))
        ds.Rows, ds.Columns = 512, 512
        ds.NumberOfFrames = nframes
        ds.FrameIncrementPointer = 0x00181063  # FrameTime
        ds.FrameTime = 40.0
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3"  # MF Grayscale Word SC
        ds.PixelData = _stamp(arr.tobytes(), tag)
        return ds

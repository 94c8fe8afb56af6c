"""What makes the pixel stage fast, on real pixels and the real RapidOCR models (docs/pixels.md, "Speed").

The detector's scale chosen once per frame and kept for windows cut from it, its
memory arena, threads per back-end, and a verifying pass that re-reads only the
neighbourhood of what was blanked on frames the first pass read.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomcloak.pixels import pipeline
from dicomcloak.pixels.classify import HeaderValues
from dicomcloak.pixels.model import PixelMode, PixelStatus, Rect, Region, TextBox, Verdict
from dicomcloak.pixels.ocr import OcrBackend, load_backend, threads_per_worker
from dicomcloak.pixels.ocr.base import Image as Pixels
from dicomcloak.pixels.ocr.base import Shape
from dicomcloak.pixels.ocr.rapid import _engine, det_scale
from dicomcloak.pixels.settings import PixelSettings
from dicomcloak.testing.pixel_synth import _font


@dataclass
class Recording:
    """The real back-end, noting the shape of each image it was given and whether it was a window."""

    backend: OcrBackend
    name: str = "rapidocr"
    calls: list[tuple[tuple[int, ...], Shape | None]] = field(default_factory=list)

    def detect(self, image: Pixels, *, recognise: bool, frame_shape: Shape | None = None) -> list[TextBox]:
        self.calls.append((image.shape, frame_shape))
        return self.backend.detect(image, recognise=recognise, frame_shape=frame_shape)


@pytest.mark.parametrize(
    ("shape", "factor"),
    [
        ((480, 640), 736 / 480),  # shorter side to 736, as RapidOCR does
        ((1024, 1024), 1.0),  # large enough: as it is
        ((512, 512), 2.0),  # small: at least 2x (10 px glyphs)
        ((256, 1024), 2.5),  # a strip: capped, not 736 x 2944
        ((4000, 3000), 0.5),  # a large scan: longer side to 2000
    ],
)
def test_detection_scale(shape: tuple[int, int], factor: float) -> None:
    assert det_scale(shape) == pytest.approx(factor)


def test_detector_keeps_its_memory_arena(rapid: OcrBackend) -> None:
    options = _engine(0).text_det.infer.session.get_session_options()
    assert options.enable_cpu_mem_arena and options.inter_op_num_threads == 1


def test_threads_are_a_setting_of_the_backend() -> None:
    one = load_backend("rapidocr", threads=1)
    assert getattr(one, "threads", None) == 1
    assert _engine(1).text_det.infer.session.get_session_options().intra_op_num_threads == 1
    cores = len(os.sched_getaffinity(0))
    assert threads_per_worker(1) == cores and threads_per_worker(cores) == 1 and threads_per_worker(999) == 1


def test_a_window_is_read_at_the_scale_of_its_frame(rapid: OcrBackend, synth8: Path) -> None:
    image = np.asarray(Image.open(synth8 / "000.png").convert("L"))
    whole = next(box for box in rapid.detect(image, recognise=True) if "ID" in (box.text or ""))
    top, left = max(0, whole.rect.top - 20), max(0, whole.rect.left - 20)
    window = image[top : whole.rect.bottom + 20, left : whole.rect.right + 40]
    part = next(box for box in rapid.detect(window, recognise=True, frame_shape=image.shape)
                if "ID" in (box.text or ""))
    assert part.text == whole.text
    at = (part.rect.top + top, part.rect.left + left, part.rect.bottom + top, part.rect.right + left)
    assert at == pytest.approx(tuple(vars(whole.rect).values()), abs=2)


def _line(text: str) -> tuple[np.ndarray, Rect]:
    """A gray 300 x 600 image with one line of text, and the box of its first half."""
    canvas = Image.new("L", (600, 300), 40)
    draw = ImageDraw.Draw(canvas)
    font = _font(16, random.Random(1))
    draw.text((40, 140), text, fill=230, font=font)
    left, top, right, bottom = draw.textbbox((40, 140), text, font=font)
    return np.asarray(canvas), Rect(top, left, bottom, (left + right) // 2)


def _work(frame: np.ndarray, settings: PixelSettings, backend: OcrBackend) -> pipeline._Work:
    """The stage's state for one gray frame, as :func:`pipeline.run` builds it after decoding."""
    header = Dataset()
    header.PhotometricInterpretation = "MONOCHROME2"
    return pipeline._Work(header, HeaderValues.capture(header), settings, backend, settings.mode,
                          frame[np.newaxis].copy(), [])


def test_windowed_check_finds_text_beside_a_blanked_box(rapid: OcrBackend) -> None:
    frame, half = _line("PATIENT 123456789 SOMEWHERE")
    work = _work(frame, PixelSettings(mode=PixelMode.ALL_TEXT), rapid)
    work.regions = [Region(TextBox(half, None, 0.5), Verdict(True, "text", "all-text"), (0,), redacted=True)]
    pipeline._redact(work, work.regions)
    assert pipeline._verify(work, (0,), (0,))
    extra = [region for region in work.regions if region.verdict.rule == "verify"]
    assert extra and max(region.box.rect.right for region in extra) > half.right + 100
    assert work.frames[0, 130:170, half.right + 10 : half.right + 200].max() <= 40  # the rest is blanked too


def test_verifying_pass_reads_around_what_it_blanked(rapid: OcrBackend, synth8: Path) -> None:
    ds = dcmread(synth8 / "000.dcm")
    spy = Recording(rapid)
    result = pipeline.clean(ds, HeaderValues.capture(ds), PixelSettings(), spy)
    assert result.status is PixelStatus.CLEANED
    (whole, none), *windows = spy.calls
    assert none is None and windows and all(frame == whole for _, frame in windows)
    assert sum(shape[0] * shape[1] for shape, _ in windows) < whole[0] * whole[1]


def test_verify_whole_frame_reads_the_frame_again(rapid: OcrBackend, synth8: Path) -> None:
    ds = dcmread(synth8 / "000.dcm")
    spy = Recording(rapid)
    pipeline.clean(ds, HeaderValues.capture(ds), PixelSettings(verify_whole_frame=True), spy)
    assert len(spy.calls) >= 2 and all(call == spy.calls[0] for call in spy.calls)

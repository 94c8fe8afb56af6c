"""The per-instance pixel stage end to end, through ``pipeline.clean`` and ``pipeline.examine``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dicomcloak.pixels import pipeline
from dicomcloak.pixels.classify import HeaderValues
from dicomcloak.pixels.model import PixelMode, PixelStatus
from dicomcloak.pixels.ocr import OcrBackend
from dicomcloak.pixels.settings import PixelSettings
from dicomcloak.testing.pixel_score import redacted, score
from dicomcloak.testing.pixel_synth import blank_image


def _clean_all(synth: Path, out: Path, backend: OcrBackend, mode: PixelMode) -> dict[str, object]:
    out.mkdir()
    started, statuses = time.perf_counter(), []
    for path in sorted(synth.glob("*.dcm")):
        ds = dcmread(path)
        result = pipeline.clean(ds, HeaderValues.capture(ds), PixelSettings(mode=mode), backend)
        statuses.append(result.status)
        ds.save_as(out / path.name)
    result = score(synth, out)
    print(f"{mode.value}: {(time.perf_counter() - started) / len(statuses):.2f} s/image, {result}")
    return {"statuses": statuses, **result}


def test_all_text_recall_on_synthetic_images(rapid: OcrBackend, synth8: Path, tmp_path: Path) -> None:
    result = _clean_all(synth8, tmp_path / "out", rapid, PixelMode.ALL_TEXT)
    assert result["statuses"] == [PixelStatus.CLEANED] * 8
    assert result["phi_recall"] >= 0.95  # type: ignore[operator]
    assert result["fp_area_pct"] < 3.0  # type: ignore[operator]


def test_cleaned_image_is_marked_and_keeps_its_geometry(rapid: OcrBackend, synth8: Path) -> None:
    ds = dcmread(synth8 / "000.dcm")
    result = pipeline.clean(ds, HeaderValues.capture(ds), PixelSettings(), rapid)
    assert result.status is PixelStatus.CLEANED and result.mode is PixelMode.ALL_TEXT
    assert ds.BurnedInAnnotation == "NO" and ds.pixel_array.shape == (480, 640, 3)
    assert all(region.redacted and region.verdict.rule == "all-text" for region in result.regions)


def test_image_without_text_is_byte_identical(rapid: OcrBackend, tmp_path: Path) -> None:
    ds = dcmread(blank_image(tmp_path / "blank.dcm", index=5))
    before = bytes(ds.PixelData)
    result = pipeline.clean(ds, HeaderValues.capture(ds), PixelSettings(), rapid)
    assert result.status is PixelStatus.NO_TEXT and result.frames_examined == (0,)
    assert bytes(ds.PixelData) == before and ds.BurnedInAnnotation == "YES"


def _cine(synth: Path, frames: int) -> Dataset:
    ds = dcmread(synth / "002.dcm")
    ds.NumberOfFrames = frames
    ds.PixelData = bytes(ds.PixelData) * frames
    return ds


def test_every_frame_of_a_cine_is_redacted(rapid: OcrBackend, synth8: Path) -> None:
    import json

    ds = _cine(synth8, 30)
    original = ds.pixel_array.copy()
    result = pipeline.clean(ds, HeaderValues.capture(ds), PixelSettings(frames=4), rapid)
    assert result.status is PixelStatus.CLEANED and result.frames == 30
    assert set(result.frames_examined) >= {0, 29} and len(result.frames_examined) == 8
    after = ds.pixel_array
    truth = json.loads((synth8 / "002.json").read_text(encoding="utf-8"))
    for frame in range(30):
        changed = np.any(original[frame] != after[frame], axis=2)
        gone = [redacted(original[frame], after[frame], changed, seg["box"]) for seg in truth["segments"]
                if seg["phi"]]
        assert sum(gone) >= len(gone) - 1, frame


def test_verifying_pass_reads_frames_the_first_pass_did_not(rapid: OcrBackend, synth8: Path) -> None:
    ds = _cine(synth8, 5)
    frames = ds.pixel_array.copy()
    frames[[0, 4]] = frames[0, 300:310, 300:310].mean(axis=(0, 1)).astype(np.uint8)  # first and last: no text
    ds.PixelData = frames.tobytes()
    result = pipeline.clean(ds, HeaderValues.capture(ds), PixelSettings(frames=2), rapid)
    assert result.status is PixelStatus.CLEANED
    assert result.regions and all(region.verdict.rule == "verify" for region in result.regions)


def test_not_at_risk_is_not_examined(rapid: OcrBackend) -> None:
    ds = dcmread(str(get_testdata_file("CT_small.dcm")))
    result = pipeline.clean(ds, HeaderValues.capture(ds), PixelSettings(), rapid)
    assert result.status is PixelStatus.NOT_EXAMINED and result.risk == ("not-at-risk",)
    assert "_pixel_array" not in ds.__dict__ or ds.__dict__["_pixel_array"] is None  # nothing decoded


def test_quarantine_mode(rapid: OcrBackend, synth8: Path) -> None:
    ds = dcmread(synth8 / "001.dcm")
    before = bytes(ds.PixelData)
    result = pipeline.clean(ds, HeaderValues.capture(ds), PixelSettings(mode=PixelMode.QUARANTINE), rapid)
    assert (result.status, result.reason) == (PixelStatus.QUARANTINED, "pixel-quarantine-policy")
    assert bytes(ds.PixelData) == before


def test_examine_changes_nothing(rapid: OcrBackend, synth8: Path) -> None:
    ds = dcmread(synth8 / "003.dcm")
    before = bytes(ds.PixelData)
    seen = pipeline.examine(ds, HeaderValues.capture(ds), PixelSettings(mode=PixelMode.PHI), rapid)
    assert seen.result.status is PixelStatus.CLEANED and bytes(ds.PixelData) == before
    assert seen.before is not None and seen.after is not None and (seen.before != seen.after).any()
    kinds = {region.verdict.phi for region in seen.result.regions}
    assert kinds == {True, False}  # under phi, non-PHI text (kVp, labels) is left

"""``deid --pixels`` end to end: the real console script, real OCR, real burned-in images, real reid.

The images: deid-data's ultrasounds (text on every frame of a 30-frame cine),
Presidio's CT (burned-in text, but a CT without Burned In Annotation YES,
which ``auto`` leaves alone by design), pydicom's CT (no text) and synthetic
secondary captures with ground truth.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dicomcloak.pixels.classify.normalise import compact
from dicomcloak.pixels.display import to_uint8
from dicomcloak.pixels.frames import decode
from dicomcloak.pixels.ocr import OcrBackend
from dicomcloak.testing.pixel_score import score

RunCli = Callable[..., CompletedProcess[str]]
ULTRASOUNDS = Path(str(files("deid_data"))) / "data" / "ultrasounds"
PRESIDIO_CT = Path(__file__).parents[1] / "data" / "presidio" / "2_ORIGINAL.dcm"
#: What each ultrasound shows in its pixels (its header holds the same values).
NEEDLES = {"GREYSCALE_IMAGE.dcm": ["ZZZ", "08/29/1951", "CCHS"], "ultrasound-multiframe.dcm": []}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two ultrasounds (one a 30-frame cine), Presidio's CT and pydicom's CT, as a hospital export."""
    root = tmp_path_factory.mktemp("pixels-in")
    for name in NEEDLES:
        shutil.copy(ULTRASOUNDS / name, root / name)
    shutil.copy(PRESIDIO_CT, root / "presidio-ct.dcm")
    shutil.copy(str(get_testdata_file("CT_small.dcm")), root / "ct.dcm")
    return root


def _deid(run_cli: RunCli, inputs: Path, out: Path, key_file: Path, *extra: str | Path) -> dict[str, object]:
    result = run_cli("deid", inputs, "--out", out, "--key", key_file, "--layout", "mirror", "--json", *extra)
    assert result.returncode in (0, 1), result.stderr
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def run_cli_once(*args: str | Path) -> CompletedProcess[str]:
    """The real console script, for a module-scoped fixture (``run_cli`` is per test)."""
    environ = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"}
    command = [str(Path(sys.executable).with_name("dicomcloak")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=environ, check=False, timeout=900)


@pytest.fixture(scope="module")
def auto(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], Path]:
    """``deid`` with the default ``--pixels auto``: the output, the summary, the key."""
    base = tmp_path_factory.mktemp("auto")
    key = base / "k.key"
    assert run_cli_once("keys", "init", "--out", key).returncode == 0
    result = run_cli_once("deid", inputs, "--out", base / "out", "--key", key, "--layout", "mirror", "--json")
    assert result.returncode == 0, result.stderr
    return base / "out", json.loads(result.stdout), key


def _text(path: Path, backend: OcrBackend, frame: int = 0) -> str:
    ds = dcmread(path)
    image = to_uint8(decode(ds)[frame], ds)
    return compact(" ".join(box.text or "" for box in backend.detect(image, recognise=True)))


def test_auto_cleans_the_ultrasounds_and_leaves_ct_alone(
    auto: tuple[Path, dict[str, object], Path], inputs: Path, rapid: OcrBackend
) -> None:
    out, summary, _ = auto
    assert summary["pixels"] == {"cleaned": 2, "not-examined": 2}
    assert summary["pixels_mode"] == "auto"
    for name in NEEDLES:
        ds = dcmread(out / name)
        assert ds.BurnedInAnnotation == "NO"
        assert "113101" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    for name in ("presidio-ct.dcm", "ct.dcm"):  # not decoded: pixel data and its marker as they were
        before, after = dcmread(inputs / name), dcmread(out / name)
        assert after.PixelData == before.PixelData
        assert after.get("BurnedInAnnotation") == before.get("BurnedInAnnotation")
        assert "113101" not in [item.CodeValue for item in after.DeidentificationMethodCodeSequence]
    text = _text(out / "GREYSCALE_IMAGE.dcm", rapid)
    assert not [needle for needle in NEEDLES["GREYSCALE_IMAGE.dcm"] if compact(needle) in text]


def test_every_frame_of_the_cine_is_redacted(
    auto: tuple[Path, dict[str, object], Path], inputs: Path, rapid: OcrBackend
) -> None:
    out = auto[0]
    original = dcmread(inputs / "ultrasound-multiframe.dcm")
    assert int(original.NumberOfFrames) == 30
    for frame in (0, 13, 29):  # text on every frame before; none readable after
        assert len(_text(inputs / "ultrasound-multiframe.dcm", rapid, frame)) > 20
        assert len(_text(out / "ultrasound-multiframe.dcm", rapid, frame)) <= 4, frame


def test_the_pixel_report_is_in_the_private_run_directory(auto: tuple[Path, dict[str, object], Path]) -> None:
    out, summary, _ = auto
    report = Path(str(summary["pixel_report"]))
    assert report.is_file() and out not in report.parents
    assert stat.S_IMODE(report.parent.parent.parent.stat().st_mode) == 0o700  # RUN_DIR
    page = report.read_text("utf-8")
    assert page.count("data:image/png;base64,") == 4  # before and after of the two ultrasounds
    assert "contains PHI" in page
    words = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)  # base64 holds any 3 letters
    assert "ZZZ" not in words and "CCHS" not in words and "1951" not in words  # OCR text never written


def test_pixels_off_streams_every_pixel_through(
    run_cli: RunCli, inputs: Path, key_file: Path, tmp_path: Path
) -> None:
    summary = _deid(run_cli, inputs, tmp_path / "out", key_file, "--pixels", "off")
    assert summary["pixels"] == {} and "pixel_report" not in summary
    for name in [*NEEDLES, "presidio-ct.dcm"]:
        assert dcmread(tmp_path / "out" / name).PixelData == dcmread(inputs / name).PixelData


def test_pixels_quarantine_sets_images_at_risk_aside(
    run_cli: RunCli, inputs: Path, key_file: Path, tmp_path: Path
) -> None:
    summary = _deid(run_cli, inputs, tmp_path / "out", key_file, "--pixels", "quarantine")
    assert summary["quarantined"] == 4  # every image with pixels, CT included: the mode says so
    assert summary["reasons"] == {"pixel-quarantine-policy": 4}
    assert summary["pixels"] == {"quarantined": 4}


def test_another_pixel_mode_into_the_same_output_is_refused(
    run_cli: RunCli, inputs: Path, key_file: Path, tmp_path: Path
) -> None:
    _deid(run_cli, inputs, tmp_path / "out", key_file, "--pixels", "off")
    result = run_cli("deid", inputs, "--out", tmp_path / "out", "--key", key_file, "--layout", "mirror")
    assert result.returncode == 2
    assert "error[output-made-differently]" in result.stderr and "pixel settings" in result.stderr


def test_reid_restores_the_cleaned_pixels_byte_for_byte(
    run_cli: RunCli, inputs: Path, key_file: Path, tmp_path: Path
) -> None:
    vault = f"sqlite:///{tmp_path / 'vault.db'}"
    summary = _deid(run_cli, inputs, tmp_path / "out", key_file, "--vault", vault)
    assert summary["pixels"] == {"cleaned": 2, "not-examined": 2}
    back = tmp_path / "back"
    result = run_cli("reid", tmp_path / "out", "--out", back, "--vault", vault, "--key", key_file)
    assert result.returncode == 0, result.stderr
    for path in inputs.iterdir():
        original, restored = dcmread(path), dcmread(back / path.name)
        assert restored.PixelData == original.PixelData, path.name
        assert restored.get("BurnedInAnnotation") == original.get("BurnedInAnnotation"), path.name


def test_synthetic_acceptance_through_deid(
    run_cli: RunCli, synth8: Path, key_file: Path, tmp_path: Path
) -> None:
    """The CI version of the acceptance set: 8 secondary captures, scored on what deid wrote."""
    images = tmp_path / "in"
    images.mkdir()
    for path in synth8.glob("*.dcm"):
        os.link(path, images / path.name)
    summary = _deid(run_cli, images, tmp_path / "out", key_file, "--pixels", "all-text")
    assert summary["pixels"] == {"cleaned": 8}
    result = score(synth8, tmp_path / "out")
    assert result["missing_outputs"] == []
    assert result["phi_recall"] >= 0.95
    assert result["fp_area_pct"] < 3.0


def test_a_missing_ocr_backend_stops_the_run_before_any_work(
    run_cli: RunCli, inputs: Path, key_file: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "site.toml"
    policy.write_text('[pixels]\nbackend = "tesseract"\n')
    args = ("deid", inputs, "--out", tmp_path / "out", "--key", key_file, "--policy", policy)
    result = run_cli(*args, env={"PATH": str(tmp_path)})  # no tesseract program on this PATH
    assert result.returncode == 2
    assert "error[ocr-backend-missing]" in result.stderr
    assert not (tmp_path / "out").exists()
    assert run_cli(*args, "--pixels", "off", env={"PATH": str(tmp_path)}).returncode == 0  # off needs no OCR


def test_cleaned_outputs_do_not_depend_on_the_worker_count(
    run_cli: RunCli, inputs: Path, synth8: Path, key_file: Path, tmp_path: Path
) -> None:
    """OCR, redaction and encoding are deterministic: ``--jobs 1`` and ``--jobs 2`` write the same bytes."""
    mixed = tmp_path / "in"
    shutil.copytree(inputs, mixed)
    for path in sorted(synth8.glob("*.dcm"))[:3]:
        shutil.copy(path, mixed / f"synth-{path.name}")
    trees = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out-{jobs}"
        summary = _deid(run_cli, mixed, out, key_file, "--jobs", jobs)
        assert summary["pixels"] == {"cleaned": 5, "not-examined": 2}
        trees.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.dcm"))})
    assert trees[0] == trees[1]

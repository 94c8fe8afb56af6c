"""Seconds per image and redaction quality of the pixel stage on synthetic burned-in images.

    python bench/bench_pixels.py [--n 32] [--seeds 7 11] [--modes all-text phi] [--backend rapidocr]

Builds the images with :mod:`dicomcloak.testing.pixel_synth`, runs ``pipeline.clean`` on each in this
process (one core), writes the outputs and scores them with :mod:`dicomcloak.testing.pixel_score`.
Prints one JSON line per (seed, mode): seconds per image, PHI recall, non-PHI text redacted, false-positive
area, statuses.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from pydicom import dcmread

from dicomcloak.pixels import pipeline
from dicomcloak.pixels.classify import HeaderValues
from dicomcloak.pixels.model import PixelMode
from dicomcloak.pixels.ocr import load_backend
from dicomcloak.pixels.settings import PixelSettings
from dicomcloak.testing.pixel_score import score
from dicomcloak.testing.pixel_synth import make_images


def run(synth: Path, out: Path, mode: PixelMode, backend_name: str) -> dict[str, object]:
    backend = load_backend(backend_name)
    settings = PixelSettings(mode=mode, backend=backend_name)
    out.mkdir(parents=True)
    statuses: Counter[str] = Counter()
    elapsed = 0.0
    paths = sorted(synth.glob("*.dcm"))
    for path in paths:
        ds = dcmread(path)
        started = time.perf_counter()
        statuses[pipeline.clean(ds, HeaderValues.capture(ds), settings, backend).status.value] += 1
        elapsed += time.perf_counter() - started
        ds.save_as(out / path.name)
    return {"mode": mode.value, "s_per_image": round(elapsed / len(paths), 3), **score(synth, out),
            "statuses": dict(statuses)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11])
    parser.add_argument("--modes", nargs="+", default=["all-text", "phi"])
    parser.add_argument("--backend", default="rapidocr")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            synth = Path(tmp) / f"synth-{seed}"
            make_images(synth, args.n, seed)
            for mode in args.modes:
                result = run(synth, Path(tmp) / f"out-{seed}-{mode}", PixelMode(mode), args.backend)
                print(json.dumps({"seed": seed, "n": args.n, "backend": args.backend, **result}), flush=True)


if __name__ == "__main__":
    main()

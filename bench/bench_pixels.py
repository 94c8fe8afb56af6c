"""Seconds per image and redaction quality of the pixel stage on synthetic burned-in images.

    python bench/bench_pixels.py [--n 32] [--seeds 7 11] [--modes all-text phi] [--backend rapidocr]
                                 [--jobs 1] [--threads T] [--verify-whole-frame]

Builds the images with :mod:`dicomcloak.testing.pixel_synth`, runs ``pipeline.clean`` on each, writes the
outputs and scores them with :mod:`dicomcloak.testing.pixel_score`. ``--jobs N`` runs N worker processes,
each loading the back-end once with ``--threads`` OCR threads (default: the cores shared out among the
workers, :func:`dicomcloak.pixels.ocr.threads_per_worker`). Prints one JSON line per (seed, mode):
``s_per_image`` (wall time of the whole run over the images: throughput), ``cpu_per_image`` (CPU time of
the stage per image, all threads: the one-core cost), ``s_per_frame``, PHI recall, non-PHI text redacted,
false-positive area, statuses, and the workers' peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread

from dicomcloak.pixels import pipeline
from dicomcloak.pixels.classify import HeaderValues
from dicomcloak.pixels.model import PixelMode
from dicomcloak.pixels.ocr import OcrBackend, load_backend, threads_per_worker
from dicomcloak.pixels.settings import PixelSettings
from dicomcloak.testing.pixel_score import score
from dicomcloak.testing.pixel_synth import make_images

_WORKER: dict[str, object] = {}


@dataclass(frozen=True)
class Done:
    """One image through the stage: its status, frames, CPU and wall seconds."""

    status: str
    frames: int
    cpu: float
    wall: float


def _start(backend: str, threads: int, settings: PixelSettings) -> None:
    """Worker initialiser: one back-end (one model load) per process."""
    _WORKER["backend"] = load_backend(backend, threads=threads)
    _WORKER["settings"] = settings


def _clean(path: Path, out: Path) -> Done:
    backend, settings = _WORKER["backend"], _WORKER["settings"]
    assert isinstance(backend, OcrBackend) and isinstance(settings, PixelSettings)
    ds = dcmread(path)
    cpu, wall = time.process_time(), time.perf_counter()
    result = pipeline.clean(ds, HeaderValues.capture(ds), settings, backend)
    done = Done(result.status.value, result.frames, time.process_time() - cpu, time.perf_counter() - wall)
    ds.save_as(out / path.name)
    return done


def _peak_rss_mb() -> int:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) // 1024


def run(synth: Path, out: Path, settings: PixelSettings, jobs: int, threads: int) -> dict[str, object]:
    out.mkdir(parents=True)
    paths = sorted(synth.glob("*.dcm"))
    started = time.perf_counter()
    if jobs == 1:
        _start(settings.backend, threads, settings)
        done = [_clean(path, out) for path in paths]
    else:
        start = (settings.backend, threads, settings)
        with ProcessPoolExecutor(jobs, initializer=_start, initargs=start) as pool:
            # Loading the models is not the stage's work: wait until every worker has started.
            list(pool.map(time.sleep, [0.5] * jobs))
            started = time.perf_counter()
            done = list(pool.map(_clean, paths, [out] * len(paths)))
    elapsed = time.perf_counter() - started
    frames = sum(item.frames for item in done)
    return {"mode": settings.mode.value, "jobs": jobs, "threads": threads,
            "s_per_image": round(elapsed / len(paths), 3), "s_per_frame": round(elapsed / frames, 3),
            "cpu_per_image": round(sum(item.cpu for item in done) / len(paths), 3),
            **score(synth, out), "statuses": dict(Counter(item.status for item in done)),
            "peak_rss_mb": _peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11])
    parser.add_argument("--modes", nargs="+", default=["all-text", "phi"])
    parser.add_argument("--backend", default="rapidocr")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="OCR threads per worker (default: shared)")
    parser.add_argument("--verify-whole-frame", action="store_true")
    args = parser.parse_args()
    threads = threads_per_worker(args.jobs) if args.threads is None else args.threads
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            synth = Path(tmp) / f"synth-{seed}"
            make_images(synth, args.n, seed)
            for mode in args.modes:
                settings = PixelSettings(mode=PixelMode(mode), backend=args.backend,
                                         verify_whole_frame=args.verify_whole_frame)
                result = run(synth, Path(tmp) / f"out-{seed}-{mode}", settings, args.jobs, threads)
                print(json.dumps({"seed": seed, "n": args.n, "backend": args.backend, **result}), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""``deid --pixels auto`` against ``--pixels off`` on a CT/MR corpus: the pixel stage must cost nothing there.

Issue 14's aim: on images outside the risk list (CT and MR without Burned In
Annotation YES), ``auto`` decodes nothing, so it runs at the header-only speed
of ``--pixels off`` beyond noise. Builds a synthetic corpus, keeps its CT and MR
instances, then runs both commands alternately (``--rounds`` each, page cache
warm, fresh output each time) and prints the median wall times and their ratio.
Whole processes are timed, start-up included.

    python bench/bench_pixels_auto.py [--n 2000] [--rounds 5] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom


def _ct_mr_corpus(root: Path, n: int) -> Path:
    """A corpus of ``n`` instances with every instance not CT or MR removed."""
    subprocess.run([sys.executable, "-m", "dicomcloak.testing.corpus", "--out", str(root), "--n", str(n)],
                   check=True, stdout=subprocess.DEVNULL)
    files = root / "files"
    for path in files.rglob("*.dcm"):
        if str(pydicom.dcmread(path, stop_before_pixels=True).get("Modality", "")) not in ("CT", "MR"):
            path.unlink()
    return files


def _deid(files: Path, work: Path, key: Path, mode: str, jobs: int) -> tuple[float, dict[str, object]]:
    out = work / f"out-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work / f"out-{mode}.run", ignore_errors=True)
    command = [str(Path(sys.executable).with_name("dicomcloak")), "deid", str(files), "--out", str(out),
               "--key", str(key), "--pixels", mode, "--jobs", str(jobs), "--json"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pixels-auto-") as tmp:
        work = Path(tmp)
        files = _ct_mr_corpus(work / "corpus", args.n)
        count = sum(1 for _ in files.rglob("*.dcm"))
        key = work / "bench.key"
        subprocess.run([str(Path(sys.executable).with_name("dicomcloak")), "keys", "init", "--out", str(key)],
                       check=True, capture_output=True)
        times: dict[str, list[float]] = {"off": [], "auto": []}
        for mode in ("off", "auto"):  # warm-up: page cache, first imports
            _deid(files, work, key, mode, args.jobs)
        for _ in range(args.rounds):
            for mode in ("off", "auto"):
                seconds, summary = _deid(files, work, key, mode, args.jobs)
                times[mode].append(seconds)
        off, auto = statistics.median(times["off"]), statistics.median(times["auto"])
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"{count} CT/MR instances, --jobs {args.jobs}, median of {args.rounds} alternating rounds")
        for mode, median in (("off", off), ("auto", auto)):
            runs = sorted(round(t, 2) for t in times[mode])
            print(f"--pixels {mode:<4}: {median:.2f} s ({count / median:.0f} files/s)  runs {runs}")
        print(f"auto / off   : {auto / off:.3f}; last auto run's pixels: {summary['pixels']}")


if __name__ == "__main__":
    main()

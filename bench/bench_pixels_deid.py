#!/usr/bin/env python3
"""Seconds per image and per frame of ``dicomcloak deid`` with the pixel stage, ``--jobs 1`` and all cores.

Whole commands, as a user runs them (start-up, one OCR model load per worker
process, reading, de-identification, pixel stage, sealing-free writing):
the synthetic secondary captures (``testing.pixel_synth``, ``--n`` images of
seed 7) under ``--pixels all-text`` and ``phi``, then a 30-frame ultrasound
cine (deid-data's ``ultrasound-multiframe.dcm`` when installed) under
``auto``. The baseline in the same run is ``--pixels off`` on the same files.
Prints wall seconds, per image and per frame, and the summary's pixel counts.

    python bench/bench_pixels_deid.py [--n 32] [--jobs-all N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

from dicomcloak.testing.pixel_synth import make_images

CLI = str(Path(sys.executable).with_name("dicomcloak"))


def _deid(inputs: list[Path], work: Path, key: Path, mode: str, jobs: int) -> tuple[float, dict[str, object]]:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work / "out.run", ignore_errors=True)
    command = [CLI, "deid", *map(str, inputs), "--out", str(out), "--key", str(key), "--pixels", mode,
               "--jobs", str(jobs), "--json"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    return seconds, json.loads(result.stdout)


def _row(label: str, inputs: list[Path], frames: int, work: Path, key: Path, mode: str, jobs: int) -> None:
    seconds, summary = _deid(inputs, work, key, mode, jobs)
    print(f"| {label} | {mode} | {jobs} | {len(inputs)} | {frames} | {seconds:.1f} | "
          f"{seconds / len(inputs):.2f} | {seconds / frames:.3f} | {summary['pixels']} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--jobs-all", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}")
    print("| inputs | --pixels | --jobs | images | frames | wall s | s/image | s/frame | pixels |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="bench-pixels-deid-") as tmp:
        work = Path(tmp)
        key = work / "bench.key"
        subprocess.run([CLI, "keys", "init", "--out", str(key)], check=True, capture_output=True)
        synth = make_images(work / "synth", args.n, 7)
        for mode in ("off", "all-text", "phi"):
            for jobs in (1, args.jobs_all):
                _row(f"{args.n} synthetic SC", synth, args.n, work, key, mode, jobs)
        cine = Path(str(files("deid_data"))) / "data" / "ultrasounds" / "ultrasound-multiframe.dcm"
        if cine.exists():
            for mode in ("off", "auto"):
                _row("30-frame US cine", [cine], 30, work, key, mode, 1)


if __name__ == "__main__":
    main()

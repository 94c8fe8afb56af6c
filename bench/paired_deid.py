#!/usr/bin/env python3
"""Paired, alternated timings of two installs' ``deid --pixels off`` beside ``gdcmanon -e`` and pydicom.

On a shared machine a single timing says little: the load changes from one
second to the next. This times, round after round, the reference install
(main's virtual environment), this checkout's, ``gdcmanon -e`` (one process)
and the pydicom read + write baseline on the same corpus, one after the
other, then reports each command's median and, per round, the ratio of the
candidate to the reference and to gdcmanon (measured a few seconds apart, so
both saw about the same load). Also the start-up of one file, many rounds.

    python bench/paired_deid.py --corpus DIR [--reference /work/main/.venv] [--rounds 5] [--jobs 1 2]

Rows and ratios are printed as Markdown (docs/benchmarks.md, "Speed (issue 16)").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_deid  # the same wrapper, certificate and baseline as the main benchmark

REPO = Path(__file__).resolve().parents[1]


def commands(corpus: Path, work: Path, args: argparse.Namespace, key: Path) -> dict[str, list[str]]:
    """Every command of one round, by row name (outputs in ``work``)."""
    todo: dict[str, list[str]] = {
        "pydicom read + write": [
            sys.executable, bench_deid.__file__, "_baseline", str(corpus), str(work / "py")
        ],
    }
    cert = bench_deid.gdcm_certificate(args.work)
    if cert is not None:
        todo["gdcmanon -e"] = [
            "gdcmanon", "-e", "-c", str(cert), "-r", "-i", str(corpus), "-o", str(work / "g")
        ]
    for jobs in args.jobs:
        for side, venv in (("reference", args.reference), ("candidate", args.candidate)):
            todo[f"{side} --jobs {jobs}"] = [
                str(venv / "bin" / "dicomcloak"), "deid", str(corpus), "--out", str(work / f"{side}{jobs}"),
                "--key", str(key), "--jobs", str(jobs), "--pixels", "off",
            ]
    return todo


def one_file(corpus: Path) -> Path:
    """The first file of the corpus, alone in a directory (the start-up measurement's input)."""
    source = next(path for path in sorted(corpus.rglob("*")) if path.is_file())
    directory = Path(tempfile.mkdtemp(prefix="paired-one-"))
    shutil.copyfile(source, directory / source.name)
    return directory


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True, help="a corpus directory (its files/ is used)")
    ap.add_argument("--reference", type=Path, default=REPO.parent.parent / "main" / ".venv")
    ap.add_argument("--candidate", type=Path, default=REPO / ".venv")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--startup-rounds", type=int, default=15)
    ap.add_argument("--work", type=Path, default=Path(tempfile.mkdtemp(prefix="paired-deid-")))
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    files = args.corpus / "files"
    n = sum(1 for path in files.rglob("*") if path.is_file())
    mbytes = bench_deid.warm(files) / 1e6
    key = args.work / "key"
    if not key.exists():
        subprocess.run([str(args.candidate / "bin" / "dicomcloak"), "keys", "init", "--out", str(key)],
                       check=True, capture_output=True)
    rows: dict[str, list[bench_deid.Row]] = {}
    loads = []
    for round_ in range(args.rounds):
        scratch = args.work / f"round-{round_}"
        for name, cmd in commands(files, scratch, args, key).items():
            rows.setdefault(name, []).append(bench_deid.measure(name, cmd, n, mbytes))
        shutil.rmtree(scratch, ignore_errors=True)
        loads.append(os.getloadavg()[0])
    print(f"{n} files, {mbytes:.0f} MB, {args.rounds} rounds; load average per round "
          f"{' '.join(f'{x:.1f}' for x in loads)}\n")
    print("| command | files/s (median) | wall s, each round | CPU s (median) | peak RSS MB |")
    print("|---|---|---|---|---|")
    for name, runs in rows.items():
        wall = statistics.median(r.wall for r in runs)
        print(f"| {name} | {n / wall:,.0f} | {' '.join(f'{r.wall:.2f}' for r in runs)} "
              f"| {statistics.median(r.cpu for r in runs):.2f} | {max(r.rss_mb for r in runs):.0f} |")
    print()
    for jobs in args.jobs:
        pairs = {
            "candidate / reference": f"reference --jobs {jobs}",
            "candidate / gdcmanon -e": "gdcmanon -e",
            "candidate / pydicom read + write": "pydicom read + write",
        }
        for label, other in pairs.items():
            if other not in rows:
                continue
            mine = rows[f"candidate --jobs {jobs}"]
            ratios = [o.wall / c.wall for o, c in zip(rows[other], mine, strict=True)]
            print(f"- --jobs {jobs}, files/s {label}: by round {' '.join(f'{x:.2f}' for x in ratios)}; "
                  f"median {statistics.median(ratios):.2f}x")
    startup(args, key, files)
    return 0


def startup(args: argparse.Namespace, key: Path, files: Path) -> None:
    """One file, ``--jobs 1 --pixels off``, alternated: the whole process's wall time, median."""
    single = one_file(files)
    walls: dict[str, list[float]] = {"reference": [], "candidate": []}
    for round_ in range(args.startup_rounds):
        for side, venv in (("reference", args.reference), ("candidate", args.candidate)):
            out = args.work / f"one-{side}-{round_}"
            cmd = [str(venv / "bin" / "dicomcloak"), "deid", str(single), "--out", str(out),
                   "--key", str(key), "--jobs", "1", "--pixels", "off"]
            walls[side].append(bench_deid.measure(f"one file, {side}", cmd, 1, 0.0).wall)
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(out.with_name(out.name + ".run"), ignore_errors=True)
    reference, candidate = (statistics.median(walls[side]) for side in ("reference", "candidate"))
    print(f"\nStart-up (one file, {args.startup_rounds} alternated rounds, median wall): "
          f"reference {reference:.3f} s, candidate {candidate:.3f} s")
    shutil.rmtree(single, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

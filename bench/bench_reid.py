#!/usr/bin/env python3
"""``dicomcloak reid --jobs 1`` vs ``--jobs 2`` on the same sealed tree, vault and embedded (issue 16).

The corpus (``dicomcloak.testing.corpus``) is de-identified once with both
seals (``--vault`` SQLite and ``--recipient``); then each mode is restored
with ``--jobs 1`` and ``--jobs 2`` in rounds (every variant once per round,
so a change in the machine's load hits them alike). Reported: median wall
time of the whole command, files/s, the speed-up of 2 jobs, and whether the
two outputs are byte-identical. A selection row restores one patient of the
tree (``--patient``), the other files counted ``not-selected``.

    python bench/bench_reid.py [--n 300] [--rounds 3] [--md docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dicomcloak.testing.corpus import build_corpus


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("dicomcloak")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dicomcloak.cli.app"]


def _run(args: list[str | Path]) -> str:
    result = subprocess.run([*_cli(), *map(str, args)], capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):
        raise SystemExit(f"failed: {' '.join(map(str, args[:2]))}\n{result.stderr}")
    return result.stdout


def _prepare(corpus: Path, work: Path) -> dict[str, list[str | Path]]:
    """Keys, the sealed tree (work/out), and each mode's reid arguments."""
    key, owner, vault = work / "project.key", work / "owner", f"sqlite:///{work / 'vault.db'}"
    _run(["keys", "init", "--out", key])
    _run(["keys", "cert", "--out-dir", owner, "--no-passphrase"])
    _run(["keys", "sealer", "--out-dir", owner])
    sealing = ["--recipient", owner / "owner.cert.pem", "--sealer-key", owner / "sealer.key.pem"]
    deid = ["deid", corpus, "--out", work / "out", "--key", key, "--vault", vault, "--layout", "mirror"]
    _run([*deid, *sealing])
    return {
        "vault": ["--vault", vault, "--key", key],
        "embedded": ["--private-key", owner / "owner.key.pem", "--trusted-sealer", owner / "sealer.cert.pem"],
    }


def _reid(work: Path, name: str, args: list[str | Path]) -> tuple[float, dict[str, object]]:
    back = work / f"back-{name}"
    shutil.rmtree(back, ignore_errors=True)
    shutil.rmtree(f"{back}.run", ignore_errors=True)
    start = time.perf_counter()
    out = _run(["reid", work / "out", "--out", back, *args, "--json"])
    return time.perf_counter() - start, json.loads(out)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.dcm"))}


def measure(
    work: Path, modes: dict[str, list[str | Path]], rounds: int
) -> tuple[dict[str, list[float]], str]:
    """Wall seconds per (mode, jobs), per round; and whether --jobs 2 wrote what --jobs 1 wrote."""
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for mode, args in modes.items():
            for jobs in ("1", "2"):
                seconds, _summary = _reid(work, f"{mode}-{jobs}", [*args, "--jobs", jobs])
                times.setdefault(f"{mode} --jobs {jobs}", []).append(seconds)
    same = [mode for mode in modes if _tree(work / f"back-{mode}-1") == _tree(work / f"back-{mode}-2")]
    return times, f"byte-identical outputs --jobs 1 vs 2: {', '.join(same) or 'none'}"


def selection_row(work: Path, args: list[str | Path]) -> str:
    """One patient of the tree restored with --patient (vault, --jobs 2): its time and counts."""
    from pydicom import dcmread

    headers = (dcmread(p, stop_before_pixels=True) for p in (work / "out").rglob("*.dcm"))
    patients = sorted({str(ds.PatientID) for ds in headers})
    seconds, summary = _reid(work, "one-patient", [*args, "--jobs", "2", "--patient", patients[0]])
    return (f"| vault --jobs 2 --patient (1 of {len(patients)}) | {seconds:.2f} | — | — | "
            f"{summary['written']} restored, {summary['not_selected']} not selected |")


def table(times: dict[str, list[float]], files: int) -> str:
    lines = ["| reid | median s | files/s | speed-up | runs (s) |", "|---|---:|---:|---:|---|"]
    for name, runs in times.items():
        median = statistics.median(runs)
        one = statistics.median(times[name.replace("--jobs 2", "--jobs 1")])
        speedup = "—" if name.endswith("1") else f"{one / median:.2f}x"
        lines.append(f"| {name} | {median:.2f} | {files / median:.0f} | {speedup} | "
                     f"{', '.join(f'{r:.2f}' for r in runs)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--md", type=Path)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reid-") as tmp:
        work = Path(tmp)
        corpus = build_corpus(work / "corpus", options.n) / "files"
        files = len(list(corpus.rglob("*.dcm")))
        modes = _prepare(corpus, work)
        times, identical = measure(work, modes, options.rounds)
        selection = selection_row(work, modes["vault"])
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    text = (f"{dt.date.today().isoformat()}, {files} files, {cpus} CPUs, {options.rounds} rounds, "
            f"load average after the run {load}\n\n{table(times, files)}\n{selection}\n\n{identical}\n")
    print(text)
    if options.md:
        with options.md.open("a", encoding="utf-8") as handle:
            handle.write(f"\n### reid --jobs (bench/bench_reid.py)\n\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

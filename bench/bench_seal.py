#!/usr/bin/env python3
"""Sealing overhead: ``dicomcloak deid`` plain vs embedded (--recipient) vs vault (--vault) vs both.

Same corpus, same run, same job count; every variant is run ``--rounds`` times
in rounds (all variants once per round, so a change in the machine's load hits
them alike) and the median wall time is reported, with files/s and the
overhead relative to plain de-identification (issue 4's aim: < 25% each).
The vault is a fresh SQLite file per run (WAL); the owner certificate is made
with ``dicomcloak keys cert``, the sealer key that signs embedded seals with
``dicomcloak keys sealer``.

    python bench/bench_seal.py [--n 500] [--jobs 1] [--rounds 3] [--cpu-rounds 9] [--corpus DIR]
                               [--cpu-only] [--md docs/benchmarks.md]

``--cpu-only`` measures the in-process rows alone (e.g. run it twice, with
``PYTHONPATH`` pointing at an older ``src`` for a before/after in one session).
The load average is printed with the figures: other work on the machine
inflates every row alike, but widens their spread.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from dicomcloak.testing.corpus import build_corpus

VARIANTS = ("plain", "embedded", "vault", "both")


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("dicomcloak")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dicomcloak.cli.app"]


def _run(args: list[str | Path]) -> None:
    result = subprocess.run([*_cli(), *map(str, args)], capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):
        raise SystemExit(f"failed: {' '.join(map(str, args))}\n{result.stderr}")


def _variant_args(variant: str, work: Path, owner: Path, run: int) -> list[str | Path]:
    args: list[str | Path] = []
    if variant in ("embedded", "both"):
        args += ["--recipient", owner / "owner.cert.pem", "--sealer-key", owner / "sealer.key.pem"]
    if variant in ("vault", "both"):
        args += ["--vault", f"sqlite:///{work / f'vault-{variant}-{run}.db'}"]
    return args


def measure(corpus: Path, work: Path, jobs: int, rounds: int) -> dict[str, list[float]]:
    """Wall seconds of each variant, per round."""
    key, owner = work / "project.key", work / "owner"
    _run(["keys", "init", "--out", key])
    _run(["keys", "cert", "--out-dir", owner, "--no-passphrase"])
    _run(["keys", "sealer", "--out-dir", owner])
    times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for run in range(rounds):
        for variant in VARIANTS:
            out = work / f"out-{variant}"
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(work / f"out-{variant}.run", ignore_errors=True)
            args = ["deid", corpus, "--out", out, "--key", key, "--jobs", str(jobs)]
            start = time.perf_counter()
            _run([*args, *_variant_args(variant, work, owner, run)])
            times[variant].append(time.perf_counter() - start)
    return times


def check_restored(corpus: Path, work: Path) -> str:
    """reid(deid(x)) == x on every written file, embedded and vault (the last round's "both" output)."""
    from pydicom import dcmread

    from dicomcloak.testing.restored import differences

    originals = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in corpus.rglob("*.dcm")}
    owner, key = work / "owner", work / "project.key"
    vaults = sorted(work.glob("vault-both-*.db"))
    modes = {
        "embedded": [
            "--private-key", owner / "owner.key.pem", "--trusted-sealer", owner / "sealer.cert.pem",
        ],
        "vault": ["--vault", f"sqlite:///{vaults[-1]}", "--key", key],
    }
    lines = []
    for mode, args in modes.items():
        back = work / f"back-{mode}"
        _run(["reid", work / "out-both", "--out", back, *args])
        total = exact = 0
        for path in back.rglob("*.dcm"):
            ds = dcmread(path)
            total += 1
            exact += not differences(dcmread(originals[str(ds.SOPInstanceUID)]), ds)
        option = "private-key" if mode == "embedded" else "vault"
        lines.append(f"reid --{option}: {exact}/{total} files restored exactly")
    return "; ".join(lines)


def in_process(corpus: Path, rounds: int) -> dict[str, list[float]]:
    """CPU per file in one process (read, de-identify, seal, encode; no disk, no database): ms per file.

    The sealing work itself, as the batch worker does it (capture; embedded: the seal made from the
    binding digest of the encoder's parts, signed, and encoded in place; vault: the binding digest),
    without process start-up, imports and the vault's transactions, which the whole-command figures
    include.
    """
    from dicomcloak.api import Deidentifier, Sealer
    from dicomcloak.io.reader import read_dataset
    from dicomcloak.io.writer import encode_dataset_bound, encode_dataset_parts, encode_dataset_sealed
    from dicomcloak.keys import ProjectKey
    from dicomcloak.policy.model import Policy
    from dicomcloak.testing.sealing import make_sealing_keys

    datas = [path.read_bytes() for path in sorted(corpus.rglob("*.dcm"))]
    deid = Deidentifier(Policy(), ProjectKey.generate(ephemeral=True))
    keys = make_sealing_keys()
    sealers = {
        "plain": None,
        "embedded": keys.sealer(),
        "vault": Sealer(vault=True),
        "both": keys.sealer(vault=True),
    }
    times: dict[str, list[float]] = {variant: [] for variant in sealers}
    for _ in range(rounds):
        for variant, sealer in sealers.items():
            start = time.perf_counter()
            for data in datas:
                source = read_dataset(data)
                outcome = deid.deidentify(source)
                if sealer is None:
                    encode_dataset_parts(outcome.dataset)
                    continue
                sealed = sealer.capture(source, outcome)
                if sealed.embedded:
                    seal = partial(sealer.seal_element, sealed, outcome.sop_instance_uid)
                    encode_dataset_sealed(outcome.dataset, seal)
                else:
                    encode_dataset_bound(outcome.dataset)
            times[variant].append((time.perf_counter() - start) / len(datas) * 1000)
    return times


def cpu_table(times: dict[str, list[float]]) -> str:
    """The in-process table: median and fastest round, ms per file, and overhead vs plain (medians)."""
    plain = statistics.median(times["plain"])
    lines = ["| in process, per file | median ms | min ms | overhead vs plain |", "|---|---:|---:|---:|"]
    for variant, runs in times.items():
        median = statistics.median(runs)
        overhead = "—" if variant == "plain" else f"{(median / plain - 1) * 100:+.0f}%"
        lines.append(f"| {variant}{' (capture + pairs, no database)' if variant == 'vault' else ''} "
                     f"| {median:.3f} | {min(runs):.3f} | {overhead} |")
    return "\n".join(lines)


def load() -> str:
    """The 1, 5 and 15 minute load averages: how busy the machine was."""
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


def table(times: dict[str, list[float]], files: int, jobs: int) -> str:
    """The Markdown table: median wall time, files/s, overhead vs plain, every run."""
    plain = statistics.median(times["plain"])
    lines = [
        f"| deid --jobs {jobs} | median s | files/s | overhead vs plain | runs (s) |",
        "|---|---:|---:|---:|---|",
    ]
    for variant, runs in times.items():
        median = statistics.median(runs)
        overhead = "—" if variant == "plain" else f"{(median / plain - 1) * 100:+.0f}%"
        runs_text = ", ".join(f"{r:.2f}" for r in runs)
        lines.append(f"| {variant} | {median:.2f} | {files / median:.0f} | {overhead} | {runs_text} |")
    return "\n".join(lines)


def machine() -> str:
    """CPUs, model, Python: the context a figure needs."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), "")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpus} CPUs ({model}), Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--max-big", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu-rounds", type=int, default=9)
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--md", type=Path)
    options = parser.parse_args()
    before = load()
    with tempfile.TemporaryDirectory(prefix="bench-seal-") as temp:
        work = Path(temp)
        corpus = options.corpus or work / "corpus"
        if not (corpus / "files").is_dir():
            build_corpus(corpus, options.n, seed=1, max_big=options.max_big)
        files = sum(1 for _ in (corpus / "files").rglob("*.dcm"))
        if not options.cpu_only:
            times = measure(corpus / "files", work, options.jobs, options.rounds)
            restored = check_restored(corpus / "files", work)
        cpu = in_process(corpus / "files", options.cpu_rounds)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = f"{files} files, {stamp}, {machine()}; {before} (start), {load()} (end)\n\n"
    if options.cpu_only:
        text = f"{head}{cpu_table(cpu)}\n"
    else:
        text = (f"{head}{table(times, files, options.jobs)}\n\n"
                f"{cpu_table(cpu)}\n\nCorrectness (acceptance, issue 4): {restored}.\n")
    print(text)
    if options.md:
        with options.md.open("a", encoding="utf-8") as handle:
            handle.write(f"\n### Sealing overhead (bench/bench_seal.py, issue 4)\n\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

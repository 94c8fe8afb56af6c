#!/usr/bin/env python3
"""Cost of the sanitize (CDR) stage as a fraction of de-identification time, in one process.

Builds (or reuses) the synthetic corpus (``../shared/eval/make_corpus.py``, else
``python -m dicomcloak.testing.corpus``), loads every file into memory, then
times per file, over ``--repeat`` rounds (median reported):

* ``deid``: the de-identification pipeline without sanitize, as a batch worker
  runs it: read (``read_dataset``) + ``deidentify`` + encode;
* ``sanitize (before deid)``: ``sanitize_dataset(..., moot=True)`` on the read
  dataset, the stage as ``deid`` runs it;
* ``sanitize (alone)``: ``sanitize_dataset`` as ``dicomcloak sanitize`` runs it;
* ``pipeline``: read + sanitize + de-identify + encode, with the sanitize share timed file by file.

The figure of merit is the per-file sanitize share of the pipeline (robust to load drift); the aim is
under 20%.

    python bench/bench_sanitize.py --n 500 --max-big 5 [--corpus DIR] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench_deid import build_corpus, machine  # bench/ is on sys.path


def timed(steps: dict[str, Callable[[], int]], repeat: int) -> dict[str, float]:
    """Median seconds of each step over ``repeat`` rounds; every round runs every step (round robin),
    so a change in the machine's load hits all steps alike; the collector is off while timing."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeat):
        for name, work in steps.items():
            gc.collect()
            gc.disable()
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
            gc.enable()
    for name, runs in times.items():
        listed = ", ".join(f"{t * 1000:.0f}" for t in runs)
        print(f"  {name}: {statistics.median(runs) * 1000:.0f} ms (runs: {listed})", file=sys.stderr)
    return {name: statistics.median(runs) for name, runs in times.items()}


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-big", type=int, default=5)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from dicomcloak.engine.deidentify import deidentify
    from dicomcloak.io import read_dataset
    from dicomcloak.io.writer import encode_dataset_parts
    from dicomcloak.keys import ProjectKey, Pseudonymizer
    from dicomcloak.policy import Policy
    from dicomcloak.sanitize import sanitize_dataset

    corpus = args.corpus or Path(tempfile.mkdtemp(prefix="bench-sanitize-"))
    if not (corpus / "files").is_dir():
        build_corpus(corpus, args.n, args.seed, args.max_big)
    blobs = [path.read_bytes() for path in sorted((corpus / "files").rglob("*.dcm"))]
    mbytes = sum(map(len, blobs)) / 1e6
    print(f"corpus: {len(blobs)} files, {mbytes:.0f} MB, in memory", file=sys.stderr)
    policy = Policy()
    pseudonymizer = Pseudonymizer(ProjectKey.generate(ephemeral=True), "default")
    datasets = [read_dataset(blob) for blob in blobs]

    def deid() -> int:
        for blob in blobs:
            encode_dataset_parts(deidentify(read_dataset(blob), policy, pseudonymizer).dataset)
        return len(blobs)

    split = {"sanitize": 0.0, "rest": 0.0}

    def pipeline() -> int:
        """The whole per-file path, with the sanitize share timed file by file (robust to load drift)."""
        clock = time.perf_counter
        for blob in blobs:
            t0 = clock()
            ds = read_dataset(blob)
            t1 = clock()
            clean = sanitize_dataset(ds, policy.sanitize, policy, moot=True)
            t2 = clock()
            encode_dataset_parts(deidentify(clean.dataset, policy, pseudonymizer).dataset)
            t3 = clock()
            split["sanitize"] += t2 - t1
            split["rest"] += (t1 - t0) + (t3 - t2)
        return len(blobs)

    def sanitize(moot: bool) -> Callable[[], int]:
        def work() -> int:
            for ds in datasets:
                sanitize_dataset(ds, policy.sanitize, policy, moot=moot)
            return len(datasets)

        return work

    deid(), pipeline(), sanitize(True)(), sanitize(False)()  # warm caches (policy memo, codecs)
    steps = {"deid": deid, "pipeline": pipeline, "before deid": sanitize(True), "alone": sanitize(False)}
    medians = timed(steps, args.repeat)
    t_deid, t_pipe, t_moot, t_alone = medians.values()
    n = len(blobs)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\n### Sanitize stage cost ({when}; {machine()})\n")
    print(f"Corpus: make_corpus --n {args.n} --seed {args.seed} --max-big {args.max_big} "
          f"({n} files, {mbytes:.0f} MB), in memory, one process, median of {args.repeat} rounds.\n")
    print("| step | ms per file | fraction of deid |")
    print("|---|---|---|")
    print(f"| deid: read + de-identify + encode (baseline) | {t_deid / n * 1000:.3f} | 100% |")
    print(f"| sanitize, as `deid` runs it (before de-identification) | {t_moot / n * 1000:.3f} | "
          f"**{t_moot / t_deid:.1%}** |")
    print(f"| read + sanitize + de-identify + encode (what `deid` now does) | {t_pipe / n * 1000:.3f} | "
          f"{t_pipe / t_deid:.1%} |")
    share = split["sanitize"] / split["rest"]
    print(f"| sanitize inside that path, timed per file (all rounds), over the rest of it | "
          f"{split['sanitize'] / n / (args.repeat + 1) * 1000:.3f} | **{share:.1%}** |")
    print(f"| sanitize alone, as `dicomcloak sanitize` runs it | {t_alone / n * 1000:.3f} | "
          f"{t_alone / t_deid:.1%} |")


if __name__ == "__main__":
    main()

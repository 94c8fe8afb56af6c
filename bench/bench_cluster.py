#!/usr/bin/env python3
"""``deid --dask`` on a local 2-worker Dask cluster against ``deid --jobs 2``, on the same corpus.

Builds a synthetic PHI corpus (``dicomcloak.testing.corpus``), starts a Dask
scheduler and two workers (one process, one thread each) on this host, with
Dask's statistical profiler off in the workers as docs/cluster.md advises
(``--dask-profile`` keeps Dask's default: on, sampling every 10 ms), and
times whole ``dicomcloak deid`` processes, alternating the two commands in
rounds, each into fresh directories (deleted at the round's end). Both are
asked for ``--pixels off`` by default (the header path: the pure per-file cost
and the cluster's overhead, not OCR). The outputs of the last round are
compared byte for byte. Files/s is the summary's (the batch itself, not the
process start).

    python bench/bench_cluster.py [--n 1000] [--rounds 3] [--md docs/benchmarks.md]
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench_deid import machine  # the same machine line in every benchmark (bench/ is on sys.path)

from dicomcloak.keys import ProjectKey, write_key_file
from dicomcloak.testing.corpus import build_corpus


@contextmanager
def local_cluster(work: Path, profile: bool) -> Iterator[str]:
    """A scheduler and two single-thread workers on this host; stopped at the end."""
    from distributed import Client

    dask = [str(Path(sys.executable).with_name("dask"))]
    address_file = work / "scheduler.json"
    log = (work / "cluster.log").open("wb")
    environ = dict(os.environ, DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=str(profile))
    started = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", str(address_file)], stdout=log, stderr=log)]
    try:
        while not address_file.exists():
            time.sleep(0.1)
        for _ in range(2):
            started.append(subprocess.Popen(
                [*dask, "worker", "--scheduler-file", str(address_file), "--nworkers", "1", "--nthreads", "1",
                 "--no-dashboard", "--local-directory", str(work / "dask")],
                stdout=log, stderr=log, env=environ))
        address = json.loads(address_file.read_text())["address"]
        with Client(address, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=60)
        log.close()


def deid(corpus: Path, out: Path, key: Path, *extra: str) -> tuple[float, float]:
    """One whole ``deid`` process: (wall seconds, the summary's files/s)."""
    command = [str(Path(sys.executable).with_name("dicomcloak")), "deid", str(corpus), "--out", str(out),
               "--key", str(key), "--json", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"deid failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, float(json.loads(done.stdout)["files_per_second"])


def same_tree(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
        (a / f).read_bytes() == (b / f).read_bytes() for f in files)


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--n", type=int, default=1000, help="corpus files")
    parser.add_argument("--rounds", type=int, default=3, help="repeats; medians are reported")
    parser.add_argument("--pixels", default="off", help="deid --pixels (default off)")
    parser.add_argument("--dask-profile", action="store_true", help="keep Dask's profiler on in the workers")
    parser.add_argument("--md", type=Path, help="append the Markdown section to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        work = Path(tmp)
        corpus = build_corpus(work / "corpus", args.n) / "files"
        key = work / "project.key"
        write_key_file(key, ProjectKey.generate())
        commands = {"deid --jobs 2": ("--jobs", "2"), "deid --dask (2 workers x 1 thread)": ()}
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        identical = False
        with local_cluster(work, args.dask_profile) as address:
            for round_ in range(args.rounds):
                outs = {}
                for n, (name, extra) in enumerate(commands.items()):
                    out = work / f"out-{round_}-{n}"
                    dask = ("--dask", address) if "--dask" in name else ()
                    runs[name].append(deid(corpus, out, key, "--pixels", args.pixels, *extra, *dask))
                    outs[name] = out
                identical = same_tree(*outs.values())
                for out in outs.values():
                    shutil.rmtree(out)
                    shutil.rmtree(out.with_name(out.name + ".run"))
    print(report(args, runs, identical))
    if args.md:
        with args.md.open("a", encoding="utf-8") as handle:
            handle.write("\n" + report(args, runs, identical))


def report(args: argparse.Namespace, runs: dict[str, list[tuple[float, float]]], identical: bool) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"## Cluster: deid --dask vs --jobs 2 (issue 16, dask), {when}", "",
        f"`bench/bench_cluster.py --n {args.n} --rounds {args.rounds} --pixels {args.pixels}"
        f"{' --dask-profile' if args.dask_profile else ''}`; {machine()}; "
        f"load average at the end {load}. Outputs of the last round byte-identical: {identical}.", "",
        "| command | files/s (summary, median) | wall s (median) | every run's wall s |", "|---|---|---|---|",
    ]
    for name, values in runs.items():
        walls = [w for w, _ in values]
        rates = [r for _, r in values]
        lines.append(f"| `{name}` | {statistics.median(rates):.1f} | {statistics.median(walls):.2f} | "
                     f"{', '.join(f'{w:.2f}' for w in walls)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""``deid --dask`` on a local 2-worker Dask cluster against ``deid --jobs 2``, on the same corpus.

Builds a synthetic PHI corpus (``dicomcloak.testing.corpus``), starts two
local Dask clusters of a scheduler and two workers (one process, one thread
each): one with Dask's statistical profiler off in the workers, as
docs/cluster.md advises, one with Dask's default (on, sampling every 10 ms).
Then it times whole ``dicomcloak deid`` processes, ``--jobs 2`` and ``--dask``
on each cluster, one after the other in rounds, each into fresh directories
(deleted at the round's end); each round gives each cluster's files/s over
``--jobs 2``'s, measured under the same conditions (the machine's load moves).
CPU seconds count every process of a run: the ``deid`` process and its pool
workers (``RUSAGE_CHILDREN``), and for ``--dask`` the scheduler, nannies and
workers too (``/proc/PID/stat``); on a loaded machine they move much less than
wall times. Both are
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
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench_deid import machine  # the same machine line in every benchmark (bench/ is on sys.path)

from dicomcloak.keys import ProjectKey, write_key_file
from dicomcloak.testing.corpus import build_corpus


@dataclass(frozen=True)
class Cluster:
    """A running local cluster: its address and the process ids whose CPU time a run adds to."""

    address: str
    pids: tuple[int, ...]


def cpu_seconds(pids: tuple[int, ...]) -> float:
    """User + system CPU seconds of these processes so far (utime, stime: fields 14, 15 of /proc/PID/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


@contextmanager
def local_cluster(work: Path, profile: bool) -> Iterator[Cluster]:
    """A scheduler and two single-thread workers on this host (Dask's profiler on or off); stopped after."""
    from distributed import Client

    work.mkdir()
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
            workers = tuple(client.run(os.getpid).values())
        yield Cluster(address, (*(p.pid for p in started), *workers))
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=60)
        log.close()


def deid(corpus: Path, out: Path, key: Path, cluster: Cluster | None, *extra: str) -> Run:
    """One whole ``deid`` process, on ``cluster`` if given."""
    command = [str(Path(sys.executable).with_name("dicomcloak")), "deid", str(corpus), "--out", str(out),
               "--key", str(key), "--json", *extra, *(("--dask", cluster.address) if cluster else ())]
    pids = cluster.pids if cluster else ()
    cpu = _children_cpu() + cpu_seconds(pids)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    cpu = _children_cpu() + cpu_seconds(pids) - cpu
    if done.returncode not in (0, 1):
        raise SystemExit(f"deid failed ({done.returncode}): {done.stderr[-2000:]}")
    return Run(wall, float(json.loads(done.stdout)["files_per_second"]), cpu)


@dataclass(frozen=True)
class Run:
    wall: float
    rate: float  # the summary's files/s
    cpu: float  # seconds, every process of the run


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    parser.add_argument("--md", type=Path, help="append the Markdown section to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        work = Path(tmp)
        corpus = build_corpus(work / "corpus", args.n) / "files"
        key = work / "project.key"
        write_key_file(key, ProjectKey.generate())
        identical = False
        with (local_cluster(work / "quiet", False) as quiet,
              local_cluster(work / "profiled", True) as profiled):
            commands = {
                "deid --jobs 2": None,
                "deid --dask, profiler off (2 workers x 1 thread)": quiet,
                "deid --dask, Dask's default profiler (2 workers x 1 thread)": profiled,
            }
            runs: dict[str, list[Run]] = {name: [] for name in commands}
            for round_ in range(args.rounds):
                outs = {}
                for n, (name, cluster) in enumerate(commands.items()):
                    out = work / f"out-{round_}-{n}"
                    jobs = () if cluster else ("--jobs", "2")
                    runs[name].append(deid(corpus, out, key, cluster, "--pixels", args.pixels, *jobs))
                    outs[name] = out
                trees = list(outs.values())
                identical = all(same_tree(trees[0], other) for other in trees[1:])
                for out in outs.values():
                    shutil.rmtree(out)
                    shutil.rmtree(out.with_name(out.name + ".run"))
    print(report(args, runs, identical))
    if args.md:
        with args.md.open("a", encoding="utf-8") as handle:
            handle.write("\n" + report(args, runs, identical))


def report(args: argparse.Namespace, runs: dict[str, list[Run]], identical: bool) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"## Cluster: deid --dask vs --jobs 2 (issue 16, dask), {when}", "",
        f"`bench/bench_cluster.py --n {args.n} --rounds {args.rounds} --pixels {args.pixels}`; {machine()}; "
        f"load average at the end {load}. Outputs of the last round byte-identical: {identical}.", "",
        "| command | files/s (median) | wall s (median; every run) | files/s / --jobs 2's, per round "
        "(median) | CPU s, all processes (median) | CPU / --jobs 2's, per round (median) |",
        "|---|---|---|---|---|---|",
    ]
    local = next(iter(runs.values()))
    for name, values in runs.items():
        rates = [v.rate / base.rate for v, base in zip(values, local, strict=True)]
        cpus = [v.cpu / base.cpu for v, base in zip(values, local, strict=True)]
        walls = ", ".join(f"{v.wall:.2f}" for v in values)
        lines.append(
            f"| `{name}` | {statistics.median(v.rate for v in values):.1f} "
            f"| {statistics.median(v.wall for v in values):.2f}; {walls} "
            f"| {_ratios(rates)} | {statistics.median(v.cpu for v in values):.2f} | {_ratios(cpus)} |")
    return "\n".join(lines) + "\n"


def _ratios(values: list[float]) -> str:
    return f"{', '.join(f'{x:.2f}' for x in values)} ({statistics.median(values):.2f})"


if __name__ == "__main__":
    main()

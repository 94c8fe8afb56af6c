#!/usr/bin/env python3
"""The gateway under load (issue 15): dcmtk ``storescu`` into ``dicomcloak serve`` vs into ``storescp``.

Corpus: ``--n`` uncompressed instances with PHI from the synthetic corpus
(``dicomcloak.testing.corpus``; its few compressed files are left out), all
with distinct SOP Instance UIDs. Every configuration runs with K = 1, 4 and 16
concurrent dcmtk ``storescu`` processes, each sending its N/K files on one
association, ``--repeat`` times (medians reported):

- direct: ``storescu`` -> dcmtk ``storescp +uf`` (the baseline: a plain archive);
- gateway: ``storescu`` -> ``dicomcloak serve`` (a deidentify route, Basic
  profile, pixels off, spool in the work directory, a generated key file) ->
  a second ``storescp``; with and without ``vault = ...`` (originals sealed in
  SQLite). The sender's C-STORE latency covers the gateway's processing and
  the durable spool write (success is answered only after both,
  docs/gateway.md); end-to-end is the time until the destination holds all N.

Throughput is N over the wall time from starting the senders until the last
one exited. Latency is per C-STORE, from each ``storescu``'s own log with
timestamps (``-lc``: a log4cplus configuration with the pattern
``%D{%s.%Q}``, epoch seconds, milliseconds and microseconds, checked with
dcmtk 3.6.7): "Sending Store Request" to "Received Store Response". CPU per
instance is the serve process's user + system seconds (psutil) from before the
senders start until the destination has everything, over N.

``--profile`` adds one more 16-sender gateway run under ``py-spy record`` (when
``py-spy`` is on PATH, e.g. ``pip install py-spy`` into the venv; it is not a
project dependency) and lists where the serve process spends its time.

dcmtk runs with ``TCP_NODELAY=1`` in its environment: Debian's dcmtk leaves
Nagle's algorithm on unless told so at run time, and then every C-STORE
waits for a delayed ACK (~40 ms per side on loopback: a 40 KB CT took 87 ms
to store into ``storescp``, 0.8 ms with ``TCP_NODELAY=1`` on both sides).
``--nagle`` keeps dcmtk's default. The gateway sets ``TCP_NODELAY`` on its
own sockets (``dicomcloak.net.tcp``; pynetdicom leaves Nagle on).

    python bench/bench_gateway.py [--n 400] [--repeat 3] [--senders 1 4 16] [--profile] [--nagle]
                                  [--work DIR] [--md docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from bench_deid import machine  # the same machine line in every benchmark (bench/ is on sys.path)
from pydicom import dcmread

from dicomcloak.keys import ProjectKey, write_key_file
from dicomcloak.testing.archives import free_port, wait_for_port
from dicomcloak.testing.corpus import build_corpus
from dicomcloak.testing.gatewayconf import gateway_table

#: dcmtk's tools by absolute path: pynetdicom installs apps of the same names in the venv's bin/.
STORESCU = "/usr/bin/storescu"
STORESCP = "/usr/bin/storescp"
DICOMCLOAK = str(Path(sys.executable).with_name("dicomcloak"))
#: dcmtk's environment: ``TCP_NODELAY=1`` unless ``--nagle`` (see the module docstring).
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}

#: log4cplus: every message with its epoch time, ``%s.%Q`` -> ``1796658750.764.841`` (s.ms.us).
LOG_CONFIG = """\
log4cplus.rootLogger = INFO, console
log4cplus.appender.console = log4cplus::ConsoleAppender
log4cplus.appender.console.layout = log4cplus::PatternLayout
log4cplus.appender.console.layout.ConversionPattern = %D{%s.%Q} %m%n
"""
_STAMP = re.compile(r"^(\d+)\.(\d{3})(?:\.(\d{3}))? (.*)$")


@dataclass
class Run:
    """One run of one configuration with K senders."""

    wall: float  # senders started -> last sender exited
    latencies: list[float]  # seconds per C-STORE, all senders
    acknowledged: int
    end_to_end: float | None = None  # senders started -> destination holds all N (gateway only)
    cpu: float | None = None  # serve process CPU seconds (gateway only)


@dataclass
class Row:
    name: str
    senders: int
    runs: list[Run] = field(default_factory=list)


def corpus(work: Path, n: int) -> list[Path]:
    """``n`` uncompressed PHI instances with distinct SOP Instance UIDs (a larger corpus, filtered)."""
    size = n + n // 10 + 10
    while True:
        root = build_corpus(work / f"corpus-{size}", size, seed=15, max_big=0)
        files, uids = [], set()
        for path in sorted((root / "files").rglob("*.dcm")):
            ds = dcmread(path, stop_before_pixels=True)
            if str(ds.file_meta.TransferSyntaxUID) in UNCOMPRESSED and ds.SOPInstanceUID not in uids:
                uids.add(ds.SOPInstanceUID)
                files.append(path)
        if len(files) >= n:
            for path in files[:n]:
                path.read_bytes()  # warm page cache
            return files[:n]
        shutil.rmtree(root)
        size *= 2


@contextmanager
def storescp(directory: Path, ae_title: str) -> Iterator[int]:
    """dcmtk ``storescp +uf`` into ``directory`` on a free port; its port."""
    directory.mkdir(parents=True)
    port = free_port()
    command = [STORESCP, "+uf", "--output-directory", str(directory), "-aet", ae_title, str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=DCMTK_ENV)
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def write_config(root: Path, key: Path, port: int, destination: int, vault: bool) -> Path:
    """A gateway.toml: one listener from 127.0.0.1, one deidentify route (Basic profile, pixels off)."""
    lines = [
        gateway_table(key),
        "[[listener]]", 'ae_title = "DICOMCLOAK"', f"port = {port}", 'route = "out"',
        'allow = [{ ae_title = "*", address = "127.0.0.1" }]', "",
        "[[route]]", 'name = "out"', 'direction = "deidentify"', 'pixels = "off"',
        f'destination = {{ ae_title = "ARCHIVE", host = "127.0.0.1", port = {destination} }}',
    ]
    if vault:
        lines.append('vault = "var/vault.db"')
    path = root / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def serve(config: Path, profile: Path | None = None) -> Iterator[psutil.Process]:
    """``dicomcloak serve`` until its ready line (under ``py-spy record`` with ``profile``); SIGTERM after."""
    command = [DICOMCLOAK, "serve", "--config", str(config)]
    if profile is not None:
        spy = ["py-spy", "record", "--nonblocking", "--format", "raw", "--rate", "200", "-o", str(profile)]
        command = [*spy, "--", *command]
    with (config.parent / "serve.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    try:
        for line in process.stdout:  # py-spy may print lines of its own first
            if line.startswith(b"{") and json.loads(line).get("event") == "ready":
                break
        else:
            raise RuntimeError(f"serve did not start (see {config.parent / 'serve.log'})")
        server = psutil.Process(process.pid)
        if profile is not None:
            server = next(p for p in server.children(recursive=True) if "serve" in p.cmdline())
        yield server
        stop(server)
        process.wait(120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def stop(server: psutil.Process) -> None:
    """SIGTERM (graceful shutdown), again after 30 s: under py-spy a first one was once seen to get lost."""
    for _ in range(2):
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
            return
        except psutil.TimeoutExpired:
            print("serve still runs 30 s after SIGTERM; sending another", file=sys.stderr)
    raise RuntimeError("serve did not stop on SIGTERM")


def send(work: Path, port: int, called: str, files: list[Path], senders: int) -> tuple[float, list[Path]]:
    """K ``storescu`` at once, each sending its share on one association: the wall time and their logs."""
    log_config = work / "storescu-log.cfg"
    log_config.write_text(LOG_CONFIG)
    shares = [files[i::senders] for i in range(senders)]
    logs = [work / f"storescu-{i}.log" for i in range(senders)]
    processes = []
    start = time.perf_counter()
    for share, log in zip(shares, logs, strict=True):
        with log.open("wb") as out:
            command = [STORESCU, "-lc", str(log_config), "-aec", called, "127.0.0.1", str(port)]
            command += map(str, share)
            processes.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=DCMTK_ENV))
    for process in processes:
        process.wait(600)
    return time.perf_counter() - start, logs


def latencies(logs: list[Path]) -> tuple[list[float], int]:
    """Per C-STORE seconds from each sender's log (request sent -> response received), and the successes."""
    seconds: list[float] = []
    successes = 0
    for log in logs:
        sent: float | None = None
        for line in log.read_text(errors="replace").splitlines():
            match = _STAMP.match(line)
            if match is None:
                continue
            whole, milli, micro, message = match.groups()
            at = int(whole) + int(milli) / 1e3 + int(micro or 0) / 1e6
            if message.startswith("Sending Store Request"):
                sent = at
            elif message.startswith("Received Store Response") and sent is not None:
                seconds.append(at - sent)
                successes += message.startswith("Received Store Response (Success)")
                sent = None
    return seconds, successes


def count(directory: Path) -> int:
    with os.scandir(directory) as entries:
        return sum(1 for entry in entries if entry.is_file() and not entry.name.startswith("."))


def direct(work: Path, files: list[Path], senders: int) -> Run:
    with storescp(work / "received", "ARCHIVE") as port:
        wall, logs = send(work, port, "ARCHIVE", files, senders)
        received = count(work / "received")
    seconds, acked = latencies(logs)
    if received != len(files) or acked != len(files):
        raise RuntimeError(f"direct: {acked} acknowledged, {received} received of {len(files)}")
    return Run(wall, seconds, acked)


def gateway(
    work: Path, files: list[Path], senders: int, vault: bool, profile: Path | None = None
) -> Run:
    key = work / "project.key"
    write_key_file(key, ProjectKey.generate())
    destination = work / "destination"
    with storescp(destination, "ARCHIVE") as archive:
        port = free_port()
        config = write_config(work, key, port, archive, vault)
        with serve(config, profile) as server:
            before = server.cpu_times()
            start = time.perf_counter()
            wall, logs = send(work, port, "DICOMCLOAK", files, senders)
            deadline = time.monotonic() + 600
            while count(destination) < len(files):
                if time.monotonic() > deadline:
                    raise RuntimeError("gateway: the destination did not get every instance in 10 minutes")
                time.sleep(0.02)
            end_to_end = time.perf_counter() - start
            after = server.cpu_times()
    seconds, acked = latencies(logs)
    if acked != len(files):
        raise RuntimeError(f"gateway: {acked} of {len(files)} acknowledged (see {work / 'storescu-0.log'})")
    cpu = (after.user + after.system) - (before.user + before.system)
    return Run(wall, seconds, acked, end_to_end, cpu)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def table(rows: list[Row], n: int) -> str:
    """The Markdown table: medians over the runs of each configuration."""
    lines = [
        "| configuration | senders | instances/s (first hop) | end-to-end instances/s | p50 ms | p99 ms "
        "| gateway/direct throughput | CPU ms/instance (serve) | runs: instances/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    baseline = [r for r in rows if r.name == "direct"]
    direct_rate = {r.senders: statistics.median(n / run.wall for run in r.runs) for r in baseline}
    for row in rows:
        rates = [n / run.wall for run in row.runs]
        rate = statistics.median(rates)
        p50 = statistics.median(percentile(run.latencies, 50) for run in row.runs) * 1000
        p99 = statistics.median(percentile(run.latencies, 99) for run in row.runs) * 1000
        e2e = ratio = cpu = ""
        if row.name != "direct":
            e2e = f"{statistics.median(n / run.end_to_end for run in row.runs if run.end_to_end):,.0f}"
            ratio = f"{rate / direct_rate[row.senders]:.2f}" if row.senders in direct_rate else ""
            cpu = f"{statistics.median(1000 * run.cpu / n for run in row.runs if run.cpu is not None):.1f}"
        each = ", ".join(f"{r:,.0f}" for r in rates)
        lines.append(f"| {row.name} | {row.senders} | {rate:,.0f} | {e2e} | {p50:.1f} | {p99:.1f} | {ratio} "
                     f"| {cpu} | {each} |")
    return "\n".join(lines)


def hot_spots(raw: Path, top: int = 20) -> list[str]:
    """From py-spy's collapsed stacks: the functions with the most samples, inclusive and own (leaf)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = start_up = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        if "importlib._bootstrap" in stack:  # imports: serve's start-up, before the ready line
            start_up += int(samples)
            continue
        frames = [_frame(f) for f in stack.split(";")]
        total += int(samples)
        own[frames[-1]] += int(samples)
        for frame in set(frames):
            inclusive[frame] += int(samples)
    if not total:
        return ["(no samples)"]
    lines = [f"{total} samples of the serve process's busy threads (py-spy, 200 Hz, idle threads left out; "
             f"{start_up} more in start-up imports, not counted)", "",
             "inclusive (dicomcloak and pynetdicom functions, the command line's frames left out):"]
    ours = [(f, c) for f, c in inclusive.most_common()
            if ("dicomcloak/" in f or "pynetdicom/" in f) and "dicomcloak/cli/" not in f]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in ours[:top]]
    lines += ["", "own time (leaf functions):"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    return lines


def _frame(frame: str) -> str:
    """``function (path/to/module.py:123)`` -> ``function (package/module.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if path else name


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--n", type=int, default=400, help="instances per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; medians are reported")
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 4, 16], help="concurrent storescu")
    parser.add_argument("--profile", action="store_true", help="one more 16-sender gateway run under py-spy")
    parser.add_argument("--nagle", action="store_true", help="leave dcmtk's Nagle algorithm on (its default)")
    parser.add_argument("--work", type=Path, help="work directory (kept); a temporary one otherwise")
    parser.add_argument("--md", type=Path, help="append the Markdown section to this file")
    args = parser.parse_args()
    for tool in (STORESCU, STORESCP):
        if not Path(tool).exists():
            parser.error(f"{tool} is missing (Debian dcmtk)")
    if args.nagle:
        DCMTK_ENV.pop("TCP_NODELAY")
    began = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="bench-gateway-", dir=args.work) as tmp:
        work = Path(tmp)
        files = corpus(work, args.n)
        size = sum(path.stat().st_size for path in files) / len(files)
        configurations: list[tuple[str, bool | None]] = [
            ("direct", None), ("gateway", False), ("gateway + vault (SQLite)", True)
        ]
        rows = [Row(name, k) for name, _ in configurations for k in args.senders]
        by_key = {(r.name, r.senders): r for r in rows}
        counter = iter(range(1_000_000))
        for round_ in range(args.repeat):  # rounds: a change in the machine's load hits every configuration
            for name, vault in configurations:
                for k in args.senders:
                    run_dir = work / f"run-{next(counter)}"
                    run_dir.mkdir()
                    run = direct(run_dir, files, k) if vault is None else gateway(run_dir, files, k, vault)
                    by_key[(name, k)].runs.append(run)
                    shutil.rmtree(run_dir)
                    extra = f", end-to-end {run.end_to_end:.2f} s" if run.end_to_end else ""
                    print(f"round {round_ + 1}: {name}, {k}: {run.wall:.2f} s{extra}", file=sys.stderr)
        spots: list[str] = []
        if args.profile:
            if shutil.which("py-spy") is None:
                spots = ["(py-spy is not installed: no profile)"]
            else:
                run_dir = work / "profile"
                run_dir.mkdir()
                gateway(run_dir, files, max(args.senders), False, profile=work / "profile.txt")
                spots = hot_spots(work / "profile.txt")
    report(args, began, len(files), size, rows, spots)


def report(args: argparse.Namespace, began: dt.datetime, n: int, size: float, rows: list[Row],
           spots: list[str]) -> None:
    flags = "".join(f" --{flag}" for flag in ("profile", "nagle") if getattr(args, flag))
    command = f"bench/bench_gateway.py --n {args.n} --repeat {args.repeat}{flags}"
    ended = dt.datetime.now(dt.UTC)
    lines = [
        f"### Gateway (issue 15), {began:%Y-%m-%d %H:%M}-{ended:%H:%M} UTC (`{command}`)",
        "",
        f"{machine()}; load average at the end {os.getloadavg()[0]:.2f}. {n} uncompressed synthetic PHI "
        f"instances (mean {size / 1024:,.0f} KiB), distinct SOP Instance UIDs; K dcmtk `storescu` at once, "
        f"each sending N/K on one association; median of {args.repeat} runs (in rounds). First hop: "
        "instances/s from starting the senders to the last one's exit. End-to-end: until the destination "
        "`storescp` holds all N. Latency: per C-STORE, from the senders' own timestamped logs. Gateway: "
        "`dicomcloak serve`, deidentify route, Basic profile, pixels off, default limits (workers = CPUs). "
        + ("dcmtk with its default (Nagle on)." if args.nagle else "dcmtk with `TCP_NODELAY=1`."),
        "",
        table(rows, n),
    ]
    if spots:
        lines += ["", "Where the time goes (16 senders, one run under `py-spy record`):", "", "```", *spots]
        lines.append("```")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        with args.md.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()

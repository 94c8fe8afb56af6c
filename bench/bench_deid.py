#!/usr/bin/env python3
"""Throughput and correctness benchmark of ``dicomcloak deid`` against a copy and a pydicom baseline.

Builds (or reuses) a synthetic PHI corpus, warms the page cache, then measures
each command as a whole process: wall time, files/s, MB/s and peak RSS (the
largest process of its tree, from ``getrusage(RUSAGE_CHILDREN)`` in a wrapper
process, so pool workers count). Each ``dicomcloak deid`` output is then
scored with the shared ``evaluate.py`` (or ``dicomcloak.testing.leakcheck``
in a clone without ``../shared``). See bench/README.md.

    python bench/bench_deid.py --n 2000 --max-big 20 [--corpus DIR] [--md docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# bench/ is on sys.path when this script runs; build_corpus and machine are imported from here by the others
from _common import (
    Row,
    baseline,
    build_corpus,
    compile_bytecode,
    dicomcloak_cmd,
    evaluate,
    machine,
    make_certificate,
    measure,
    median,
    settle,
    summarize,
    warm,
)

__all__ = ["build_corpus", "machine", "main"]

PROFILES = {"default": (), "retain-long-modified-dates": ("--option", "retain-long-modified-dates")}


def baseline_pair(src: Path, out: Path) -> int:
    """Two copies of the pydicom baseline at once: how far this machine scales two busy processes.

    Each copy is single-threaded and shares nothing with the other, so twice
    its files/s is the most any 2-process run could reach here; what the pair
    actually reaches is the machine's own limit (shared caches, memory, the
    host's other work), the yardstick for ``--jobs 2`` (docs/benchmarks.md).
    """
    copies = [subprocess.Popen([sys.executable, __file__, "_baseline", str(src), str(out / name)])
              for name in ("a", "b")]
    return max(copy.wait() for copy in copies)


@dataclass
class Spec:
    """One command to time: its name, argv, output directory and whether to score the output."""

    name: str
    cmd: list[str]
    out: Path | None = None
    score: bool = False
    keep: bool = False
    copies: int = 1  # the corpus is processed this many times (the baseline pair: twice)
    env: dict[str, str] | None = None  # added to the environment (the no-sync rows' LD_PRELOAD)


BASELINE = "pydicom read + write, no change"
PAIR = "pydicom read + write, two copies at once"


NO_SYNC = "no fsync: LD_PRELOAD, benchmark only, UNSAFE"

# fsync, fdatasync, syncfs and sync that return at once, as libeatmydata does: what durability costs,
# measured without changing dicomcloak (which has no switch to turn its syncs off, by design).
_NO_SYNC_C = """
int fsync(int fd) { (void)fd; return 0; }
int fdatasync(int fd) { (void)fd; return 0; }
int syncfs(int fd) { (void)fd; return 0; }
void sync(void) {}
"""


def no_sync_library(work: Path) -> Path | None:
    """Build the no-sync preload library with the system C compiler; None without one.

    UNSAFE outside a benchmark: a crash or power loss after such a run can
    leave outputs under their final names that were never written to disk,
    the very thing architecture.md decision 6 forbids. Only ``--no-sync``
    rows use it, and their names say so.
    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    source, library = work / "nosync.c", work / "libnosync.so"
    if not library.exists():
        source.write_text(_NO_SYNC_C)
        subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source)], check=True)
    return library


GDCMANON = "gdcmanon -e (GDCM 3, one process, PS3.15 E.1.1 with its CMS seal)"


def gdcm_certificate(work: Path) -> Path | None:
    """A self-signed certificate for ``gdcmanon -e -c`` (it seals the originals to it); None without gdcmanon.

    gdcmanon's de-identification always encrypts the replaced attributes into
    an Encrypted Attributes Sequence (PS3.15 E.1.1), so it needs a recipient
    certificate, as ``dicomcloak deid --recipient`` would (``_common.make_certificate``).
    """
    if shutil.which("gdcmanon") is None:
        return None
    path = work / "gdcmanon-cert.pem"
    return path if path.exists() else make_certificate(work)
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dicomcloak bench")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650)).sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def specs(
    files: Path, work: Path, key: Path, pixels: str | None = None, cert: Path | None = None,
    no_sync: Path | None = None,
) -> list[Spec]:
    """Every timed command, in the order of the table; ``pixels``: deid's --pixels, when given.

    ``no_sync``: the preload library of :func:`no_sync_library`; the default profile's
    rows are then timed again with it (not scored: the same outputs, never synced).
    """
    todo = [
        Spec("plain copy (`cp -r`)", ["cp", "-r", str(files), str(work / "out-cp")], work / "out-cp"),
        Spec(BASELINE,
             [sys.executable, __file__, "_baseline", str(files), str(work / "out-pydicom")],
             work / "out-pydicom"),
        Spec(PAIR, [sys.executable, __file__, "_baseline_pair", str(files), str(work / "out-pair")],
             work / "out-pair", copies=2),
    ]
    if cert is not None:
        out = work / "out-gdcmanon"
        cmd = ["gdcmanon", "-e", "-c", str(cert), "-r", "-i", str(files), "-o", str(out)]
        todo.append(Spec(GDCMANON, cmd, out))
    pixel_args = () if pixels is None else ("--pixels", pixels)
    for profile, extra in PROFILES.items():
        for jobs in (1, 2):
            out = work / f"out-{profile}-j{jobs}"
            cmd = [*dicomcloak_cmd(), "deid", str(files), "--out", str(out), "--key", str(key),
                   "--jobs", str(jobs), *extra, *pixel_args]
            keep = profile == "default" and jobs == 2
            todo.append(Spec(f"dicomcloak deid, {profile}, --jobs {jobs}", cmd, out, True, keep))
            if no_sync is not None and profile == "default":
                out = work / f"out-nosync-j{jobs}"
                cmd = [*dicomcloak_cmd(), "deid", str(files), "--out", str(out), "--key", str(key),
                       "--jobs", str(jobs), *extra, *pixel_args]
                todo.append(Spec(f"dicomcloak deid, {NO_SYNC}, --jobs {jobs}", cmd, out,
                                 env={"LD_PRELOAD": str(no_sync)}))
    return todo


def run_all(args: argparse.Namespace, corpus: Path, work: Path) -> tuple[list[Row], dict[str, Any]]:
    """Time every command ``--repeat`` times, in rounds (so drift in the machine's load hits all
    commands alike); report the median; score each dicomcloak output of the last round.

    ``--jobs 1`` and ``--jobs 2`` of a profile run back to back, so each round gives one ratio
    measured under the same conditions; the median of those is reported beside the ratio of medians.
    """
    files = corpus / "files"
    answer = json.loads((corpus / "answer_key.json").read_text())
    n = len(answer["files"])
    mbytes = warm(files) / 1e6
    print(f"corpus: {n} files, {mbytes:.0f} MB (cache warmed)", file=sys.stderr)
    compile_bytecode()
    key = work / "bench.key"
    if not key.exists():
        init = [*dicomcloak_cmd(), "keys", "init", "--out", str(key)]
        subprocess.run(init, check=True, capture_output=True)
    kept = work / "out-default-j2"
    shutil.rmtree(kept, ignore_errors=True)
    runs: dict[str, list[Row]] = {}
    for round_ in range(args.repeat):
        last = round_ == args.repeat - 1
        scratch = work / f"round-{round_}"
        shutil.rmtree(scratch, ignore_errors=True)
        settle(args.settle)
        scratch.mkdir(parents=True)
        no_sync = no_sync_library(work) if args.no_sync else None
        todo = specs(files, scratch, key, args.pixels, gdcm_certificate(work), no_sync)
        for spec in todo:
            row = measure(spec.name, spec.cmd, n * spec.copies, mbytes * spec.copies, spec.env)
            if last and spec.score and spec.out is not None:
                row.quality = summarize(evaluate(corpus, spec.out, args.validate_sample))
            runs.setdefault(spec.name, []).append(row)
            if last and spec.keep and spec.out is not None:
                spec.out.rename(kept)
        shutil.rmtree(scratch, ignore_errors=True)
    rows = [median(runs[name]) for name in runs]
    for row in rows:
        if row.name.endswith("--jobs 2"):
            singles = runs[row.name.replace("--jobs 2", "--jobs 1")]
            row.pair_ratios = [a.wall / b.wall for a, b in zip(singles, runs[row.name], strict=True)]
        elif row.name == PAIR:  # the pair does twice the files: its speed-up is 2 x one copy's time / its own
            row.pair_ratios = [2 * a.wall / b.wall for a, b in zip(runs[BASELINE], runs[PAIR], strict=True)]
    settle(args.settle)
    check = [*dicomcloak_cmd(), "verify", str(files), str(kept), "--key", str(key)]
    verify = measure("dicomcloak verify --key (leak check of the default output)", check, n, mbytes)
    return [*rows, verify], answer


def table(rows: list[Row]) -> str:
    """The Markdown table of all measurements."""
    base = next(r for r in rows if r.name == BASELINE)
    j1 = {r.name.split(",")[1].strip(): r for r in rows if r.name.endswith("--jobs 1")}
    # cores = CPU s / wall s: what the run kept busy. On N cores, --jobs 2 can be at most
    # min(2, N) / (cores of --jobs 1) times --jobs 1 (docs/benchmarks.md, "the ceiling").
    head = ("| command | files/s | MB/s | wall s (median) | runs, s | CPU s | cores | peak RSS MB | ratio "
            "| PHI leaked | UIDs | refs | pixels | validator errors added |\n" + "|---" * 14 + "|")
    lines = [head]
    for r in rows:
        ratio = ""
        if r.name.endswith("--jobs 1") or r.name == GDCMANON:
            ratio = f"{r.files_per_s / base.files_per_s:.2f}x pydicom baseline"
        elif r.name.endswith("--jobs 2") or r.name == PAIR:
            if r.name == PAIR:
                ratio = f"{r.files_per_s / base.files_per_s:.2f}x one copy (this machine's 2-process ceiling)"
            else:
                ratio = f"{r.files_per_s / j1[r.name.split(',')[1].strip()].files_per_s:.2f}x --jobs 1"
            if r.pair_ratios:
                pairs = sorted(r.pair_ratios)
                ratio += (f"; by round {' '.join(f'{x:.2f}' for x in r.pair_ratios)}, "
                          f"median {pairs[(len(pairs) - 1) // 2]:.2f}x")
        q = r.quality
        status = "" if r.code == 0 else f" (exit {r.code})"
        lines.append(
            f"| {r.name}{status} | {r.files_per_s:,.0f} | {r.mb_per_s:,.1f} | {r.wall:.1f} "
            f"| {' '.join(f'{w:.1f}' for w in r.walls) or f'{r.wall:.1f}'} | {r.cpu:.1f} "
            f"| {r.cpu / r.wall if r.wall else 0:.2f} | {r.rss_mb:,.0f} "
            f"| {ratio} | {q.get('leaks', '')} | {q.get('uids', '')} | {q.get('refs', '')} "
            f"| {q.get('pixels', '')} | {q.get('validator', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_baseline"]:
        baseline(Path(argv[1]), Path(argv[2]))
        return 0
    if argv[:1] == ["_baseline_pair"]:
        return baseline_pair(Path(argv[1]), Path(argv[2]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--max-big", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", type=Path, help="reuse (or create) the corpus in DIR")
    ap.add_argument("--work", type=Path, help="scratch directory for outputs (default: a temporary one)")
    ap.add_argument("--validate-sample", type=int, default=14)
    ap.add_argument("--repeat", type=int, default=5, help="rounds of timings; the median is reported")
    ap.add_argument("--settle", type=float, default=65.0,
                    help="seconds to wait after deleting a round's outputs (see settle())")
    ap.add_argument("--pixels", help="deid's --pixels for every dicomcloak row (default: deid's own default)")
    ap.add_argument("--no-sync", action="store_true",
                    help="also time the default profile with fsync/syncfs turned off by LD_PRELOAD (UNSAFE, "
                    "benchmark only): what durability costs")
    ap.add_argument("--md", type=Path, help="append the results to this Markdown file (docs/benchmarks.md)")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="dicomcloak-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus or work / "corpus"
    if not (corpus / "answer_key.json").exists():
        build_corpus(corpus, args.n, args.seed, args.max_big)
    rows, answer = run_all(args, corpus, work)
    date = subprocess.run(["date", "-u"], capture_output=True, text=True, check=False).stdout.strip()
    source = f"`{answer.get('generator', '?')}`, seed {answer.get('seed', '?')}"
    header = (f"### {date}\n\n{len(answer['files'])} files, {answer['total_bytes'] / 1e6:.0f} MB "
              f"({source}); {machine()}; warm cache; deid --pixels {args.pixels or '(default)'}; "
              f"load average at the end {os.getloadavg()[0]:.2f}.\n")
    report = f"{header}\n{table(rows)}\n"
    print(report)
    if args.md:
        with args.md.open("a", encoding="utf-8") as handle:
            handle.write("\n" + report)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

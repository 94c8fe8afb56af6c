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
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_EVAL = REPO.parent / "shared" / "eval"
PROFILES = {"default": (), "retain-long-modified-dates": ("--option", "retain-long-modified-dates")}

# Runs CMD in a child, then prints "<wall seconds> <peak RSS KiB> <exit code>": ru_maxrss of
# RUSAGE_CHILDREN is the largest RSS of any reaped descendant (Linux), pool workers included.
_WRAPPER = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(wall, usage.ru_maxrss, code, usage.ru_utime + usage.ru_stime)
"""


@dataclass
class Row:
    """One measured command."""

    name: str
    wall: float
    rss_mb: float
    code: int
    files: int
    mbytes: float
    quality: dict[str, Any] = field(default_factory=dict)
    walls: list[float] = field(default_factory=list)
    cpu: float = 0.0  # user + sys seconds of the whole process tree
    pair_ratios: list[float] = field(default_factory=list)  # --jobs 2 only: each round's --jobs 1 wall / this

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall

    @property
    def mb_per_s(self) -> float:
        return self.mbytes / self.wall


def measure(name: str, cmd: list[str], files: int, mbytes: float, env: dict[str, str] | None = None) -> Row:
    """Run ``cmd`` as a whole process tree and return its wall time and peak RSS.

    Dirty pages left by the previous command are flushed first (not timed):
    otherwise a command that fsyncs its outputs would also pay for writing
    back the previous command's files.
    """
    os.sync()
    environ = None if env is None else {**os.environ, **env}
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, check=True,
                          env=environ)
    wall, rss_kib, code, cpu = done.stdout.split()
    row = Row(name, float(wall), int(rss_kib) / 1024, int(code), files, mbytes, cpu=float(cpu))
    print(f"  {name}: {row.wall:.2f} s, {row.files_per_s:.0f} files/s, CPU {row.cpu:.2f} s, exit {row.code}",
          file=sys.stderr)
    return row


def baseline(src: Path, out: Path) -> None:
    """The pydicom baseline: read and write every file, changing nothing."""
    import pydicom

    for path in sorted(src.rglob("*.dcm")):
        target = out / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        pydicom.dcmread(path).save_as(target)


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


def build_corpus(corpus: Path, n: int, seed: int, max_big: int) -> None:
    """Write the corpus with the shared generator when present, else the packaged one."""
    args = ["--out", str(corpus), "--n", str(n), "--seed", str(seed), "--max-big", str(max_big)]
    if (SHARED_EVAL / "make_corpus.py").exists():
        cmd = [sys.executable, str(SHARED_EVAL / "make_corpus.py"), *args]
    else:
        cmd = [sys.executable, "-m", "dicomcloak.testing.corpus", *args]
    print(f"building corpus: {' '.join(cmd)}", file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=sys.stderr)


def warm(files: Path) -> int:
    """Read every file once (page cache), return the total bytes."""
    total = 0
    for path in files.rglob("*"):
        if path.is_file():
            total += len(path.read_bytes())
    return total


def evaluate(corpus: Path, out: Path, validate_sample: int) -> dict[str, Any]:
    """Score an output with the shared evaluate.py when present, else dicomcloak.testing.leakcheck."""
    if (SHARED_EVAL / "evaluate.py").exists():
        cmd = [sys.executable, str(SHARED_EVAL / "evaluate.py")]
    else:
        cmd = [sys.executable, "-m", "dicomcloak.testing.leakcheck"]
    cmd += ["--corpus", str(corpus), "--out", str(out), "--validate-sample", str(validate_sample)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def summarize(res: dict[str, Any]) -> dict[str, str]:
    """The five headline figures of an evaluation, as table cells."""
    st, se = res["study_uid_consistency"], res["series_uid_consistency"]
    bad_groups = sum(c[k] for c in (st, se) for k in ("split_groups", "merged_groups", "empty_uid_groups"))
    uids = "consistent" if bad_groups == 0 and res["files_with_original_uid"] == 0 else (
        f"{bad_groups} bad groups, {res['files_with_original_uid']} files with original UID")
    refs = ", ".join(f"{k} {v}" for k, v in sorted(res["refs"].items())) or "none"
    pixels = f"{res['pixels_intact']}/{res['n_corpus']} intact"
    val = res.get("validator")
    validator = f"{val['errors_introduced_total']:+d} ({val['sampled']} files)" if val else "n/a"
    leaks = f"{res['phi_leaked']} / {res['phi_entries_checked']}"
    missing = res["missing_outputs"] + res["parse_fail"]
    return {"leaks": leaks + (f", {missing} missing/unparsable" if missing else ""), "uids": uids,
            "refs": refs, "pixels": pixels, "validator": validator}


def dicomcloak_cmd() -> list[str]:
    """The installed console script (next to this interpreter), else the module entry point."""
    script = Path(sys.executable).with_name("dicomcloak")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from dicomcloak.cli.app import main; main()"]


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
    certificate, as ``dicomcloak deid --recipient`` would; made here once per
    run with ``cryptography`` (nothing downloaded).
    """
    if shutil.which("gdcmanon") is None:
        return None
    path = work / "gdcmanon-cert.pem"
    if path.exists():
        return path
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


def settle(seconds: float) -> None:
    """Let the file system forget the outputs just deleted before the next timed command.

    ext4 without a journal (this project's reference machine) skips, on every
    file creation, inodes freed in the last 60 s (``find_inode_bit`` ->
    ``recently_deleted``, ``RECENTCY_MIN``; 360 s while their inode table block
    is dirty, hence the sync first): deleting 2,000 outputs right before a timed
    run made each creation scan past them, ~20% of the next run's CPU by
    ``perf``. So each round writes into fresh directories, deletes them at its
    end, syncs, and waits.
    """
    os.sync()
    if seconds > 0:
        print(f"  (settling {seconds:.0f} s after deleting outputs)", file=sys.stderr)
        time.sleep(seconds)


def compile_bytecode() -> None:
    """Compile dicomcloak's modules to bytecode once, as ``pip install`` does for a wheel.

    An editable install compiles on first import and caches the result, unless
    ``PYTHONDONTWRITEBYTECODE`` is set (as on this project's reference machine):
    then every timed command would compile its ~90 modules from source again,
    ~0.1 s of serial start per run that no installed copy pays. The baseline's
    pydicom is already compiled in site-packages.
    """
    import compileall

    import dicomcloak

    compileall.compile_dir(str(Path(dicomcloak.__file__).parent), quiet=1)


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
    rows = [_median(runs[name]) for name in runs]
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


def _median(rows: list[Row]) -> Row:
    """The run of median wall time, with every run's wall time attached."""
    ordered = sorted(rows, key=lambda r: r.wall)
    middle = ordered[(len(ordered) - 1) // 2]
    quality = next((r.quality for r in rows if r.quality), {})
    return Row(middle.name, middle.wall, max(r.rss_mb for r in rows), max(r.code for r in rows),
               middle.files, middle.mbytes, quality, [r.wall for r in rows], middle.cpu)


def machine() -> str:
    """nproc, CPU model, RAM, Python and pydicom versions."""
    import pydicom

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kib = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal")), 0)
    return (f"{os.cpu_count()} CPUs ({cpu}), {mem_kib / 2**20:.0f} GiB RAM, "
            f"Python {platform.python_version()}, pydicom {pydicom.__version__}, "
            f"{platform.system()} {platform.release()}")


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

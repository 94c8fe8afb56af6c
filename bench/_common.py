"""What every whole-process benchmark here shares: timing a process tree, the corpus, scoring, the machine.

``bench_deid.py`` (dicomcloak against a pydicom baseline) and ``peers.py`` (dicomcloak beside other
de-identifiers) time commands the same way and score outputs with the same checker, so their tables can be
read side by side (bench/README.md, docs/benchmarks.md). Scripts import it as ``_common`` (bench/ is on
``sys.path`` when a script in it runs).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: The shared evaluation harness (shared/eval beside the repository); a worktree elsewhere names it with
#: DICOMCLOAK_SHARED_EVAL. Without it, the packaged adaptations are used (dicomcloak.testing.corpus and
#: dicomcloak.testing.leakcheck).
SHARED_EVAL = Path(os.environ.get("DICOMCLOAK_SHARED_EVAL") or REPO.parent / "shared" / "eval")

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
    failure: str = ""  # a failed command: the exception type its last stderr line names, never a value

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
    environ = None if env is None else {**os.environ, **env}  # ``env``: added to this process's environment
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, check=True,
                          env=environ)
    wall, rss_kib, code, cpu = done.stdout.split()
    row = Row(name, float(wall), int(rss_kib) / 1024, int(code), files, mbytes, cpu=float(cpu))
    if row.code != 0:
        row.failure = failure_kind(done.stderr)
    print(f"  {name}: {row.wall:.2f} s, {row.files_per_s:.0f} files/s, CPU {row.cpu:.2f} s, exit {row.code}",
          file=sys.stderr)
    return row


def failure_kind(stderr: str) -> str:
    """The exception type a failed Python command ended with (``ValueError``), else "".

    Only a name before the first colon of the last line that reads as an exception type is kept: the rest
    may quote an element value or a file name, which a table must not carry (no values in reports).
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    head = lines[-1].split(":", 1)[0] if lines else ""
    return head if re.fullmatch(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)", head) else ""


def baseline(src: Path, out: Path) -> None:
    """The pydicom baseline: read and write every file, changing nothing."""
    import pydicom

    for path in sorted(src.rglob("*.dcm")):
        target = out / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        pydicom.dcmread(path).save_as(target)


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


def median(rows: list[Row]) -> Row:
    """The run of median wall time, with every run's wall time attached."""
    ordered = sorted(rows, key=lambda r: r.wall)
    middle = ordered[(len(ordered) - 1) // 2]
    quality = next((r.quality for r in rows if r.quality), {})
    worst = max(rows, key=lambda r: r.code)
    return Row(middle.name, middle.wall, max(r.rss_mb for r in rows), worst.code, middle.files, middle.mbytes,
               quality, [r.wall for r in rows], middle.cpu, failure=worst.failure)


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


def make_certificate(folder: Path) -> Path:
    """A throw-away self-signed RSA certificate for ``gdcmanon -e`` (PEM), valid for one day.

    gdcmanon encrypts the original attributes to it (PS3.15 E.1.1 step 4); the private key is never needed
    (nothing is re-identified here) and is not written.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dicomcloak peer benchmark")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    path = folder / "gdcmanon-cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path

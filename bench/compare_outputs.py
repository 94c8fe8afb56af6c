#!/usr/bin/env python3
"""Run two installs' ``dicomcloak deid`` on the same inputs and compare their outputs byte for byte.

A speed change must not change what is written (issue 16, docs/benchmarks.md
"Speed (issue 16)"). This runs a reference install (by default the main
checkout's virtual environment) and a candidate (this checkout's) with the
same key on each input set and variant, then compares:

* the output trees: the same relative paths, each file byte-identical;
* the quarantine: the same inputs set aside, under the same names, with the
  same reason files;
* the counts of the run summary (``--json``): written, duplicates,
  quarantined, changed attributes.

Input sets: the synthetic PHI corpus (the shared ``make_corpus.py`` when
next to the repository, else ``python -m dicomcloak.testing.corpus``), and
every file of pydicom's bundled test data (``pydicom/data/test_files``; deid
quarantines those it refuses, in both installs alike). Variants: the
header-only path (``--pixels off``, default profile and
``retain-long-modified-dates``) and the pixel stage (``--pixels all-text``
on the corpus, ``auto`` on pydicom's files).

    python bench/compare_outputs.py [--reference /work/main/.venv] [--n 300 --max-big 3] [--work DIR]

Exit 0 when everything matches, 1 otherwise (the differences are listed by
relative path and count, never by content).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_EVAL = REPO.parent / "shared" / "eval"
DEFAULT_REFERENCE = REPO.parent.parent / "main" / ".venv"
_COUNTS = ("files", "written", "duplicates", "quarantined", "skipped", "changed_attributes", "bytes_out")


@dataclass(frozen=True)
class Variant:
    """One comparison: an input set and deid's options."""

    name: str
    inputs: str  # "corpus" or "pydicom"
    options: tuple[str, ...]


VARIANTS = (
    Variant("corpus, --pixels off", "corpus", ("--pixels", "off")),
    Variant("corpus, --pixels off, retain-long-modified-dates", "corpus",
            ("--pixels", "off", "--option", "retain-long-modified-dates")),
    Variant("corpus, --pixels all-text", "corpus", ("--pixels", "all-text")),
    Variant("pydicom files, --pixels off", "pydicom", ("--pixels", "off")),
    Variant("pydicom files, --pixels auto", "pydicom", ("--pixels", "auto")),
)


def pydicom_files(python: Path, dest: Path) -> Path:
    """Copy pydicom's bundled test files (as the candidate's pydicom has them) into ``dest``."""
    where = subprocess.run(
        [str(python), "-c", "import pydicom, pathlib; print(pathlib.Path(pydicom.__file__).parent)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted((Path(where) / "data" / "test_files").rglob("*")):
        if path.is_file() and path.suffix.lower() in ("", ".dcm") and path.stat().st_size < 64 << 20:
            shutil.copyfile(path, dest / path.relative_to(Path(where) / "data" / "test_files").as_posix()
                            .replace("/", "__"))
    return dest


def build_corpus(python: Path, dest: Path, n: int, max_big: int, seed: int) -> Path:
    """The synthetic PHI corpus (same generator as bench_deid.py); returns its ``files`` directory."""
    args = ["--out", str(dest), "--n", str(n), "--seed", str(seed), "--max-big", str(max_big)]
    if (SHARED_EVAL / "make_corpus.py").exists():
        cmd = [str(python), str(SHARED_EVAL / "make_corpus.py"), *args]
    else:
        cmd = [str(python), "-m", "dicomcloak.testing.corpus", *args]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return dest / "files"


def run_deid(venv: Path, inputs: Path, out: Path, key: Path, options: tuple[str, ...]) -> dict[str, int]:
    """One ``dicomcloak deid --jobs 1 --json``; its summary's counts."""
    cmd = [str(venv / "bin" / "dicomcloak"), "deid", str(inputs), "--out", str(out), "--key", str(key),
           "--jobs", "1", "--json", *options]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):  # 1: finished, some inputs quarantined
        sys.stderr.write(done.stderr[-2000:])
        raise SystemExit(f"deid failed ({done.returncode}): {' '.join(cmd[1:2])} {' '.join(options)}")
    summary = json.loads(done.stdout)
    counts = {name: int(summary.get(name, -1)) for name in _COUNTS}
    counts.update({f"reason {code}": int(n) for code, n in summary.get("reasons", {}).items()})
    counts.update({f"pixels {code}": int(n) for code, n in summary.get("pixels", {}).items()})
    return counts


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by relative path (temporary and hidden directories skipped)."""
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    }


def compare(reference: dict[str, bytes], candidate: dict[str, bytes]) -> list[str]:
    """Differences as lines: paths on one side only, paths whose bytes differ."""
    lines = [f"  only in reference: {name}" for name in sorted(set(reference) - set(candidate))]
    lines += [f"  only in candidate: {name}" for name in sorted(set(candidate) - set(reference))]
    lines += [
        f"  bytes differ: {name} ({len(reference[name])} vs {len(candidate[name])} bytes)"
        for name in sorted(set(reference) & set(candidate))
        if reference[name] != candidate[name]
    ]
    return lines


def check(variant: Variant, inputs: Path, out_dir: Path, reference: Path, candidate: Path, key: Path) -> bool:
    """Run both installs on one variant; print and return whether everything matches."""
    results = {}
    for side, venv in (("reference", reference), ("candidate", candidate)):
        out = out_dir / f"{VARIANTS.index(variant)}-{side}"
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(out.with_name(out.name + ".run"), ignore_errors=True)
        counts = run_deid(venv, inputs, out, key, variant.options)
        results[side] = (counts, tree(out), tree(out.with_name(out.name + ".run") / "quarantine"))
    ref_counts, ref_tree, ref_q = results["reference"]
    cand_counts, cand_tree, cand_q = results["candidate"]
    lines = compare(ref_tree, cand_tree) + compare(ref_q, cand_q)
    if ref_counts != cand_counts:
        lines.append(f"  counts differ: {ref_counts} vs {cand_counts}")
    status = "identical" if not lines else "DIFFERENT"
    megabytes = sum(map(len, ref_tree.values())) / 1e6
    print(f"{variant.name}: {status} ({len(ref_tree)} outputs, {megabytes:.1f} MB, "
          f"written {ref_counts['written']}, quarantined {ref_counts['quarantined']})")
    for line in lines[:40]:
        print(line)
    return not lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="the reference install's venv")
    ap.add_argument("--candidate", type=Path, default=REPO / ".venv", help="the candidate install's venv")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--max-big", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", type=Path, help="an existing corpus directory (its files/ is used)")
    ap.add_argument("--work", type=Path, help="scratch directory (kept when given)")
    ap.add_argument("--only", help="run only the variants whose name contains this text")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="compare-outputs-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        python = args.candidate / "bin" / "python"
        key = work / "key"
        if not key.exists():
            subprocess.run([str(args.candidate / "bin" / "dicomcloak"), "keys", "init", "--out", str(key)],
                           check=True, stdout=subprocess.DEVNULL)
        corpus = (args.corpus / "files" if args.corpus else
                  build_corpus(python, work / "corpus", args.n, args.max_big, args.seed))
        inputs = {"corpus": corpus, "pydicom": pydicom_files(python, work / "pydicom-files")}
        ok = True
        for variant in VARIANTS:
            if args.only and args.only not in variant.name:
                continue
            ok &= check(variant, inputs[variant.inputs], work / "out", args.reference, args.candidate, key)
        return 0 if ok else 1
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""dicomcloak beside other de-identifiers, on the same corpora in the same run: speed and correctness.

Runs, on each make_corpus corpus (``--max-big 20 0``: with and without the 20 multi-frame files), every
command below as a whole process tree (wall, files/s, MB/s, CPU, peak RSS; ``_common.measure``), in
``--repeat`` rounds (median reported), then scores every output of the last round with the shared
``evaluate.py`` (PHI leaked, UIDs, references, pixels, ``dciodvfy`` errors added on a sample):

- a pydicom read + write of every file, changing nothing (the floor of any pydicom-based tool);
- ``dicomcloak deid --jobs 1 --pixels off`` and ``--jobs 2 --pixels off`` (header de-identification only,
  as the peers do; the default ``--pixels auto`` also reads burned-in text, docs/pixels.md);
- the peers, each with its default profile, each invoked the way its documentation says, from the
  interpreter ``--peers-python`` (``bench/.peers-venv``, made by ``bench/peers.sh``): dicognito (its
  CLI), pydicom/deid (its Python API with its default recipe ``deid.dicom``), dicom-anonymizer (its
  ``anonymize`` entry point, once per directory: the CLI does not descend into sub-directories) and
  ``gdcmanon -e -c CERT`` (GDCM, the PS3.15 E.1.1 Basic Application Level Confidentiality Profile with the
  originals encrypted into the Encrypted Attributes Sequence, PS3.15 E.1.1 step 4; a throw-away
  self-signed certificate made with ``cryptography``).

A peer that is not installed is listed as such, one that fails with its exit code (and what it wrote is
scored all the same): none is dropped. Outputs are matched to inputs by the SHA-1 of their PixelData
(unique per corpus file), so peers that rename files (dicognito names them by their new SOP Instance UID)
are scored like the others. See bench/README.md and docs/benchmarks.md ("Peers (issue 16)").

    bash bench/peers.sh [--n 2000] [--max-big 20 0] [--repeat 3] [--md docs/benchmarks.md]
    python bench/peers.py --peers-python bench/.peers-venv/bin/python [...]   # the same, venv made already
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (  # bench/ is on sys.path when this script runs
    REPO,
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

PEERS_VENV = REPO / "bench" / ".peers-venv"
BASELINE = "pydicom read + write, no change"
#: What each Python peer imports and the distribution its version is read from.
PYTHON_PEERS = {"dicognito": ("dicognito", "dicognito"), "deid": ("deid", "deid"),
                "dicom-anonymizer": ("dicomanonymizer", "dicom-anonymizer")}


# --- the peers' drivers: run under --peers-python, import nothing of dicomcloak -------------------------


def run_deid(src: Path, out: Path) -> None:
    """pydicom/deid as its documentation shows (``DeidRecipe()`` is its default recipe, ``deid.dicom``).

    ``replace_identifiers(..., save=True, output_folder=DIR)`` writes each file under its base name in one
    folder and skips a name already written, so it is called once per input directory with the mirrored
    output directory: every input keeps its own output, and nothing else changes.
    """
    from deid.config import DeidRecipe  # type: ignore[import-not-found]
    from deid.dicom import get_files  # type: ignore[import-not-found]
    from deid.dicom.header import replace_identifiers  # type: ignore[import-not-found]

    recipe = DeidRecipe()
    by_dir: dict[Path, list[str]] = defaultdict(list)
    for name in get_files(str(src)):
        by_dir[Path(name).parent].append(name)
    for folder, names in sorted(by_dir.items()):
        target = out / folder.relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        replace_identifiers(dicom_files=sorted(names), deid=recipe, save=True, output_folder=str(target))


def run_dicom_anonymizer(src: Path, out: Path) -> None:
    """dicom-anonymizer's CLI path (``anonymize(IN, OUT, {}, delete_private_tags=True)``), per directory.

    ``dicom-anonymizer IN_DIR OUT_DIR`` lists ``IN_DIR`` only (no recursion), so a tree is done directory by
    directory, in one process (a process per directory would add start-up the tool does not need).
    """
    from dicomanonymizer import anonymize  # type: ignore[import-not-found]

    for folder in sorted({path.parent for path in src.rglob("*") if path.is_file()}):
        target = out / folder.relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        anonymize(str(folder), str(target), {}, True)  # the CLI's defaults: no extra rules, no private tags


DRIVERS = {"_baseline": baseline, "_deid": run_deid, "_dicom_anonymizer": run_dicom_anonymizer}


# --- what is run -------------------------------------------------------------------------------------


@dataclass
class Tool:
    """One command of the table: its name, how it is run and why it is not (when it is not)."""

    name: str
    argv: list[str]  # with the placeholders {src} {out} {key} {cert}
    note: str  # the command line as a user would type it, for the notes under the table
    missing: str = ""  # "not installed ..." when it cannot run here
    premake_out: bool = False  # gdcmanon writes into an existing directory only

    def command(self, src: Path, out: Path, key: Path, cert: Path) -> list[str]:
        values = {"src": str(src), "out": str(out), "key": str(key), "cert": str(cert)}
        return [arg.format(**values) for arg in self.argv]


def python_peer_version(python: str | None, module: str, dist: str) -> str | None:
    """The installed version of ``dist`` under ``python`` when ``module`` imports there, else None."""
    if python is None:
        return None
    probe = (f"import importlib.metadata as m, {module}; "
             f"print(m.version({dist!r}))")
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def gdcmanon() -> tuple[str, str] | None:
    """Debian's gdcmanon (libgdcm-tools) and its GDCM version, else the first on PATH, else None.

    Debian's comes first: the ``gdcm`` wheel in a virtual environment ships a gdcmanon of another version.
    """
    exe = shutil.which("gdcmanon", path="/usr/bin") or shutil.which("gdcmanon")
    if exe is None:
        return None
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    words = done.stdout.split()
    return exe, words[2] if len(words) > 2 else "?"  # "gdcmanon: gdcm 3.0.21 ..."


def tools(peers_python: str | None) -> list[Tool]:
    """Every command, in the order of the table; peers that cannot run here carry why."""
    here = str(Path(__file__).resolve())
    cloak = dicomcloak_cmd()
    todo = [Tool(BASELINE, [sys.executable, here, "_baseline", "{src}", "{out}"],
                 "pydicom `dcmread` + `save_as` of every file, one process")]
    for jobs in (1, 2):
        todo.append(Tool(f"dicomcloak deid --jobs {jobs} --pixels off",
                         [*cloak, "deid", "{src}", "--out", "{out}", "--key", "{key}", "--jobs", str(jobs),
                          "--pixels", "off"],
                         f"`dicomcloak deid SRC --out OUT --key KEY --jobs {jobs} --pixels off`"))
    versions = {name: python_peer_version(peers_python, *spec) for name, spec in PYTHON_PEERS.items()}
    py = peers_python or sys.executable
    where = f"under {peers_python}" if peers_python else "(no --peers-python)"
    peers = [
        ("dicognito", [py, "-m", "dicognito", "--output-directory", "{out}", "{src}"],
         "`python -m dicognito --output-directory OUT SRC` (the `dicognito` console script of 0.19.0 fails: "
         "`main()` is called without its argument list), default profile", False),
        ("deid", [py, here, "_deid", "{src}", "{out}"],
         "`replace_identifiers(files, deid=DeidRecipe(), save=True, output_folder=DIR)` per input directory "
         "(default recipe `deid.dicom`)", False),
        ("dicom-anonymizer", [py, here, "_dicom_anonymizer", "{src}", "{out}"],
         "`anonymize(IN_DIR, OUT_DIR, {}, True)` per directory, as `dicom-anonymizer IN_DIR OUT_DIR` does "
         "(which does not descend into sub-directories), default rules, private tags deleted", False),
    ]
    for name, argv, note, premake in peers:
        version = versions[name]
        missing = "" if version else f"not installed {where}"
        todo.append(Tool(f"{name} {version or ''}".strip(), argv, note, missing, premake))
    exe, gdcm = gdcmanon() or ("gdcmanon", "")
    todo.append(Tool(f"gdcmanon {gdcm} -e (PS3.15 mode)".replace("  ", " "),
                     [exe, "-e", "-c", "{cert}", "-r", "--continue", "-i", "{src}", "-o", "{out}"],
                     f"`{exe} -e -c CERT -r --continue -i SRC -o OUT` (OUT made first; GDCM {gdcm}), "
                     "a self-signed RSA-2048 certificate, AES-256 (its default)",
                     "" if gdcm else "not installed (Debian libgdcm-tools)", True))
    return todo


# --- running and scoring -----------------------------------------------------------------------------


@dataclass
class Corpus:
    """One corpus of the run: where it is, its size, and its label in the table."""

    path: Path
    label: str
    files: int = 0
    mbytes: float = 0.0
    answer: dict[str, Any] = field(default_factory=dict)


def prepare_corpus(args: argparse.Namespace, work: Path, max_big: int) -> Corpus:
    """Build (or reuse) the corpus with ``max_big`` multi-frame files, warm its pages, count it."""
    path = (args.corpus_dir or work) / f"corpus-n{args.n}-seed{args.seed}-big{max_big}"
    if not (path / "answer_key.json").exists():
        build_corpus(path, args.n, args.seed, max_big)
    answer = json.loads((path / "answer_key.json").read_text())
    mbytes = warm(path / "files") / 1e6
    label = f"{len(answer['files']):,} files, {mbytes:.0f} MB, {max_big} multi-frame"
    print(f"corpus {label} (cache warmed)", file=sys.stderr)
    return Corpus(path, label, len(answer["files"]), mbytes, answer)


def score(corpus: Corpus, out: Path, sample: int) -> dict[str, str]:
    """The evaluation's headline cells for one output, or why there are none."""
    if not out.exists() or not any(p.is_file() for p in out.rglob("*")):
        return {"leaks": "no output"}
    try:
        return summarize(evaluate(corpus.path, out, sample))
    except (subprocess.CalledProcessError, ValueError, KeyError) as exc:
        return {"leaks": f"evaluation failed ({type(exc).__name__})"}


def run_all(args: argparse.Namespace, corpora: list[Corpus], todo: list[Tool], work: Path,
            key: Path, cert: Path) -> dict[tuple[str, str], Row]:
    """Time every runnable tool on every corpus ``--repeat`` times, in rounds; score the last round.

    A round runs all tools on all corpora once, so drift in the machine's load hits every tool alike; its
    outputs are deleted at its end, followed by ``--settle`` (``_common.settle``).
    """
    runs: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for round_ in range(args.repeat):
        last = round_ == args.repeat - 1
        scratch = work / f"round-{round_}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        for ci, corpus in enumerate(corpora):
            for ti, tool in enumerate(todo):
                if tool.missing:
                    continue
                out = scratch / f"c{ci}-t{ti}"
                if tool.premake_out:
                    out.mkdir()
                argv = tool.command(corpus.path / "files", out, key, cert)
                row = measure(f"{corpus.label}: {tool.name}", argv, corpus.files, corpus.mbytes)
                if last:
                    row.quality = score(corpus, out, args.validate_sample)
                runs[corpus.label, tool.name].append(row)
        shutil.rmtree(scratch, ignore_errors=True)
        if not last:
            settle(args.settle)
    return {k: median(v) for k, v in runs.items()}


COLUMNS = ("corpus", "tool", "files/s", "MB/s", "wall s (median)", "runs, s", "CPU s", "files per CPU s",
           "peak RSS MB", "PHI leaked", "UIDs", "refs", "pixels", "validator errors added")


def cells(corpus: Corpus, tool: Tool, row: Row | None) -> list[str]:
    """One line of the table. Files per CPU second moves less than files/s with the machine's other load."""
    if row is None:
        return [corpus.label, tool.name, *[""] * 7, tool.missing or "not run", "", "", "", ""]
    status = "" if row.code == 0 else f" (exit {row.code}{', ' + row.failure if row.failure else ''})"
    q = row.quality
    per_cpu = f"{row.files / row.cpu:,.0f}" if row.cpu else ""
    return [corpus.label, tool.name + status, f"{row.files_per_s:,.0f}", f"{row.mb_per_s:,.1f}",
            f"{row.wall:.1f}", " ".join(f"{w:.1f}" for w in row.walls), f"{row.cpu:.1f}", per_cpu,
            f"{row.rss_mb:,.0f}", *(q.get(k, "") for k in ("leaks", "uids", "refs", "pixels", "validator"))]


def table(corpora: list[Corpus], todo: list[Tool], rows: dict[tuple[str, str], Row]) -> str:
    """One Markdown table: every tool on every corpus, the missing ones included."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
    for corpus in corpora:
        lines += ["| " + " | ".join(cells(corpus, t, rows.get((corpus.label, t.name)))) + " |" for t in todo]
    return "\n".join(lines)


def notes(todo: list[Tool], args: argparse.Namespace, load: tuple[str, str]) -> str:
    """How each tool was invoked, and the run's conditions."""
    lines = [f"- {tool.name}: {tool.note}" + (f" ({tool.missing})" if tool.missing else "") for tool in todo]
    lines.append(f"- {args.repeat} round(s), median reported; every output of the last round scored with "
                 f"`evaluate.py` (`dciodvfy` on a sample of up to {args.validate_sample} files, by kind); "
                 f"CPU s: user + sys of the whole process tree; peak RSS: its largest process")
    lines.append(f"- load (`uptime`): at start {load[0]}; at end {load[1]}")
    return "\n".join(lines)


def uptime() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` shows them."""
    return "load average " + ", ".join(Path("/proc/loadavg").read_text().split()[:3])


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="files per corpus")
    ap.add_argument("--max-big", type=int, nargs="+", default=[20, 0],
                    help="one corpus per value: how many 5-20 MB multi-frame files it has")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus-dir", type=Path, help="reuse (or build) the corpora in DIR")
    ap.add_argument("--work", type=Path, help="scratch directory (default: a temporary one, removed)")
    ap.add_argument("--peers-python", help=f"the interpreter the peers are installed under (default: "
                    f"{PEERS_VENV.relative_to(REPO)}/bin/python when present)")
    ap.add_argument("--validate-sample", type=int, default=14)
    ap.add_argument("--repeat", type=int, default=3, help="rounds of timings; the median is reported")
    ap.add_argument("--settle", type=float, default=65.0,
                    help="seconds to wait after deleting a round's outputs (_common.settle)")
    ap.add_argument("--md", type=Path, help="append the results to this Markdown file (docs/benchmarks.md)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    if args.peers_python is None and (PEERS_VENV / "bin" / "python").exists():
        args.peers_python = str(PEERS_VENV / "bin" / "python")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in DRIVERS:
        DRIVERS[argv[0]](Path(argv[1]), Path(argv[2]))
        return 0
    args = parse(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="dicomcloak-peers-"))
    work.mkdir(parents=True, exist_ok=True)
    load_start = uptime()
    started = datetime.datetime.now(datetime.UTC)
    corpora = [prepare_corpus(args, work, big) for big in args.max_big]
    compile_bytecode()
    key = work / "bench.key"
    if not key.exists():
        init = [*dicomcloak_cmd(), "keys", "init", "--out", str(key)]
        subprocess.run(init, check=True, capture_output=True)
    cert = make_certificate(work)
    todo = tools(args.peers_python)
    for tool in todo:
        if tool.missing:
            print(f"  {tool.name}: {tool.missing}", file=sys.stderr)
    rows = run_all(args, corpora, todo, work, key, cert)
    ended = datetime.datetime.now(datetime.UTC)
    header = (f"### {started:%Y-%m-%d %H:%M}-{ended:%H:%M} UTC (`bench/peers.py --n {args.n} --max-big "
              f"{' '.join(map(str, args.max_big))} --repeat {args.repeat}`)\n\n"
              f"Corpora: `make_corpus.py` seed {args.seed}; {'; '.join(c.label for c in corpora)}. "
              f"{machine()}; warm cache.\n")
    report = f"{header}\n{table(corpora, todo, rows)}\n\n{notes(todo, args, (load_start, uptime()))}\n"
    print(report)
    if args.json:
        data = [{"corpus": c, "tool": t, "files": r.files, "mbytes": r.mbytes, "files_per_s": r.files_per_s,
                 "mb_per_s": r.mb_per_s, "wall": r.wall, "walls": r.walls, "cpu": r.cpu, "rss_mb": r.rss_mb,
                 "exit": r.code, "failure": r.failure, **r.quality}
                for (c, t), r in rows.items()]
        missing = [{"tool": t.name, "missing": t.missing} for t in todo if t.missing]
        args.json.write_text(json.dumps({"rows": data, "missing": missing}, indent=1))
    if args.md:
        with args.md.open("a", encoding="utf-8") as handle:
            handle.write("\n" + report)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

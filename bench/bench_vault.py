#!/usr/bin/env python3
"""Vault throughput: records/s sealed and opened on SQLite and PostgreSQL, against plain de-identification.

Builds a synthetic PHI corpus (``dicomcloak.testing.corpus``), de-identifies
every file in this process (read, de-identify, encode: the per-file work of
``deid --jobs 1`` without the disk write) as the baseline, then seals one
vault record per file, in groups as the batch commit thread does
(``Vault.seal_records``), with a realistic payload (the original header
without Pixel Data) and the file's UID/ID pairs, and opens every record again
with a fresh ``Vault`` (no cached keys; each open is an audited transaction).
SQLite is a WAL file in a temporary directory; PostgreSQL is a throw-away
server from the installed binaries (``dicomcloak.testing.postgres``), skipped
when absent. Overhead = seal seconds per record / baseline seconds per file.

    python bench/bench_vault.py [--n 500] [--group 64] [--rounds 3] [--md docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pydicom

from dicomcloak import Deidentifier, Outcome
from dicomcloak.io.encode import encode_dataset, encode_file
from dicomcloak.keys import Keyring, ProjectKey
from dicomcloak.policy import build_policy
from dicomcloak.testing.corpus import build_corpus
from dicomcloak.testing.postgres import find_binaries, postgres_server
from dicomcloak.vault import Vault, VaultRecord

_PAIRS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientID", "AccessionNumber")


def deidentify_all(files: list[Path], deid: Deidentifier) -> tuple[float, list[VaultRecord]]:
    """Baseline seconds for read + de-identify + encode of every file, and one record per file."""
    records = []
    start = time.perf_counter()
    for path in files:
        original = pydicom.dcmread(path)
        outcome = deid.deidentify(original)
        encode_file(outcome.dataset)
        records.append((original, outcome))
    seconds = time.perf_counter() - start
    return seconds, [_record(original, outcome) for original, outcome in records]


def _record(original: pydicom.Dataset, outcome: Outcome) -> VaultRecord:
    ds = outcome.dataset
    header = pydicom.Dataset(original)
    if "PixelData" in header:
        del header.PixelData
    pairs = tuple((str(ds.get(k, "")), str(original.get(k, ""))) for k in _PAIRS if ds.get(k, ""))
    payload = encode_dataset(header, False, True)
    return VaultRecord(outcome.patient_pseudonym, ds.StudyInstanceUID, ds.SOPInstanceUID, payload, pairs)


def measure(
    url_factory: Callable[[], str], ring: Keyring, records: list[VaultRecord], group: int
) -> tuple[float, float]:
    """Seconds to seal all records (groups of ``group``) and to open them all, on a fresh database."""
    url = url_factory()
    vault = Vault.open(url, ring)
    start = time.perf_counter()
    for i in range(0, len(records), group):
        vault.seal_records(records[i : i + group])
    seal = time.perf_counter() - start
    vault.close()
    vault = Vault.open(url, ring)
    start = time.perf_counter()
    for record in records:
        vault.open_record(record.study, record.instance)
    opened = time.perf_counter() - start
    vault.close()
    return seal, opened


@contextmanager
def sqlite_urls(work: Path) -> Iterator[Callable[[], str]]:
    counter = iter(range(1_000_000))
    yield lambda: f"sqlite:///{work / f'vault{next(counter)}.db'}"


@contextmanager
def postgres_urls() -> Iterator[Callable[[], str]]:
    with postgres_server() as server:
        yield server.create_database


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--n", type=int, default=500, help="corpus files (= records)")
    parser.add_argument("--group", type=int, default=64, help="records per seal_records call")
    parser.add_argument("--rounds", type=int, default=3, help="repeats; medians are reported")
    parser.add_argument("--md", type=Path, help="append the Markdown table to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-vault-") as tmp:
        work = Path(tmp)
        corpus = build_corpus(work / "corpus", args.n, seed=1, max_big=0)
        files = sorted((corpus / "files").rglob("*.dcm"))
        for path in files:
            path.read_bytes()  # warm cache
        ring = Keyring.create(ProjectKey.generate())
        deid = Deidentifier(build_policy([]), ring.project)
        baselines: list[float] = []
        records: list[VaultRecord] = []
        with ExitStack() as stack:
            makers = {"SQLite (WAL file)": stack.enter_context(sqlite_urls(work))}
            if find_binaries() is not None:
                makers["PostgreSQL (unix socket, pg8000)"] = stack.enter_context(postgres_urls())
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in makers}
            for _ in range(args.rounds):
                seconds, records = deidentify_all(files, deid)
                baselines.append(seconds)
                for name, maker in makers.items():
                    results[name].append(measure(maker, ring, records, args.group))
        report(args, len(files), statistics.median(baselines), results, records)


def report(args: argparse.Namespace, n: int, baseline: float, results: dict[str, list[tuple[float, float]]],
           records: list[VaultRecord]) -> None:
    payload = statistics.mean(len(r.payload) for r in records)
    lines = [
        f"### Vault sealing, issue 4 (`bench/bench_vault.py --n {args.n} --group {args.group}`), "
        f"{dt.date.today().isoformat()}",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%a %b %d %H:%M:%S UTC %Y}; {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"{n} corpus files, mean payload {payload:,.0f} bytes, {args.group} records per `seal_records`, "
        f"median of {args.rounds} rounds.",
        "",
        "| what | files or records/s | ms each | overhead vs plain de-identification |",
        "|---|---|---|---|",
        f"| plain de-identification in one process (read + deidentify + encode) | {n / baseline:,.0f} | "
        f"{1000 * baseline / n:.2f} | baseline |",
    ]
    for name, runs in results.items():
        if not runs:
            continue
        seal = statistics.median(r[0] for r in runs)
        opened = statistics.median(r[1] for r in runs)
        overhead = f"{100 * seal / baseline:.1f}%"
        lines.append(f"| {name}: seal | {n / seal:,.0f} | {1000 * seal / n:.3f} | {overhead} |")
        opening = f"{n / opened:,.0f} | {1000 * opened / n:.3f}"
        lines.append(f"| {name}: open (fresh vault, audited) | {opening} | |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        with args.md.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()

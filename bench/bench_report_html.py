"""What ``report.html`` costs a run (issue 16, docs/reports.md): first render (Jinja2 import and template
compile), a warm render, and a large run's counting, report and page.

Run it as ``.venv/bin/python bench/bench_report_html.py [--inputs 100000]``. Each figure is the best of
``--repeat`` runs in a fresh interpreter for the cold start, in this process for the rest.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

_COLD = """
import time
from dicomcloak.batch.run import run_batch  # what a run has imported when it renders
t0 = time.perf_counter()
from dicomcloak.batch.htmlreport import render_run_report
render_run_report({"schema": "dicomcloak/report/2", "summary": {"command": "deid"}})
print(time.perf_counter() - t0)
"""


def cold_ms(repeat: int) -> float:
    """The first render in a fresh interpreter: Jinja2's import, the templates' compile, the render."""
    command = [sys.executable, "-c", _COLD]
    runs = []
    for _ in range(repeat):
        runs.append(float(subprocess.run(command, capture_output=True, text=True, check=True).stdout))
    return 1000 * min(runs)


def large_document(inputs: int) -> tuple[dict[str, Any], float]:
    """A run of ``inputs`` results counted by the real ReportBuilder (5 % not written, 300 tag paths)."""
    from dicomcloak.batch.report import ReportBuilder
    from dicomcloak.batch.worker import FileResult, Status

    builder = ReportBuilder(())
    reasons = ("not-dicom", "truncated", "pixel-phi-remains", "uid-conflict", "too-many-elements")
    changes = tuple((((0x00100010 + i,), "X", "table:basic"), 1) for i in range(300))
    started = time.perf_counter()
    for index in range(inputs):
        if index % 20 == 0:
            code = reasons[(index // 20) % len(reasons)]
            builder.add(FileResult(index, Status.QUARANTINED, code, modality="CT",
                                   conflict_with=index - 1 if code == "uid-conflict" else -1))
        else:
            builder.add(FileResult(index, Status.WRITTEN, modality=("CT", "MR", "US", "CR")[index % 4],
                                   changes=changes if index % 1000 == 0 else ()))
    document = builder.report(builder.summary(60.0, {"command": "deid"}))
    return document, time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    """Print the figures as a Markdown table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from dicomcloak.batch.htmlreport import render_run_report

    cold = cold_ms(args.repeat)
    document, counting = large_document(args.inputs)
    render_run_report(document)  # warm: imported and compiled
    timings, page = [], ""
    for _ in range(args.repeat):
        started = time.perf_counter()
        page = render_run_report(document)
        timings.append(time.perf_counter() - started)
    size = len(json.dumps(document))
    print("| figure | value |\n|---|---|")
    print(f"| first render in a fresh process (import Jinja2, compile, render) | {cold:.0f} ms |")
    print(f"| {args.inputs:,} inputs: counting and report.json document | {1000 * counting:.0f} ms |")
    print(f"| {args.inputs:,} inputs: render report.html (warm) | {1000 * min(timings):.0f} ms |")
    print(f"| page / report.json size | {len(page) / 1e3:.0f} kB / {size / 1e6:.2f} MB |")


if __name__ == "__main__":
    main()

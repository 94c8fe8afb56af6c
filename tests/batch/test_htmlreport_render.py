"""``report.html`` from real ``report.json`` documents, without a browser: what each kind of run shows.

A real in-process run gives the document; the cases a run rarely produces
(a stopped run, a code of a newer version, facts another feature adds) are
that document with the field a real run would write.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dicomcloak.batch.charts import PLOT_WIDTH, bar_chart
from dicomcloak.batch.htmlreport import NO_PHI, render_run_report
from dicomcloak.batch.run import RunSettings, run_batch
from dicomcloak.batch.worker import WorkerSettings
from dicomcloak.io.inputs import iter_inputs
from dicomcloak.keys import ProjectKey
from dicomcloak.policy import build_policy
from dicomcloak.testing.corpus import build_corpus


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The report.json of a real deid run over 5 instances and a file that is not DICOM."""
    base = tmp_path_factory.mktemp("render")
    inputs = build_corpus(base / "in", 5, seed=4) / "files"
    (inputs / "notes.txt").write_bytes(b"not DICOM")
    out = base / "<b>out</b>"  # an operator's directory with markup in its name: shown, escaped
    worker = WorkerSettings(build_policy([]), ProjectKey(b"h" * 32), "default", out, base / "run" / "q")
    summary = run_batch(iter_inputs([inputs]), RunSettings(worker, base / "run"))
    loaded: dict[str, Any] = json.loads(Path(summary.run["report"]).read_text("utf-8"))
    return loaded


def test_facts_are_escaped_and_the_page_says_it_holds_no_phi(document: dict[str, Any]) -> None:
    html = render_run_report(document)
    assert "&lt;b&gt;out&lt;/b&gt;" in html and "<b>out</b>" not in html
    assert NO_PHI in html and "contains PHI" not in html and "<img" not in html
    assert "<script" not in html


def test_a_stopped_run_says_why_and_counts_what_is_not_on_disk(document: dict[str, Any]) -> None:
    stopped = copy.deepcopy(document)
    stopped["summary"]["stopped"] = {"reference": "vault-busy", "message": "the vault database is busy",
                                     "unwritten": 2, "not_processed": 3}
    html = render_run_report(stopped)
    assert 'id="stopped"' in html and "<code>vault-busy</code>" in html
    assert html.count('class="bar unwritten"') == 2  # unwritten, not processed
    assert html.count('<rect class="bar') == 6 + len(document["modalities"]) + len(
        {change["action"] for change in document["changes"]}
    )


def test_a_code_of_a_newer_version_and_a_new_fact_still_show(document: dict[str, Any]) -> None:
    newer = copy.deepcopy(document)
    newer["not_written"].append({"index": 99, "status": "quarantined", "reason": "hologram-present"})
    newer["summary"]["job"] = {"id": "j-42", "resumed": True}  # a section another feature adds
    html = render_run_report(newer)
    assert "<code>hologram-present</code>" in html and "docs/security.md" in html
    assert "job.id" in html and "j-42" in html and "job.resumed" in html


def test_bars_share_one_scale_and_zero_keeps_its_row() -> None:
    chart = bar_chart("t", [("a", 10, ""), ("b", 5, "x"), ("c", 0, "")])
    assert [bar.length for bar in chart.bars] == [PLOT_WIDTH, PLOT_WIDTH / 2, 0.0]
    assert [bar.y for bar in chart.bars] == sorted(bar.y for bar in chart.bars)
    assert chart.height > chart.bars[-1].y and bar_chart("empty", []).bars == ()

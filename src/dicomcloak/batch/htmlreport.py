"""``report.html``: the run report a privacy officer reads, built from ``report.json`` and the pixel cards.

Every ``deid`` and ``sanitize`` run writes it beside ``report.json`` in its run
folder (docs/reports.md). It extends the pixel report's template
(``run-report.html.j2`` extends ``report.html.j2``, :mod:`dicomcloak.pixels.report`),
so when the pixel stage showed images the same page holds their before/after
cards: one page per run, no separate ``pixels.html`` any more.

Its numbers are read from the ``report.json`` document itself
(:meth:`~dicomcloak.batch.report.ReportBuilder.report`), so the page and the
file never disagree; charts are laid out here (:mod:`dicomcloak.batch.charts`)
and drawn as inline SVG; there is no script, no external URL, and the page
prints. Without pixel cards the page holds no PHI, like ``report.json``: codes,
counts, indexes, tag paths and the operator's own paths. With cards, the
thumbnails show the images as they were (PHI): the page says so at its top.
It is written 0600 in the private run directory either way.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomcloak import __version__
from dicomcloak.batch.charts import BarChart, bar_chart
from dicomcloak.batch.reasons import reason
from dicomcloak.batch.report import ReportBuilder
from dicomcloak.batch.rundir import RunFolder, run_tree
from dicomcloak.io.writer import write_atomic

if TYPE_CHECKING:
    from dicomcloak.pixels.report.views import ItemView

__all__ = [
    "HTML_REPORT_NAME", "NO_PHI", "TEMPLATE", "html_report_path", "render_run_report", "run_context",
    "write_html_report",
]

#: The run report's file name in a run's folder.
HTML_REPORT_NAME = "report.html"
#: The template, beside the pixel report's (``pixels/report/templates``).
TEMPLATE = "run-report.html.j2"
#: The note at the top of a page without images.
NO_PHI = (
    "This report holds counts, reason codes, input indexes and tag paths only: no patient data, "
    "no input names."
)
#: Rows shown per long table (every row is in report.json).
MAX_ROWS = 500

#: Each action of a change (engine.outcome.Change): a short name for the chart, a meaning for the table.
_ACTIONS = {
    "X": ("removed", "removed"), "Z": ("emptied", "emptied (zero length)"),
    "D": ("dummy", "replaced by a dummy value"), "U": ("UID", "UID replaced by a keyed UID"),
    "C": ("cleaned", "cleaned (text cleaned, dates shifted)"),
    "P": ("pseudonym", "replaced by a keyed pseudonym"), "A": ("added", "added (de-identification markers)"),
}
#: Summary fields that are counts (shown in their own tables), not facts about the run.
_COUNTS = frozenset({
    "schema", "files", "written", "duplicates", "quarantined", "skipped", "changed_attributes", "bytes_in",
    "bytes_out", "seconds", "files_per_second", "reasons", "skip_reasons", "uid_conflicts", "pixels",
})
#: Facts saying what the output was made with, shown first ("Policy, options and key").
_MADE_WITH = (
    "command", "policy_sha256", "options", "domain", "layout", "key_id", "ephemeral_key",
    "uid_conflict_resolution", "pixels_mode", "pixels_sha256", "sealing",
)


def html_report_path(folder: RunFolder) -> Path:
    """``RUN_DIR/runs/<run>/report.html``."""
    return folder.path / HTML_REPORT_NAME


def write_html_report(folder: RunFolder, builder: ReportBuilder, document: Mapping[str, Any]) -> Path:
    """Render this run's page from its ``report.json`` ``document`` and pixel cards; write it, 0600.

    Written atomically in the private run tree (mode 0700 directories, 0600
    files), after ``report.json``: a failure here never costs the run its record.
    """
    cards = [card for _, card in sorted(builder.pixel_cards, key=lambda pair: pair[0])]  # input order
    path = html_report_path(folder)
    html = render_run_report(document, cards=cards, run_id=folder.run_id)
    write_atomic(path, html.encode("utf-8"), tree=run_tree(folder.run_dir))
    return path


def render_run_report(
    document: Mapping[str, Any], *, cards: Sequence[ItemView] = (), run_id: str = ""
) -> str:
    """The page for a ``report.json`` ``document``; ``cards``: the pixel stage's images (PHI)."""
    from dicomcloak.pixels.report import environment

    return environment().get_template(TEMPLATE).render(run_context(document, cards, run_id))


def run_context(
    document: Mapping[str, Any], cards: Sequence[ItemView] = (), run_id: str = ""
) -> dict[str, Any]:
    """What ``run-report.html.j2`` renders: the pixel report's values, then the run's own."""
    from dicomcloak.pixels.report import BANNER
    from dicomcloak.pixels.report.views import summarise_counts

    summary: Mapping[str, Any] = document["summary"]
    command = str(summary.get("command", "run"))
    pixel_reasons = {code: n for code, n in summary.get("reasons", {}).items() if code.startswith("pixel-")}
    return {
        "title": f"dicomcloak {command}: run report",
        "banner": BANNER if cards else NO_PHI,
        "phi": bool(cards),
        "facts": {"run": run_id, "report schema": str(document.get("schema", "")), "version": __version__},
        "summary": summarise_counts(summary.get("pixels", {}), pixel_reasons, cards),
        "items": list(cards),
        "sections": [],
        "pixels_ran": bool(summary.get("pixels")),
        "outcomes": _outcomes(summary),
        "modalities": _modalities(document.get("modalities", [])),
        "actions": _actions(document.get("changes", [])),
        "changes": document.get("changes", [])[:MAX_ROWS],
        "changes_more": max(0, len(document.get("changes", [])) - MAX_ROWS),
        "deviations": document.get("deviations"),
        "reasons": _reasons(document.get("not_written", [])),
        "conflicts": document.get("uid_conflicts", [])[:MAX_ROWS],
        "conflicts_more": max(0, len(document.get("uid_conflicts", [])) - MAX_ROWS),
        "timings": _timings(summary),
        "made_with": _facts({key: summary[key] for key in _MADE_WITH if key in summary}),
        "run_facts": _facts({k: v for k, v in summary.items() if k not in _COUNTS and k not in _MADE_WITH}),
        "stopped": summary.get("stopped"),
    }


def _outcomes(summary: Mapping[str, Any]) -> tuple[list[tuple[str, int, str]], BarChart]:
    """Every entry of the walk in one outcome row (``files`` is their sum); the chart of those rows."""
    stopped = summary.get("stopped") or {}
    rows = [
        ("written", int(summary.get("written", 0)), "written"),
        ("duplicates", int(summary.get("duplicates", 0)), "duplicate"),
        ("quarantined", int(summary.get("quarantined", 0)), "quarantined"),
        ("skipped", int(summary.get("skipped", 0)), "skipped"),
    ]
    if stopped:
        rows += [("unwritten (run stopped)", int(stopped.get("unwritten", 0)), "unwritten"),
                 ("not processed (run stopped)", int(stopped.get("not_processed", 0)), "unwritten")]
    return rows, bar_chart("inputs by outcome", rows)


def _modalities(rows: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], BarChart]:
    """The modality table (as in report.json) and a chart of inputs per modality."""
    totals = [(str(row["modality"]), sum(v for k, v in row.items() if k != "modality"), "") for row in rows]
    return list(rows), bar_chart("inputs by modality", totals)


def _actions(changes: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], BarChart]:
    """Changes per action: the attributes (tag paths) and changes of each, and the chart of changes."""
    paths: dict[str, set[str]] = defaultdict(set)
    counts: Counter[str] = Counter()
    for change in changes:
        paths[change["action"]].add(change["path"])
        counts[change["action"]] += int(change["count"])
    order = sorted(counts, key=lambda action: (-counts[action], action))  # most changes first
    names = {action: _ACTIONS.get(action, ("other", "other")) for action in order}
    rows = [
        {"action": a, "meaning": names[a][1], "attributes": len(paths[a]), "changes": counts[a]}
        for a in order
    ]
    chart = bar_chart("changes by action", [(f"{a} {names[a][0]}", counts[a], "") for a in order])
    return rows, chart


def _reasons(not_written: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Entries not written, grouped by outcome and reason code, with what the code means and what to do."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for entry in not_written:
        groups[str(entry["status"]), str(entry["reason"])].append(int(entry["index"]))
    rows = []
    for (status, code), indexes in sorted(groups.items()):
        hint = reason(code, status)
        shown = ", ".join(str(index) for index in indexes[:20]) + (" ..." if len(indexes) > 20 else "")
        rows.append({"status": status, "code": code, "count": len(indexes), "indexes": shown,
                     "meaning": hint.meaning, "action": hint.action})
    return rows


def _timings(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Time and throughput, from the summary's counts."""
    seconds = float(summary.get("seconds", 0.0))
    bytes_in, bytes_out = int(summary.get("bytes_in", 0)), int(summary.get("bytes_out", 0))
    rate = f"{bytes_in / seconds / 1e6:.1f} MB/s" if seconds > 0 else "-"
    return [
        ("wall time", f"{seconds:.2f} s"),
        ("inputs per second", f"{float(summary.get('files_per_second', 0.0)):.1f}"),
        ("read", f"{bytes_in / 1e6:.1f} MB ({rate})"),
        ("written", f"{bytes_out / 1e6:.1f} MB"),
        ("attributes changed", str(summary.get("changed_attributes", 0))),
    ]


def _facts(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Facts as (name, text) rows, nested objects flattened to dotted names; any fact a helper adds shows."""
    rows: list[tuple[str, str]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += _facts(value, f"{name}.") if value else [(name, "-")]
        else:
            rows.append((name, _text(value)))
    return rows


def _text(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(map(_text, value)) or "-"
    return str(value)

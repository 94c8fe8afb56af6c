"""The run directory's pixel report (``pixels.html``) and the run facts that name the pixel settings.

``deid`` with the pixel stage on writes, beside the run's ``report.json``,
the same page ``dicomcloak scan --report`` writes (issue 14, "seeing is
believing"): every instance counted by what the stage did, and before/after
thumbnails of up to :data:`~dicomcloak.batch.report.PIXEL_CARDS` images with
text. The thumbnails show PHI, which is why the page lives in the private run
directory (mode 0700), never in the output tree, and says so at its top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dicomcloak.batch.report import ReportBuilder
from dicomcloak.batch.rundir import RunFolder, run_tree
from dicomcloak.batch.worker import WorkerSettings
from dicomcloak.io.writer import write_atomic

__all__ = ["PIXEL_REPORT_NAME", "pixel_facts", "pixel_report_path", "write_pixel_report"]

#: The pixel report's file name in a run's folder.
PIXEL_REPORT_NAME = "pixels.html"


def _stage_on(worker: WorkerSettings) -> bool:
    return worker.deidentify and worker.pixels is not None


def pixel_facts(worker: WorkerSettings) -> dict[str, Any]:
    """``pixels_mode`` (the mode asked) and ``pixels_sha256`` (every pixel setting) of a deid run."""
    if not _stage_on(worker) or worker.pixels is None:
        return {}
    from dicomcloak.pixels.settings import settings_fingerprint

    return {"pixels_mode": worker.pixels.mode.value, "pixels_sha256": settings_fingerprint(worker.pixels)}


def pixel_report_path(folder: RunFolder, worker: WorkerSettings) -> Path | None:
    """Where this run's pixel report goes (None: the stage is off, there is none)."""
    if not _stage_on(worker) or worker.pixels is None or worker.pixels.mode.value == "off":
        return None
    return folder.path / PIXEL_REPORT_NAME


def write_pixel_report(folder: RunFolder, builder: ReportBuilder, worker: WorkerSettings) -> None:
    """Render and write the run's pixel report when the stage ran (atomically, in the private run tree)."""
    path = pixel_report_path(folder, worker)
    if path is None:
        return
    from dicomcloak.pixels.report import render_cards

    reasons = {key: count for key, count in builder.reasons.items() if key.startswith("pixel-")}
    cards = [card for _, card in sorted(builder.pixel_cards, key=lambda pair: pair[0])]  # in input order
    html = render_cards(
        cards, title="dicomcloak deid: burned-in text", statuses=builder.pixels, reasons=reasons,
        run_facts={"run": folder.run_id, "pixels": worker.pixels.mode.value if worker.pixels else "off"},
    )
    write_atomic(path, html.encode("utf-8"), tree=run_tree(folder.run_dir))

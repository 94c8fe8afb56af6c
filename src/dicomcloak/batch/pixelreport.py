"""Where a deid run's pixel cards are shown, and the run facts that name the pixel settings.

``deid`` with the pixel stage on shows what ``dicomcloak scan --report``
shows (issue 14, "seeing is believing"): every instance counted by what the
stage did, and before/after thumbnails of up to
:data:`~dicomcloak.batch.report.PIXEL_CARDS` images with text. Since issue 16
they are a section of the run's ``report.html`` (:mod:`dicomcloak.batch.htmlreport`),
not a page of their own (``pixels.html`` before): ``pixel_report`` in the
summary names that page. The thumbnails show PHI, which is why the page lives
in the private run directory (mode 0700), never in the output tree, and says
so at its top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dicomcloak.batch.htmlreport import html_report_path
from dicomcloak.batch.rundir import RunFolder
from dicomcloak.batch.worker import WorkerSettings

__all__ = ["pixel_facts", "pixel_report_path"]


def _stage_on(worker: WorkerSettings) -> bool:
    return worker.deidentify and worker.pixels is not None


def pixel_facts(worker: WorkerSettings) -> dict[str, Any]:
    """``pixels_mode`` (the mode asked) and ``pixels_sha256`` (every pixel setting) of a deid run."""
    if not _stage_on(worker) or worker.pixels is None:
        return {}
    from dicomcloak.pixels.settings import settings_fingerprint

    return {"pixels_mode": worker.pixels.mode.value, "pixels_sha256": settings_fingerprint(worker.pixels)}


def pixel_report_path(folder: RunFolder, worker: WorkerSettings) -> Path | None:
    """The page that shows this run's pixel cards, its ``report.html`` (None: the stage is off)."""
    if not _stage_on(worker) or worker.pixels is None or worker.pixels.mode.value == "off":
        return None
    return html_report_path(folder)

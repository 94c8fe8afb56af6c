"""The pixel report: one standalone HTML page showing, per image with text, what was found and redacted.

"Seeing is believing" (issue 14): for each image, a "before" thumbnail with
every text region outlined and coloured by its verdict (PHI red, other text
amber, device template blue), an "after" thumbnail, and a table of the
regions' kind, rule, frames and whether they were redacted; a summary counts
every instance by pixel status. ``scan --report`` writes it without writing
any DICOM; ``deid`` shows the same summary and cards as a section of its run
report (``report.html``, :mod:`dicomcloak.batch.htmlreport`, docs/reports.md).

The "before" thumbnails show the burned-in PHI itself, so the page says so in
a banner at its top, is written owner-only (:func:`write_report`) and belongs
in the run directory, never in the output tree. Nothing else in it is PHI: the
OCR text of a region is never passed to the template, labels are pseudonyms.

The page is built from a Jinja2 template with blocks (``report.html.j2``),
which the batch run report extends (``run-report.html.j2``, issue 16,
overriding ``banner``, ``summary``, ``summary_heading`` and ``footer``): pass
extra :class:`Section` parts to :func:`render`, or extend the template through
:func:`environment`. Jinja2 and Pillow are imported on first use only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING

from dicomcloak.pixels.report.files import write_report

if TYPE_CHECKING:
    from jinja2 import Environment

    from dicomcloak.pixels.model import PixelResult
    from dicomcloak.pixels.report.items import ReportItem, Section
    from dicomcloak.pixels.report.views import ItemView


def __getattr__(name: str) -> object:
    """``ReportItem`` and ``Section``, imported on first use: they need NumPy, which a run whose report
    has no image card (``deid --pixels off``) never imports (docs/architecture.md, "The header-only path")."""
    if name in ("ReportItem", "Section"):
        from dicomcloak.pixels.report import items

        return getattr(items, name)
    raise AttributeError(name)

__all__ = [
    "BANNER", "TEMPLATE", "ReportItem", "Section", "context", "environment", "render", "render_cards",
    "write_report",
]

#: The template :func:`render` fills; extend it by name from :func:`environment`.
TEMPLATE = "report.html.j2"
#: The warning at the top of every report (its thumbnails show PHI).
BANNER = (
    "This report shows images before de-identification: it contains PHI. "
    "Keep it in the run directory; never copy it with the output."
)


def render(
    items: Sequence[ReportItem],
    *,
    title: str,
    run_facts: Mapping[str, str] | None = None,
    sections: Sequence[Section | tuple[str, str]] = (),
    counted: Sequence[PixelResult] = (),
) -> str:
    """Render the report as one standalone HTML page (no external CSS, scripts, fonts or images).

    Parameters
    ----------
    items:
        The images to show, in order (the caller picks them: usually every
        image with text, and every quarantined one).
    title:
        The page title, e.g. ``"dicomcloak scan: pixels"``.
    run_facts:
        Facts about the run shown under the title (command, mode, date,
        version...): operator-chosen values, never PHI.
    sections:
        Extra parts after the summary, as :class:`Section` or ``(title, html)``
        with trusted HTML (see :class:`Section`).
    counted:
        Results of instances not shown (not examined, no text), so that the
        summary counts every instance of the run.
    """
    values = context(items, title=title, run_facts=run_facts, sections=sections, counted=counted)
    return environment().get_template(TEMPLATE).render(values)


def context(
    items: Sequence[ReportItem],
    *,
    title: str,
    run_facts: Mapping[str, str] | None = None,
    sections: Sequence[Section | tuple[str, str]] = (),
    counted: Sequence[PixelResult] = (),
) -> dict[str, object]:
    """The values :data:`TEMPLATE` renders (parameters as :func:`render`), for a template extending it.

    Thumbnails are made here; no value holds OCR text (see
    :mod:`dicomcloak.pixels.report.views`).
    """
    from dicomcloak.pixels.report.items import Section
    from dicomcloak.pixels.report.views import item_view, summarise

    extra = [part if isinstance(part, Section) else Section(*part) for part in sections]
    return {
        "title": title,
        "banner": BANNER,
        "facts": dict(run_facts or {}),
        "summary": summarise(items, counted),
        "items": [item_view(item) for item in items],
        "sections": [(part.title, part.html) for part in extra],
    }


def render_cards(
    views: Sequence[ItemView],
    *,
    title: str,
    statuses: Mapping[str, int],
    reasons: Mapping[str, int],
    run_facts: Mapping[str, str] | None = None,
) -> str:
    """Render a batch run's report from the cards its workers made (:func:`item_view`) and its counts.

    A batch cannot keep every image of a run in memory: each worker process
    sends the cards of a capped number of images with text, and every
    instance is counted by status (``statuses``) and quarantine reason.
    """
    from dicomcloak.pixels.report.views import summarise_counts

    values = {
        "title": title,
        "banner": BANNER,
        "facts": dict(run_facts or {}),
        "summary": summarise_counts(statuses, reasons, views),
        "items": list(views),
        "sections": [],
    }
    return environment().get_template(TEMPLATE).render(values)


@cache
def environment() -> Environment:
    """The Jinja2 environment of the report templates: autoescaping on, undefined names an error.

    A report that extends this one (``{% extends "report.html.j2" %}`` and
    overrides its blocks) loads through a :class:`jinja2.ChoiceLoader` of its
    own loader and this environment's ``loader``, and renders :func:`context`
    plus its own values.
    """
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("dicomcloak.pixels.report", "templates"), autoescape=True,
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )

"""``dicomcloak scan``: find burned-in text in images and show it in an HTML report, writing no DICOM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dicomcloak.cli._common import FollowSymlinksArg, JsonFlag, PolicyFileArg, handles_errors
from dicomcloak.cli.deid import PixelsArg, pixel_settings

__all__ = ["scan"]

#: Images shown in a scan's report at most; the rest are counted.
SCAN_CARDS = 1000


@handles_errors
def scan(
    inputs: Annotated[
        list[Path], typer.Argument(metavar="INPUT...", help="DICOM files, directories or .zip archives.")
    ],
    report: Annotated[
        Path,
        typer.Option("--report", help="Write the HTML report here (mode 0600: its thumbnails show PHI)."),
    ],
    pixels: PixelsArg = None,
    policy: PolicyFileArg = None,
    follow_symlinks: FollowSymlinksArg = False,
    as_json: JsonFlag = False,
) -> None:
    """Show, for every image with text, what deid would find and redact (docs/pixels.md); writes no DICOM."""
    from dicomcloak.batch.scan import scan as scan_inputs
    from dicomcloak.io.inputs import iter_inputs
    from dicomcloak.io.reader import ReadLimits
    from dicomcloak.pixels.report import render_cards, write_report
    from dicomcloak.pixels.stage import PixelStage

    settings = pixel_settings(policy, pixels)
    entries = iter_inputs(inputs, follow_symlinks=follow_symlinks)
    result = scan_inputs(entries, PixelStage(settings), ReadLimits(), SCAN_CARDS)
    html = render_cards(
        result.cards, title="dicomcloak scan: burned-in text", statuses=result.statuses,
        reasons=result.reasons, run_facts={"pixels": settings.mode.value, "not shown": str(result.hidden)},
    )
    write_report(report, html)
    summary = result.to_dict() | {"report": str(report)}
    typer.echo(json.dumps(summary, indent=2, sort_keys=True) if as_json else _text(summary))


def _text(summary: dict[str, object]) -> str:
    """The human summary: instances by pixel status, inputs not read, images shown, the report's path."""
    lines = [f"  {title:<14}{_counts(summary[name])}" for name, title in _ROWS]
    shown = f"{summary['shown']} image(s) with text ({summary['not_shown']} more not shown)"
    lines += [f"  shown         {shown}", f"  report        {summary['report']}"]
    return "scan\n" + "\n".join(lines)


_ROWS = (("pixels", "pixels"), ("pixel_reasons", "refused"), ("not_read", "not read"))


def _counts(counts: object) -> str:
    items = counts.items() if isinstance(counts, dict) else ()
    return ", ".join(f"{count} {name}" for name, count in items) or "none"

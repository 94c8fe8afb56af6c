"""``dicomcloak audit verify``: check the audit log's hash chain and its anchor; exit 4 if either fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dicomcloak.cli._common import JsonFlag, handles_errors, warn
from dicomcloak.cli.vault import VaultArg
from dicomcloak.errors import UsageError

if TYPE_CHECKING:
    from dicomcloak.audit.log import Head

__all__ = ["app", "verify"]

app = typer.Typer(help="Check the audit trail.", no_args_is_help=True)


@app.command("verify")
@handles_errors
def verify(
    vault: VaultArg,
    expect_head: Annotated[
        str | None,
        typer.Option("--expect-head", help="The head hash recorded earlier, nothing appended since."),
    ] = None,
    report: Annotated[
        list[Path] | None,
        typer.Option("--report", help="A run's report.json kept elsewhere: the chain must still hold it."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify every row of the audit chain and its anchored head; prints the head hash to record elsewhere.

    Exit 4: a changed, inserted or deleted row (audit-chain-broken), fewer events
    than anchored or than a --report recorded (audit-chain-truncated).
    """
    from dicomcloak.audit import AuditLog

    recorded = [_recorded_head(path) for path in report or []]
    log = AuditLog.open(vault)
    try:
        checked = log.check(expect_head, through=recorded)
        anchored = log.anchor() is not None
    finally:
        log.close()
    events, head = checked.events, checked.head
    if events and not anchored:
        warn("the audit log has no anchored head (written by an older version, or its anchor was deleted): "
             "deleted last rows are detected only with --expect-head or --report until the next event")
    if as_json:
        document = {"schema": "dicomcloak/audit-verify/1", "ok": True, "events": events, "head": head,
                    "anchored": anchored}
        print(json.dumps(document))
    else:
        print(f"audit chain ok: {events} events, head {head}")


def _recorded_head(path: Path) -> Head:
    """The audit head a run's report recorded (``summary.sealing.audit``, or ``summary.audit`` for reid)."""
    from dicomcloak.audit.log import Head

    try:
        summary = json.loads(path.read_text("utf-8"))["summary"]
        found = summary.get("audit") or summary["sealing"]["audit"]
        return Head(int(found["events"]), str(found["head"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        raise UsageError(
            f"{path} is not a run report that recorded an audit head",
            reference="report-without-audit-head",
            hint="pass the report.json of a deid run that sealed (--vault, --recipient) or of a reid run",
        ) from None

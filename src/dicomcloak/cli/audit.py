"""``dicomcloak audit verify``: check the audit log's hash chain; exit 4 if it is broken."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dicomcloak.cli._common import JsonFlag, handles_errors
from dicomcloak.cli.vault import VaultArg

__all__ = ["app", "verify"]

app = typer.Typer(help="Check the audit trail.", no_args_is_help=True)


@app.command("verify")
@handles_errors
def verify(
    vault: VaultArg,
    expect_head: Annotated[
        str | None,
        typer.Option("--expect-head", help="The head hash recorded earlier: detects deleted last rows."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify every row of the audit chain; prints the head hash to record elsewhere."""
    from dicomcloak.audit import AuditLog

    log = AuditLog.open(vault)
    try:
        head = log.verify(expect_head)
        events = log.count()
    finally:
        log.close()
    if as_json:
        print(json.dumps({"schema": "dicomcloak/audit-verify/1", "ok": True, "events": events, "head": head}))
    else:
        print(f"audit chain ok: {events} events, head {head}")

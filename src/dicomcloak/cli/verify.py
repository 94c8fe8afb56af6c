"""``dicomcloak verify``: check a de-identified tree against its original for leaks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dicomcloak.cli._common import (
    ExitCode,
    JobsArg,
    JsonFlag,
    OptionsArg,
    PolicyFileArg,
    StrictTableArg,
    handles_errors,
    load_optional_key,
    load_policy,
)

__all__ = ["verify"]


@handles_errors
def verify(
    original: Annotated[Path, typer.Argument(metavar="ORIGINAL", help="The original (identified) tree.")],
    output: Annotated[Path, typer.Argument(metavar="OUTPUT", help="The de-identified tree made from it.")],
    key: Annotated[
        Path | None, typer.Option("--key", help="Project key file (else $DICOMCLOAK_KEY_FILE).")
    ] = None,
    domain: Annotated[
        str, typer.Option("--domain", help="Pseudonym domain the output was made with.")
    ] = "default",
    option: OptionsArg = None,
    policy: PolicyFileArg = None,
    strict_table: StrictTableArg = False,
    as_json: JsonFlag = False,
    jobs: JobsArg = None,
) -> None:
    """Exit 0 when OUTPUT leaks nothing from ORIGINAL under the policy, 1 when it does (docs/verify.md)."""
    from dicomcloak.batch.run import default_jobs
    from dicomcloak.verify import verify_trees

    the_policy = load_policy(option, policy, strict_table=strict_table)
    report = verify_trees(
        original, output, the_policy, load_optional_key(key), domain, jobs=jobs or default_jobs()
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        typer.echo(report.render_text().rstrip("\n"))
    if not report.ok:
        raise typer.Exit(int(ExitCode.QUARANTINED))

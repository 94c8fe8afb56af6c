"""``dicomcloak policy``: show what the policy does to each attribute, and why."""

from __future__ import annotations

from typing import Annotated

import typer

from dicomcloak.cli._common import (
    JsonFlag,
    OptionsArg,
    PolicyFileArg,
    StrictTableArg,
    handles_errors,
    load_policy,
)

__all__ = ["app", "explain"]

app = typer.Typer(help="Inspect the de-identification policy.", no_args_is_help=True)

DeviationsFlag = Annotated[
    bool,
    typer.Option(
        "--deviations", help="List only where the policy departs from the profile with its options."
    ),
]


@app.command("explain")
@handles_errors
def explain(
    option: OptionsArg = None,
    policy: PolicyFileArg = None,
    strict_table: StrictTableArg = False,
    deviations: DeviationsFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Print the action and its source for every attribute the policy knows (or its deviations)."""
    from dicomcloak import policy as policy_module

    the_policy = load_policy(option, policy, strict_table=strict_table)
    if deviations:
        found = the_policy.deviations
        render = policy_module.render_deviations_json if as_json else policy_module.render_deviations_text
        typer.echo(render(found).rstrip("\n"))
        return
    rows = policy_module.explain(the_policy)
    text = policy_module.render_json(rows) if as_json else policy_module.render_text(rows)
    typer.echo(text.rstrip("\n"))

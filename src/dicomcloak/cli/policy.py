"""``dicomcloak policy``: show what the policy does to each attribute, and why."""

from __future__ import annotations

import typer

from dicomcloak.cli._common import JsonFlag, OptionsArg, PolicyFileArg, handles_errors, load_policy

__all__ = ["app", "explain"]

app = typer.Typer(help="Inspect the de-identification policy.", no_args_is_help=True)


@app.command("explain")
@handles_errors
def explain(option: OptionsArg = None, policy: PolicyFileArg = None, as_json: JsonFlag = False) -> None:
    """Print the action and its source for every attribute the policy knows."""
    from dicomcloak import policy as policy_module

    rows = policy_module.explain(load_policy(option, policy))
    text = policy_module.render_json(rows) if as_json else policy_module.render_text(rows)
    typer.echo(text.rstrip("\n"))

"""The ``dicomcloak`` command: a Typer app with one module per command, imported lightly."""

from __future__ import annotations

from typing import Any

import typer
from typer import _click  # typer 0.28 (pinned) vendors Click
from typer.core import TyperGroup

from dicomcloak.cli import audit, deid, gateway, job, keys, policy, reid, sanitize, scan, serve, vault, verify
from dicomcloak.cli._common import usage_errors
from dicomcloak.cli._process import exit_now, limit_library_threads

__all__ = ["app", "main"]


class _Commands(TyperGroup):
    """The root command group: Click's usage errors, at any depth, print as ``error[usage]`` (exit 2).

    Arguments are parsed in ``make_context`` (the root's) and ``invoke`` (each
    subcommand's own context is made there), so both are wrapped.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: _click.Context | None = None, **extra: Any
    ) -> _click.Context:
        """Parse the root's arguments."""
        with usage_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: _click.Context) -> Any:
        """Parse and run the subcommand."""
        with usage_errors():
            return super().invoke(ctx)


app = typer.Typer(
    name="dicomcloak",
    cls=_Commands,
    help="De-identify DICOM per PS3.15 Annex E with keyed pseudonyms.",
    no_args_is_help=True,
    add_completion=False,
    # Tracebacks with local variables could print element values (PHI): never.
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
app.command("deid")(deid.deid)
app.command("reid")(reid.reid)
app.command("verify")(verify.verify)
app.command("sanitize")(sanitize.sanitize)
app.command("scan")(scan.scan)
app.command("serve")(serve.serve)
app.add_typer(keys.app, name="keys")
app.add_typer(policy.app, name="policy")
app.add_typer(vault.app, name="vault")
app.add_typer(audit.app, name="audit")
app.add_typer(gateway.app, name="gateway")
app.add_typer(job.app, name="job")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"dicomcloak {version('dicomcloak')}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """De-identify DICOM per PS3.15 Annex E with keyed pseudonyms."""


def main() -> None:
    """Console-script entry point: run the command, then end the process at once (cli._process)."""
    limit_library_threads()
    try:
        app()
    except SystemExit as stop:
        exit_now(stop.code)
        raise
    exit_now(0)

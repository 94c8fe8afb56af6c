"""The ``dicomcloak`` command: a Typer app with one module per command, imported lightly."""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

import typer
from typer import _click  # typer 0.28 (pinned) vendors Click
from typer.core import TyperGroup

from dicomcloak.cli._common import usage_errors
from dicomcloak.cli._process import exit_now, limit_library_threads

__all__ = ["app", "main"]  # noqa: F822 - app: made on first access (module __getattr__)


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


_app = typer.Typer(
    name="dicomcloak",
    cls=_Commands,
    help="De-identify DICOM per PS3.15 Annex E with keyed pseudonyms.",
    no_args_is_help=True,
    add_completion=False,
    # Tracebacks with local variables could print element values (PHI): never.
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
#: Every command, in the order ``--help`` lists them: name -> (module, attribute, whether a sub-app).
_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "deid": ("dicomcloak.cli.deid", "deid", False),
    "reid": ("dicomcloak.cli.reid", "reid", False),
    "verify": ("dicomcloak.cli.verify", "verify", False),
    "sanitize": ("dicomcloak.cli.sanitize", "sanitize", False),
    "scan": ("dicomcloak.cli.scan", "scan", False),
    "serve": ("dicomcloak.cli.serve", "serve", False),
    "keys": ("dicomcloak.cli.keys", "app", True),
    "policy": ("dicomcloak.cli.policy", "app", True),
    "vault": ("dicomcloak.cli.vault", "app", True),
    "audit": ("dicomcloak.cli.audit", "app", True),
    "gateway": ("dicomcloak.cli.gateway", "app", True),
    "job": ("dicomcloak.cli.job", "app", True),
}
_registered: set[str] = set()


def _register(argv: list[str] | None = None) -> typer.Typer:
    """Register the command ``argv`` names (its module imported only now), or every command.

    Typer imports a command's module and turns its signature into Click
    options when the command is registered: for all eleven, 10% of a
    one-file ``deid``'s start-up (docs/benchmarks.md, "Speed (issue 16)").
    ``dicomcloak CMD ...`` needs CMD only; ``--help``, ``--version``, no
    command or an unknown one (whose error suggests the close names) get
    them all, in ``--help`` order.
    """
    wanted = next((arg for arg in argv or () if not arg.startswith("-")), None)
    for name in [wanted] if wanted in _COMMANDS else list(_COMMANDS):
        if name in _registered:
            continue
        _registered.add(name)
        module, attribute, group = _COMMANDS[name]
        target = getattr(import_module(module), attribute)
        if group:
            _app.add_typer(target, name=name)
        else:
            _app.command(name)(target)
    return _app


def __getattr__(name: str) -> typer.Typer:
    """``app``: the Typer app with every command registered (for callers other than :func:`main`)."""
    if name == "app":
        return _register()
    raise AttributeError(name)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"dicomcloak {version('dicomcloak')}")
        raise typer.Exit(0)


@_app.callback()
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
        _register(sys.argv[1:])()
    except SystemExit as stop:
        exit_now(stop.code)
        raise
    exit_now(0)

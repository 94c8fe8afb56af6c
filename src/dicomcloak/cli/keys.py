"""``dicomcloak keys``: create the project key (more key commands come later)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dicomcloak.cli._common import handles_errors

__all__ = ["app", "init"]

app = typer.Typer(help="Manage the project key.", no_args_is_help=True)


@app.command("init")
@handles_errors
def init(
    out: Annotated[Path, typer.Option("--out", help="Where to write the new key file (mode 0600).")],
) -> None:
    """Create a new project key; prints its id, never the secret. Refuses to overwrite."""
    from dicomcloak.keys import KEY_ENV, ProjectKey, write_key_file

    key = ProjectKey.generate()
    write_key_file(out, key)
    print(f"key id: {key.key_id}")
    typer.echo(
        f"wrote {out} (mode 0600). Back it up: losing it changes every pseudonym and UID.\n"
        f"Use it with --key {out} or {KEY_ENV}={out}.",
        err=True,
    )

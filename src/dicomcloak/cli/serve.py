"""``dicomcloak serve``: run the DIMSE gateway described by a ``gateway.toml`` (docs/gateway.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dicomcloak.cli._common import handles_errors, load_key

if TYPE_CHECKING:
    from dicomcloak.net.config import GatewayConfig

__all__ = ["ConfigArg", "load_gateway_config", "serve"]

ConfigArg = Annotated[Path, typer.Option("--config", help="The gateway's configuration (gateway.toml).")]


def load_gateway_config(path: Path) -> GatewayConfig:
    """Load and validate ``gateway.toml`` (:func:`dicomcloak.net.loader.load_config`)."""
    from dicomcloak.net.loader import load_config

    config: GatewayConfig = load_config(path)
    return config


@handles_errors
def serve(
    config: ConfigArg,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Load and validate the configuration, the key, the users files, JWT secrets and TLS files; "
            "print OK and exit 0 (2 on a configuration error, 3 on a key error) without listening.",
        ),
    ] = False,
) -> None:
    """Run the gateway until SIGTERM or SIGINT: listeners, spool, forwarders (docs/gateway.md).

    Prints a JSON "ready" line with the bound ports on stdout once it listens;
    logs one JSON object per event on stderr (reason codes, never values).
    """
    from dicomcloak.net import serve as service

    settings = load_gateway_config(config)
    key = load_key(settings.key_file)
    if check:
        service.check(settings, key)
        print("OK")
        return
    raise typer.Exit(service.run(settings, key))

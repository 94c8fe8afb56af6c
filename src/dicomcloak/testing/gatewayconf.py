"""The ``[gateway]`` table of a test's or benchmark's gateway.toml (docs/gateway.md, "Configuration")."""

from __future__ import annotations

from pathlib import Path

__all__ = ["gateway_table"]


def gateway_table(key: Path) -> str:
    """State under ``var/`` beside the file (spool, quarantine, audit), and the project key file."""
    return (
        '[gateway]\nspool = "var/spool"\nquarantine = "var/quarantine"\naudit = "var/audit.db"\n'
        f'key_file = "{key}"\n'
    )

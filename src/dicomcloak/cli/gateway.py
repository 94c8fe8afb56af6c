"""``dicomcloak gateway``: the running gateway's health (``status``) and its users file (``passwd``)."""

from __future__ import annotations

import getpass
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from dicomcloak.cli._common import JsonFlag, handles_errors
from dicomcloak.cli.serve import ConfigArg, load_gateway_config
from dicomcloak.errors import UsageError

__all__ = ["FRESH_SECONDS", "app", "health", "passwd", "render_status", "status"]

app = typer.Typer(help="Operate a running gateway: health and users.", no_args_is_help=True)

#: The gateway rewrites its status file every second or so; older than this, it is taken as down.
FRESH_SECONDS = 5.0
_COLUMNS = ("queued", "forwarded", "failed", "quarantined")


@app.command("status")
@handles_errors
def status(config: ConfigArg, as_json: JsonFlag = False) -> None:
    """Per-route queue depth and counts from the status file; exit 0 if the gateway is up, else 1.

    "Up" means the status file was rewritten within the last 5 seconds: use it
    as the health check (systemd, a container's HEALTHCHECK, a monitor).
    """
    settings = load_gateway_config(config)
    report, up, age = health(settings.status_file or settings.spool / "status.json")
    if as_json:
        print(json.dumps({"up": up, "age_seconds": None if age is None else round(age, 1), "status": report}))
    else:
        print(render_status(report, up, age))
    raise typer.Exit(0 if up else 1)


def health(path: Path) -> tuple[dict[str, Any] | None, bool, float | None]:
    """The status file's content, whether the gateway is up, and the file's age in seconds.

    Absent or unreadable: (None, False, None).
    """
    try:
        age = time.time() - path.stat().st_mtime
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, False, None
    return (report if isinstance(report, dict) else None), age <= FRESH_SECONDS, age


def _routes(report: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    routes = (report or {}).get("routes") or {}
    if isinstance(routes, list):
        return [(str(item.get("name", "?")), item) for item in routes if isinstance(item, dict)]
    return [(str(name), counts) for name, counts in routes.items() if isinstance(counts, dict)]


def render_status(report: dict[str, Any] | None, up: bool, age: float | None) -> str:
    """The human table: one row per route, then whether the gateway is up."""
    state = "up" if up else "DOWN"
    since = "no status file" if age is None else f"status written {age:.1f} s ago"
    lines = [f"gateway {state} ({since})", f"{'route':<20}" + "".join(f"{name:>13}" for name in _COLUMNS)]
    for name, counts in _routes(report):
        lines.append(f"{name:<20}" + "".join(f"{counts.get(column, 0)!s:>13}" for column in _COLUMNS))
    return "\n".join(lines)


@app.command("passwd")
@handles_errors
def passwd(
    users_file: Annotated[Path, typer.Argument(help="The users file (created if missing, mode 0600).")],
    username: Annotated[str, typer.Argument(help="The user to add or whose passcode to change.")],
) -> None:
    """Set a user's passcode for User Identity negotiation (PS3.7 D.3.3.7): scrypt-hashed in USERS_FILE.

    The passcode is asked twice on a terminal, or read as one line from stdin
    (automation); never from the command line, where every user of the
    machine could read it.
    """
    from dicomcloak.io.writer import write_atomic
    from dicomcloak.net.identity import hash_passcode

    _check_username(username)
    entry = f"{username}:{hash_passcode(_read_passcode())}"
    lines = users_file.read_text(encoding="utf-8").splitlines() if users_file.exists() else []
    kept = [line for line in lines if line.partition(":")[0].strip() != username]
    write_atomic(users_file, ("\n".join([*kept, entry]) + "\n").encode("utf-8"))
    users_file.chmod(0o600)
    print(f"{'changed' if len(kept) < len(lines) else 'added'} {username} in {users_file}")


def _check_username(username: str) -> None:
    """PS3.7 D.3.3.7.1: the primary field; here also a users-file key (no ``:``, no white space)."""
    if not username or len(username) > 64 or ":" in username or not username.isprintable() or " " in username:
        raise UsageError(
            "the username must be 1 to 64 printable characters without ':' or spaces",
            reference="username-invalid",
            hint="choose another username",
        )


def _read_passcode() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("passcode: ")
        if getpass.getpass("again: ") != first:
            raise UsageError(
                "the passcodes differ", reference="passcode-mismatch", hint="type the same twice"
            )
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    if not first:
        raise UsageError("the passcode is empty", reference="passcode-empty", hint="give a passcode")
    return first

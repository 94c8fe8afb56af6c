"""What every command shares: exit codes, the one error-to-exit-code map, key and policy loading.

Heavy modules (pydicom, the engine, cryptography) are imported inside the
functions that need them, so ``dicomcloak --help`` stays fast.
"""

from __future__ import annotations

import functools
import gc
import os
import select
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, ParamSpec, TypeVar

import typer
from typer import _click  # typer 0.28 (pinned) vendors Click: its usage errors are these classes

from dicomcloak.errors import ConfigError, DicomcloakError, InputError, SealError, UsageError
from dicomcloak.standard.table import Option

if TYPE_CHECKING:
    from dicomcloak.keys import ProjectKey
    from dicomcloak.policy.model import Policy

__all__ = [
    "DEBUG_ENV",
    "ExitCode",
    "FollowSymlinksArg",
    "JobsArg",
    "JsonFlag",
    "OptionsArg",
    "PolicyFileArg",
    "QuarantineArg",
    "RunDirArg",
    "StrictTableArg",
    "collector_paused",
    "discard_standard_output",
    "exit_code_for",
    "fail",
    "handles_errors",
    "load_key",
    "load_optional_key",
    "load_policy",
    "output_reader_gone",
    "raise_internal_error",
    "usage_errors",
    "warn",
    "warn_deviations",
    "warn_if_exposed",
]

#: Set to show tracebacks of unexpected errors (they may contain data values).
DEBUG_ENV = "DICOMCLOAK_DEBUG"
P = ParamSpec("P")
R = TypeVar("R")


class ExitCode(IntEnum):
    """The process exit codes (README.md, "Exit codes")."""

    OK = 0
    QUARANTINED = 1  # finished, some inputs quarantined (verify: leaks found)
    USAGE = 2  # bad command line, options, paths or policy file
    FATAL = 3  # no usable key, output not writable, nothing could run
    SEAL = 4  # integrity/seal failure: tampered, missing or shredded sealed originals, wrong key
    INTERRUPTED = 130
    OUTPUT_CLOSED = 141  # the reader of standard output went away (``| head``): as if killed by SIGPIPE


#: The one place our errors become exit codes (STYLE.md habit 4). Most specific first.
_EXIT_CODES: tuple[tuple[type[DicomcloakError], ExitCode], ...] = (
    (UsageError, ExitCode.USAGE),
    (ConfigError, ExitCode.USAGE),
    (SealError, ExitCode.SEAL),
    (InputError, ExitCode.FATAL),  # an input error that escaped a run stopped it
    (DicomcloakError, ExitCode.FATAL),  # KeyError_, OutputError and anything new
)

OptionsArg = Annotated[
    list[Option] | None,
    typer.Option("--option", "-o", help="A PS3.15 option (repeatable); see 'dicomcloak policy explain'."),
]
PolicyFileArg = Annotated[
    Path | None, typer.Option("--policy", help="Site policy TOML file (overrides win over the table).")
]
StrictTableArg = Annotated[
    bool,
    typer.Option(
        "--strict-table",
        help="Follow PS3.15 Table E.1-1 exactly: without the beyond-table list (docs/policy.md).",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
RunDirArg = Annotated[
    Path | None, typer.Option("--run-dir", help="Reports and quarantine (default: OUT.run beside OUT).")
]
QuarantineArg = Annotated[
    Path | None, typer.Option("--quarantine", help="Quarantine directory (default: RUN_DIR/quarantine).")
]
FollowSymlinksArg = Annotated[
    bool,
    typer.Option(
        "--follow-symlinks",
        help="Follow symbolic links that leave an input directory (skipped by default: docs/security.md).",
    ),
]
JobsArg = Annotated[
    int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes (default: all cores).")
]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch command builds its long-lived state.

    Start-up imports pydicom and the engine and builds the standard's tables
    and the policy: tens of thousands of objects that live until the process
    ends. Every automatic collection in that phase traverses them all again
    and finds next to nothing (a few hundred objects), in the serial part of a
    run that no ``--jobs`` can shorten (docs/benchmarks.md). The batch then
    collects once and freezes what is alive (``gc.freeze``,
    :mod:`dicomcloak.batch.run`) before the work starts. The collector's
    previous state is restored on leaving, also after an error.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def exit_code_for(error: DicomcloakError) -> ExitCode:
    """Map one of our errors to the process exit code."""
    return next(code for kind, code in _EXIT_CODES if isinstance(error, kind))


def warn(message: str) -> None:
    """Print a warning on stderr."""
    print(f"warning: {message}", file=sys.stderr)


@functools.cache
def warn_if_exposed(path: Path, what: str = "key file") -> None:
    """Warn once per file and process when a key file is open to its group or others; never a secret."""
    from dicomcloak.keys.keyfile import exposed_mode

    mode = exposed_mode(path)
    if mode is not None:
        warn(f"the {what} {path} can be read or changed by users other than its owner (mode {mode:04o}); "
             f"protect it: chmod 600 {path}")


def fail(error: DicomcloakError) -> NoReturn:
    """Print ``error[reference]: message`` and its hint on stderr, then exit with its code."""
    print(f"error[{error.reference}]: {error.message}", file=sys.stderr)
    if error.hint:
        print(f"  hint: {error.hint}", file=sys.stderr)
    raise typer.Exit(int(exit_code_for(error)))


@contextmanager
def usage_errors() -> Iterator[None]:
    """Print Click's usage errors (unknown option, missing argument, bad choice) as ours: one line, exit 2.

    A command group called without a command still prints its help
    (Click's ``NoArgsIsHelpError``); ``--help`` never raises.
    """
    try:
        yield
    except _click.exceptions.NoArgsIsHelpError:
        raise
    except _click.exceptions.UsageError as error:
        command = error.ctx.command_path if error.ctx is not None else "dicomcloak"
        fail(UsageError(error.format_message(), reference="usage", hint=f"see '{command} --help'"))


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so our errors print as one line and exit with their code, no traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except DicomcloakError as error:
            fail(error)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:
            if not output_reader_gone():
                raise_internal_error()
            discard_standard_output()  # what is still buffered for the reader goes nowhere
            raise typer.Exit(int(ExitCode.OUTPUT_CLOSED)) from None
        except Exception:  # noqa: BLE001 - a bug: reported by its type only (raise_internal_error)
            raise_internal_error()

    return wrapper


def raise_internal_error() -> NoReturn:
    """Report the exception being handled as a bug: its type only, its message may quote values (PHI).

    With ``DICOMCLOAK_DEBUG`` set the exception itself goes on, traceback and all.
    """
    error = sys.exc_info()[1]
    if os.environ.get(DEBUG_ENV) and error is not None:
        raise error
    fail(
        DicomcloakError(
            f"unexpected {type(error).__name__} (a bug in dicomcloak)",
            reference="internal-error",
            hint=f"rerun with {DEBUG_ENV}=1 for the traceback (it may show values) and report it",
        )
    )


def output_reader_gone() -> bool:
    """True when standard output is a pipe whose reader has gone, so every write there fails.

    The write end of such a pipe polls as an error (POLLERR): a BrokenPipeError
    from anywhere else (a socket, a worker's pipe) is not mistaken for it.
    """
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll(), no stdout, no descriptor
        return False


def discard_standard_output() -> None:
    """Point standard output at the null device, so nothing is written to the gone reader at exit.

    The recipe of Python's own documentation (:mod:`signal`, "Note on SIGPIPE").
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def load_policy(
    options: Iterable[Option] | None, policy_file: Path | None, *, strict_table: bool = False
) -> Policy:
    """Build the frozen Policy from ``--option``, ``--policy`` and ``--strict-table`` once, at the edge."""
    from dicomcloak.policy import build_policy

    return build_policy(list(options or ()), policy_file, strict_table=strict_table)


def warn_deviations(policy: Policy) -> None:
    """One warning, before any work, when the site policy keeps or weakens what the profile would change.

    It names how many attributes and where they are listed; nothing is
    printed for a policy that applies the profile (docs/policy.md, "Deviations").
    """
    weakening = policy.weakening
    if weakening:
        warn(
            f"the site policy keeps or weakens {len(weakening)} attribute(s) that the PS3.15 profile "
            "would change: outputs are not marked Patient Identity Removed YES; see "
            "'dicomcloak policy explain --deviations' and report.json"
        )


def load_optional_key(key_file: Path | None) -> ProjectKey | None:
    """The key from ``--key``, else from ``DICOMCLOAK_KEY_FILE``, else None."""
    from dicomcloak.keys import load_key_file, resolve_key_path

    path = resolve_key_path(key_file, os.environ)
    if path is None:
        return None
    key = load_key_file(path)
    warn_if_exposed(path.resolve())
    return key


def load_key(key_file: Path | None, *, ephemeral: bool = False) -> ProjectKey:
    """Resolve ``--key`` over ``DICOMCLOAK_KEY_FILE``; a fresh in-memory key if ``ephemeral``."""
    from dicomcloak.errors import KeyError_
    from dicomcloak.keys import KEY_ENV, ProjectKey

    if ephemeral:
        if key_file is not None:
            raise UsageError(
                "--key and --ephemeral-key exclude each other",
                reference="key-conflict",
                hint="drop one of them",
            )
        warn("using an ephemeral key: pseudonyms and UIDs will not be linkable with any other run")
        return ProjectKey.generate(ephemeral=True)
    key = load_optional_key(key_file)
    if key is None:
        raise KeyError_(
            "no project key: pass --key FILE or set " + KEY_ENV,
            reference="key-required",
            hint="create one with 'dicomcloak keys init --out FILE' (and back it up), "
            "or use --ephemeral-key for a throwaway run",
        )
    return key

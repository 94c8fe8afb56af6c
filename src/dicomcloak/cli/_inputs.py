"""The inputs of ``deid`` and ``sanitize``: INPUT... arguments and ``--from-list FILE`` (docs/inputs.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dicomcloak.errors import UsageError

__all__ = ["FromListArg", "InputsArg", "gather_inputs"]

InputsArg = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="[INPUT]...",
        help="DICOM files, directories (a CD's DICOMDIR is recognised), .zip or .tar(.gz, .bz2, .xz) "
        "archives.",
        show_default=False,
    ),
]
FromListArg = Annotated[
    Path | None,
    typer.Option(
        "--from-list",
        metavar="FILE",
        help="Also process the inputs listed in FILE, one path a line (UTF-8; blank lines and lines starting "
        "with # ignored; - reads standard input).",
    ),
]

#: What a layout check refuses, said without the path (a listed path may hold a patient's name).
_REFUSED = {
    "output-inside-input": "the output is inside this input",
    "input-inside-output": "this input is inside the output",
    "run-dir-inside-input": "the run directory or the quarantine is inside this input",
}


def gather_inputs(
    arguments: list[Path] | None, from_list: Path | None, out: Path, run: Path, quarantine: Path,
    command: str = "deid",
) -> list[Path]:
    """The arguments, then the listed paths; all checked against the output layout (cli.deid.check_paths).

    Raises
    ------
    UsageError
        ``usage`` when there is no input at all (as a missing argument is,
        for ``command``); a listed path's errors name its line, never the path.
    """
    from dicomcloak.cli.deid import check_paths
    from dicomcloak.io.pathlist import read_path_list

    paths = list(arguments or [])
    listed = read_path_list(from_list) if from_list is not None else []
    if not paths and not listed:
        raise UsageError("Missing argument 'INPUT...' (or --from-list FILE).",
                         hint=f"see 'dicomcloak {command} --help'")
    check_paths([path.resolve() for path in paths], out, run, quarantine)
    for number, path in listed:
        try:
            check_paths([path.resolve()], out, run, quarantine)
        except UsageError as error:
            what = _REFUSED.get(error.reference, "this input is refused")
            raise UsageError(f"line {number} of --from-list: {what}", reference=error.reference,
                             hint=error.hint) from None
    return [*paths, *(path for _, path in listed)]

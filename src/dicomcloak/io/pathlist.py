"""``--from-list FILE``: the inputs of a command read from a file (or standard input), one path a line.

Hospital exports arrive as lists (a PACS query's result, a research
selection) far longer than a command line holds (``ARG_MAX``). The list is
UTF-8, one path a line; blank lines and lines starting with ``#`` are
ignored; ``-`` reads standard input. A relative path is taken from the
current directory, as on the command line. Every path is checked as a
command-line argument is (it exists; a regular file or a directory, never a
FIFO or a device), before any work starts; an error names the line number,
never the path, which may hold a patient's name (architecture.md decision 7).
"""

from __future__ import annotations

import sys
from pathlib import Path

from dicomcloak.errors import UsageError
from dicomcloak.io.inputs import _check_argument

__all__ = ["Listed", "read_path_list"]

#: A listed input and the line it is on (1-based), for errors that must not show the path.
Listed = tuple[int, Path]


def read_path_list(source: Path) -> list[Listed]:
    """The paths listed in ``source`` (``-``: standard input), each checked like a command-line argument.

    Raises
    ------
    UsageError
        ``input-list-unreadable``: the list cannot be read or is not UTF-8;
        ``input-missing`` or ``input-not-regular`` for a listed path, naming
        its line.
    """
    listed = [(number, Path(line)) for number, line in _lines(_read(source))]
    for number, path in listed:
        _check_argument(path, f"line {number}: input")
    return listed


def _read(source: Path) -> bytes:
    try:
        if str(source) == "-":
            return sys.stdin.buffer.read()
        return source.read_bytes()
    except OSError as error:
        raise UsageError(
            f"cannot read the --from-list file: {error.strerror or type(error).__name__}",
            reference="input-list-unreadable",
            hint="give a readable file, or - for standard input",
        ) from None


def _lines(data: bytes) -> list[tuple[int, str]]:
    """(line number, path) for every line that names a path: not blank, not a ``#`` comment."""
    found = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.removesuffix(b"\r").decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(
                f"line {number} of the --from-list file is not UTF-8",
                reference="input-list-unreadable",
                hint="write the list in UTF-8, one path a line",
            ) from None
        if line.strip() and not line.lstrip().startswith("#"):
            found.append((number, line))
    return found

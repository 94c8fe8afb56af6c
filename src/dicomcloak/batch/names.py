"""Output errors that never name an input: a failed path inside the quarantine or a mirrored output is hidden.

Quarantined originals and mirrored outputs keep their inputs' relative paths,
and input folder and file names often carry patient names and IDs
(architecture.md decision 7).
"""

from __future__ import annotations

from pathlib import Path

from dicomcloak.errors import OutputError

__all__ = ["without_input_names"]


def without_input_names(error: OutputError, quarantine_dir: Path, mirrored_out: Path | None) -> OutputError:
    """``error``, naming only the quarantine or output directory when the failed path is an input's name.

    Quarantined originals and mirrored outputs (``--layout mirror``, ``sanitize``,
    ``reid``; ``mirrored_out``, None when outputs are named by pseudonyms) keep
    their inputs' relative paths, and input folder and file names often carry
    patient names and IDs: an error message is no place for them.
    """
    path = error.path
    if path is not None and path.is_relative_to(quarantine_dir):
        return _hidden(error, "quarantine", quarantine_dir)
    if path is not None and mirrored_out is not None and path.is_relative_to(mirrored_out):
        return _hidden(error, "output", mirrored_out)
    return error


def _hidden(error: OutputError, what: str, root: Path) -> OutputError:
    hidden = OutputError(
        f"cannot write a file in the {what} directory {root} (its path, an input's name, is not shown)",
        reference=error.reference,
        hint=error.hint,
    )
    hidden.path = error.path
    return hidden

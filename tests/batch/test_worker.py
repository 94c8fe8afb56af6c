"""The batch worker's errors: paths that are inputs' own names never reach a message.

The console-script tests (tests/cli/test_deid.py) make real writes fail; this
checks the rule for every kind of path.
"""

from __future__ import annotations

from pathlib import Path

from dicomcloak.batch.worker import without_input_names
from dicomcloak.errors import OutputError


def _unwritable(path: Path) -> OutputError:
    error = OutputError(f"cannot write {path}", hint="check free space")
    error.path = path
    return error


def test_quarantined_and_mirrored_paths_are_hidden_behind_their_directory(tmp_path: Path) -> None:
    out, qdir = tmp_path / "out", tmp_path / "q"
    quarantined = _unwritable(qdir / "in" / "Smithers_Waylon" / "img1.dcm")
    mirrored = _unwritable(out / "Smithers_Waylon" / "img1.dcm")
    for error, mirrored_out, directory in (
        (quarantined, None, qdir),
        (quarantined, out, qdir),
        (mirrored, out, out),
    ):
        hidden = without_input_names(error, qdir, mirrored_out)
        assert "Smithers" not in str(hidden) and "img1" not in str(hidden)
        assert str(directory) in hidden.message
        assert (hidden.reference, hidden.hint, hidden.path) == (error.reference, error.hint, error.path)


def test_pseudonymous_outputs_and_the_run_directory_keep_their_paths(tmp_path: Path) -> None:
    out, qdir = tmp_path / "out", tmp_path / "q"
    pseudonymous = _unwritable(out / "PP7H98DRMNAQ" / "2.25.1" / "2.25.2" / "2.25.3.dcm")
    assert without_input_names(pseudonymous, qdir, None) is pseudonymous  # pseudonyms only, and useful
    report = _unwritable(tmp_path / "out.run" / "report.json")
    assert without_input_names(report, qdir, out) is report  # a path the user chose
    pathless = OutputError("cannot write: No space left on device")
    assert without_input_names(pathless, qdir, out) is pathless

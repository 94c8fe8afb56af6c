"""Start-up: header-only runs without pydicom's pixel libraries, a command without the others' modules."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pydicom

from dicomcloak.cli._headeronly import PIXEL_LIBRARIES

# Runs the real console entry point (which ends the process with os._exit after the exit functions):
# an exit function reports which of the given modules the whole command imported.
_REPORT_AT_EXIT = """
import atexit, json, sys
LIBRARIES = {libraries!r}
atexit.register(lambda: print("LOADED=" + json.dumps(sorted(n for n in LIBRARIES if sys.modules.get(n)))))
sys.argv = ["dicomcloak", *sys.argv[1:]]
from dicomcloak.cli.app import main
main()
"""


def _run(
    *args: str | Path, cwd: Path, modules: tuple[str, ...] = PIXEL_LIBRARIES
) -> tuple[int, list[str], str]:
    code = _REPORT_AT_EXIT.format(libraries=modules)
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120,
        check=False,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("LOADED="))
    return done.returncode, json.loads(line.removeprefix("LOADED=")), done.stdout


def test_deid_pixels_off_imports_no_pixel_library(
    tmp_path: Path, key_file: Path, instance_factory: Callable[..., Path]
) -> None:
    source = instance_factory(tmp_path / "in" / "a.dcm", 0)
    code, loaded, _ = _run("deid", source.parent, "--out", tmp_path / "out", "--key", key_file,
                           "--pixels", "off", "--jobs", "1", cwd=tmp_path)
    assert code == 0
    assert loaded == []
    (output,) = (tmp_path / "out").rglob("*.dcm")
    ds = pydicom.dcmread(output)  # a real, readable output, its pixels copied as they were
    assert ds.PixelData == pydicom.dcmread(source).PixelData


def test_sanitize_imports_no_pixel_library(tmp_path: Path, instance_factory: Callable[..., Path]) -> None:
    source = instance_factory(tmp_path / "in" / "a.dcm", 0)
    code, loaded, _ = _run("sanitize", source.parent, "--out", tmp_path / "out", "--jobs", "1", cwd=tmp_path)
    assert code == 0
    assert loaded == []
    (output,) = (tmp_path / "out").rglob("*.dcm")
    assert pydicom.dcmread(output).PixelData == pydicom.dcmread(source).PixelData


def test_deid_help_imports_no_pixel_library(tmp_path: Path) -> None:
    code, loaded, out = _run("deid", "--help", cwd=tmp_path)
    assert code == 0 and "--pixels" in out
    assert loaded == []


def test_guard_blocks_only_while_pydicom_is_imported() -> None:
    """pydicom sees no NumPy; code imported later still gets it; too late once pydicom is imported."""
    code = (
        "import sys\n"
        "from dicomcloak.cli._headeronly import import_pydicom_header_only as guard\n"
        "first = guard()\n"
        "import pydicom.config\n"
        "before = 'numpy' in sys.modules\n"
        "import numpy\n"
        "print(first, before, pydicom.config.have_numpy, numpy.zeros(2).sum() == 0, guard())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False", "False", "True", "False"]


def test_pixel_runs_still_import_pydicom_with_numpy() -> None:
    """The guard is the header-only path's alone: other runs keep pydicom's pixel features."""
    code = "import sys, dicomcloak.batch.worker, pydicom.config; print(pydicom.config.have_numpy)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


_SIBLINGS = ("reid", "verify", "scan", "serve", "keys", "policy", "vault", "audit", "gateway")
_OTHER_COMMANDS = tuple(f"dicomcloak.cli.{name}" for name in _SIBLINGS)


def test_a_command_imports_no_other_command(tmp_path: Path) -> None:
    """Only the command asked for is registered (cli.app._register): its siblings are not imported."""
    code, loaded, out = _run("deid", "--help", cwd=tmp_path, modules=_OTHER_COMMANDS)
    assert code == 0 and "--pixels" in out
    assert loaded == []
    code, loaded, out = _run("--help", cwd=tmp_path, modules=_OTHER_COMMANDS)
    assert code == 0 and "gateway" in out
    assert loaded == sorted(_OTHER_COMMANDS)  # the root's help lists them all

"""Session fixtures for the acceptance tests: one synthetic corpus, keys, and real ``dicomcloak deid`` runs.

Everything here is real: the corpus is written by :mod:`dicomcloak.testing.corpus`
(so a clone without ``../shared`` runs the suite), and every output comes from
the installed console script in a subprocess. Under pytest-xdist the expensive
artefacts are built once for all workers (a lock file in the shared base
temporary directory) instead of once per worker.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from dicomcloak.keys import ProjectKey, write_key_file
from dicomcloak.testing import build_corpus

N_FILES = 120
SEED = 3
DEFAULT_OPTIONS = ("--option", "retain-long-modified-dates")


def cli_command() -> list[str]:
    """The installed console script, or the same entry point through this interpreter."""
    script = Path(sys.executable).with_name("dicomcloak")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from dicomcloak.cli.app import main; main()"]


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``dicomcloak ARGS`` with no key in the environment; never raises on exit status."""
    env = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"}
    return subprocess.run(
        [*cli_command(), *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600, check=False,
    )


@dataclass(frozen=True)
class Run:
    """One finished ``dicomcloak deid`` run."""

    out: Path
    result: subprocess.CompletedProcess[str]


class Shared:
    """Artefacts built once per test session, shared by all xdist workers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        # one lock per artefact: building one artefact may need another (flock does not nest)
        with (self.root / f".{name}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def get(self, name: str, build: Callable[[Path], None]) -> Path:
        """Return ``root/name``, building it with ``build`` unless another worker already did."""
        target = self.root / name
        with self._locked(name):
            if not (self.root / f"{name}.done").exists():
                build(target)
                (self.root / f"{name}.done").touch()
        return target

    @property
    def corpus(self) -> Path:
        """The synthetic corpus (``files/`` and ``answer_key.json``)."""
        return self.get("corpus", lambda p: _build_corpus(p))

    def key(self, name: str) -> Path:
        """A project key file written with the real key writer."""
        return self.get(name, lambda p: write_key_file(p, ProjectKey.generate()))

    def deid(self, name: str, *args: str | Path, key: str = "key-a", jobs: int = 2) -> Run:
        """The output of ``dicomcloak deid CORPUS/files --out OUT --key KEY --jobs N ARGS``."""
        key_path = self.key(key)

        def build(out: Path) -> None:
            result = run_cli(
                "deid", self.corpus / "files", "--out", out, "--key", key_path, "--jobs", str(jobs), *args
            )
            record = f"{result.returncode}\n{result.stdout}\n{result.stderr}"
            (self.root / f"{name}.result").write_text(record)

        out = self.get(name, build)
        code, _, rest = (self.root / f"{name}.result").read_text().partition("\n")
        completed = subprocess.CompletedProcess(["dicomcloak", "deid"], int(code), rest, "")
        return Run(out, completed)


def _build_corpus(target: Path) -> None:
    build_corpus(target, N_FILES, seed=SEED, max_big=1)


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    base = tmp_path_factory.getbasetemp()
    # pytest-xdist workers get sibling base directories under one per-run parent
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return Shared(root / "acceptance")


@pytest.fixture(scope="session")
def corpus(shared: Shared) -> Path:
    return shared.corpus


@pytest.fixture(scope="session")
def key_a(shared: Shared) -> Path:
    return shared.key("key-a")


@pytest.fixture(scope="session")
def default_run(shared: Shared) -> Run:
    """Default profile + Retain Longitudinal Temporal Information with Modified Dates, 2 workers.

    ``--pixels off``: these runs measure header de-identification, and the leak
    checker matches each output to its input by its pixels (the corpus's
    ultrasounds have real burned-in text, which ``auto`` redacts:
    tests/pixels/test_deid_pixels.py).
    """
    return shared.deid("out-default", *DEFAULT_OPTIONS, "--pixels", "off", jobs=2)


@pytest.fixture(scope="session")
def basic_run(shared: Shared) -> Run:
    """The plain Basic Application Level Confidentiality Profile (pixels off, as ``default_run``)."""
    return shared.deid("out-basic", "--pixels", "off", jobs=2)

"""Shared fixtures: small real DICOM trees built from pydicom's bundled test files, a key, a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

if TYPE_CHECKING:
    from dicomcloak.testing.postgres import PostgresServer

#: PHI planted in every generated file (and in its file name): it must never reach OUT or a report.
PATIENT_NAME = "Smithers^Waylon"
PATIENT_ID = "MRN-4471-XQ"

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def make_instance(
    path: Path, index: int, *, source: str = "CT_small.dcm", study_uid: str = "", side: int = 0
) -> Path:
    """Write one CT with planted PHI and fresh UIDs (a deterministic function of ``index``).

    ``side``: replace the image by a ``side`` x ``side`` one (16-bit, a ramp).
    """
    ds = dcmread(str(get_testdata_file(source)))
    if side:
        ds.Rows = ds.Columns = side
        ds.PixelData = bytes(range(256)) * (side * side * 2 // 256)
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.StudyInstanceUID = study_uid or generate_uid(entropy_srcs=["study", str(index // 4)])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series", str(index // 2)])
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["sop", str(index)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = index + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def make_tree(root: Path, n: int) -> Path:
    """``n`` instances under ``root``, named after the patient (as real exports often are).

    Every third has a 256 x 256 image (128 KiB of Pixel Data, which a batch
    worker shares with the bytes it read instead of copying; the others 32 KiB).
    """
    for index in range(n):
        path = root / "Smithers_Waylon" / f"series{index // 2}" / f"img{index:03d}.dcm"
        make_instance(path, index, side=256 if index % 3 == 2 else 0)
    return root


@pytest.fixture
def instance_factory() -> Callable[..., Path]:
    """:func:`make_instance`, for tests that build their own inputs."""
    return make_instance


@pytest.fixture
def dicom_tree(tmp_path: Path) -> Path:
    """A directory of 6 DICOM instances with planted PHI."""
    return make_tree(tmp_path / "in", 6)


@pytest.fixture
def dicom_zip(tmp_path: Path) -> Path:
    """A zip archive with 3 DICOM members (distinct from ``dicom_tree``'s instances)."""
    staging = make_tree(tmp_path / "zip-staging", 9)
    archive = tmp_path / "archive" / "export.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(staging.rglob("*.dcm"))[6:]:
            handle.write(path, path.relative_to(staging).as_posix())
    shutil.rmtree(staging)
    return archive


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A project key file written with the real key writer."""
    from dicomcloak.keys import ProjectKey, write_key_file

    path = tmp_path / "keys" / "project.key"
    write_key_file(path, ProjectKey.generate())
    return path


def _cap_address_space(limit: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _cli_command() -> list[str]:
    script = Path(sys.executable).with_name("dicomcloak")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from dicomcloak.cli.app import main; main()"]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run the real ``dicomcloak`` console script in a subprocess; no key in the environment."""

    def run(
        *args: str | Path, env: dict[str, str] | None = None, address_space: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``address_space``: cap the process's virtual memory (bytes), as ``ulimit -v`` does."""
        environ = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"}
        environ.update(env or {})
        return subprocess.run(
            [*_cli_command(), *map(str, args)],
            capture_output=True,
            text=True,
            env=environ,
            cwd=tmp_path,
            timeout=300,
            check=False,
            preexec_fn=None if address_space is None else partial(_cap_address_space, address_space),
        )

    return run


@pytest.fixture(scope="session")
def postgres_server_session() -> Iterator[PostgresServer]:
    """One throw-away PostgreSQL server per test worker (skips only if PostgreSQL is not installed)."""
    from dicomcloak.testing.postgres import find_binaries, postgres_server

    if find_binaries() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty vault database: a SQLite file, or a new database on the throw-away server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vault.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server_session")
    return server.create_database()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the fuzz tests' input counts and outcome histograms (recorded as user properties)."""
    lines = [
        value
        for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
        for name, value in getattr(report, "user_properties", [])
        if name == "fuzz"
    ]
    if lines:
        terminalreporter.section("fuzz")
        for line in lines:
            terminalreporter.line(f"fuzz: {line}")


def make_tiny_corpus(root: Path, n: int, duplicates: int = 0) -> Path:
    """``n`` tiny instances (an 8 x 8 image, a few KiB) with planted PHI; the first ``duplicates`` copied
    again under ``copies/`` (same content, another path). Fast to write and to process: for tests that
    run many files (crash tests of resumable jobs, docs/jobs.md)."""
    template = dcmread(str(get_testdata_file("CT_small.dcm")))
    template.Rows = template.Columns = 8
    template.PixelData = bytes(range(128))
    template.PatientName, template.PatientID = PATIENT_NAME, PATIENT_ID
    for index in range(n):
        ds = template.copy()
        ds.StudyInstanceUID = generate_uid(entropy_srcs=["tiny-study", str(index // 50)])
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=["tiny-series", str(index // 10)])
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["tiny-sop", str(index)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = index + 1
        path = root / f"Smithers_{index // 100}" / f"img{index:04d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
    for index in range(duplicates):
        (root / "copies").mkdir(exist_ok=True)
        source = root / f"Smithers_{index // 100}" / f"img{index:04d}.dcm"
        (root / "copies" / f"again{index:04d}.dcm").write_bytes(source.read_bytes())
    return root


@pytest.fixture(scope="session")
def tiny_corpus_factory() -> Callable[..., Path]:
    """:func:`make_tiny_corpus`."""
    return make_tiny_corpus

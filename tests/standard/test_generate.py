"""The packaged standard data equals its sources and what the generator would write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomcloak.standard import generate
from dicomcloak.standard.table import EDITION

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "standard"


def _need_shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("no ../shared/standard beside this clone")
    return SHARED


@pytest.mark.parametrize("name", generate.COPIED)
def test_packaged_csv_equals_shared(name: str) -> None:
    shared = _need_shared()
    assert (generate.DATA_DIR / name).read_bytes() == (shared / name).read_bytes()


def test_default_shared_dir_is_beside_the_repo() -> None:
    assert generate.default_shared_dir() == SHARED


def test_generate_check_passes() -> None:
    shared = _need_shared()
    assert generate.main(["--check", "--shared", str(shared)]) == 0


def test_generated_files_without_shared_equal_packaged() -> None:
    for name, content in generate.expected_files(None).items():
        assert (generate.DATA_DIR / name).read_bytes() == content, name


def test_check_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = _need_shared()
    for name, content in generate.expected_files(shared).items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "iod_types.json").write_text("{}")
    monkeypatch.setattr(generate, "DATA_DIR", tmp_path)
    assert generate.main(["--check", "--shared", str(shared)]) == 1
    assert generate.main(["--shared", str(shared)]) == 0
    assert generate.main(["--check", "--shared", str(shared)]) == 0


def test_missing_shared_dir_is_a_usage_error(tmp_path: Path) -> None:
    assert generate.main(["--check", "--shared", str(tmp_path / "absent")]) == 2


def test_edition_and_sources_recorded() -> None:
    import highdicom

    edition = (generate.DATA_DIR / "EDITION").read_text("utf-8").splitlines()
    assert edition[0] == EDITION
    assert any(highdicom.__version__ in line for line in edition)
    header = json.loads((generate.DATA_DIR / "iod_types.json").read_text("utf-8"))
    assert header["table_edition"] == EDITION
    assert header["source"]["highdicom"] == highdicom.__version__
    assert set(header["source"]["sha256"]) == {
        "sop_class_iod_map.json",
        "iod_module_map.json",
        "module_attribute_map.json",
    }

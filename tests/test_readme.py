"""The README's promises are tested: its ``dicomcloak`` examples run, its tables match the code."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dicomcloak.standard.table import Option

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text("utf-8")) if lang == language]


def _examples() -> list[str]:
    lines = (line.strip() for block in _blocks("sh") for line in block.splitlines())
    return [line for line in lines if re.match(r"^(\w+=\S+ )*dicomcloak ", line)]


def _section(title: str) -> str:
    text = README.read_text("utf-8")
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start:end]


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("dicomcloak")
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from dicomcloak.cli.app import main; main()"]
    )


def test_fresh_machine_commands() -> None:
    first = [line.split("#")[0].strip() for line in _blocks("sh")[0].splitlines()]
    assert first == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    root = README.parent
    assert (root / "scripts" / "demo.sh").is_file()
    assert (root / "scripts" / "test.sh").is_file()


@pytest.mark.slow
def test_usage_examples_run(tmp_path: Path, instance_factory: Callable[..., Path]) -> None:
    examples = _examples()
    assert len(examples) >= 8
    for index in range(4):
        instance_factory(tmp_path / "scans" / f"doe_{index}.dcm", index)
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as archive:
        archive.write(instance_factory(tmp_path / "z" / "a.dcm", 10), "a.dcm")
    base_env = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"}
    for line in examples:
        words = shlex.split(line, comments=True)
        at = words.index("dicomcloak")
        env = base_env | dict(word.split("=", 1) for word in words[:at])
        command = words[at + 1 :]
        result = subprocess.run(
            [*_cli(), *command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"


def test_exit_code_table_matches_the_code() -> None:
    from dicomcloak.cli._common import ExitCode

    rows = re.findall(r"^\| (\d) \|", _section("### Exit codes"), re.MULTILINE)
    assert [int(code) for code in rows] == [code.value for code in ExitCode if code < ExitCode.INTERRUPTED]


def test_options_table_lists_every_option() -> None:
    names = re.findall(r"^\| `([a-z-]+)` \|", _section("## Options"), re.MULTILINE)
    assert names == [option.value for option in Option]


def test_json_schema_example_matches_a_real_summary(
    tmp_path: Path, instance_factory: Callable[..., Path]
) -> None:
    documented = json.loads(next(b for b in _blocks("json") if "deid-summary" in b))
    instance_factory(tmp_path / "in" / "a.dcm", 0)
    result = subprocess.run(
        [*_cli(), "deid", "in", "--out", "out", "--ephemeral-key", "--jobs", "1", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    actual = json.loads(result.stdout)
    assert set(actual) == set(documented)
    assert {k: type(v) for k, v in actual.items()} == {k: type(v) for k, v in documented.items()}


def test_python_api_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python block runs as written, on a real file, and de-identifies it."""
    import shutil

    import pydicom
    from pydicom.data import get_testdata_file

    from dicomcloak.keys import ProjectKey, write_key_file

    source = get_testdata_file("CT_small.dcm", download=False)
    assert source is not None
    shutil.copy(source, tmp_path / "scan.dcm")
    write_key_file(tmp_path / "project.key", ProjectKey.generate())
    monkeypatch.chdir(tmp_path)
    (block,) = _blocks("python")
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)  # the README is ours
    outcome = namespace["outcome"]
    original = pydicom.dcmread(tmp_path / "scan.dcm")
    assert outcome.dataset.PatientIdentityRemoved == "YES"  # type: ignore[attr-defined]
    assert str(outcome.dataset.PatientName) != str(original.PatientName)  # type: ignore[attr-defined]
    from dicomcloak.testing.restored import differences

    restored = namespace["restored"]
    assert differences(original, restored) == []  # type: ignore[arg-type]

"""Safe re-runs: one report per run, never overwritten; an output made differently is refused (exit 2).

The same command again into the same output is allowed and keeps both runs'
reports; another key, pseudonym domain, option, layout, policy or command into
that output is refused with ``output-made-differently``, naming the earlier
report, before anything is written.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

RunCli = Callable[..., CompletedProcess[str]]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "runs").iterdir())


def _deid(run_cli: RunCli, tree: Path, out: Path, key: Path, *extra: str | Path) -> CompletedProcess[str]:
    return run_cli("deid", tree, "--out", out, "--key", key, "-j", "1", *extra)


def _assert_refused(result: CompletedProcess[str], earlier_report: Path, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    (first,) = [line for line in result.stderr.splitlines() if line.startswith("error[")]
    assert first.startswith("error[output-made-differently]: ")
    assert str(earlier_report) in first
    for word in words:
        assert word in first
    assert "hint: " in result.stderr and "Traceback" not in result.stderr


def test_the_same_command_twice_keeps_both_reports(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    out, run_dir = tmp_path / "out", tmp_path / "out.run"
    first = _deid(run_cli, dicom_tree, out, key_file, "--json")
    assert first.returncode == 0, first.stderr
    files = _files(out)
    first_report = (run_dir / "latest" / "report.json").read_bytes()
    second = _deid(run_cli, dicom_tree, out, key_file, "--json")
    assert second.returncode == 0, second.stderr
    assert _files(out) == files  # idempotent: the same files, rewritten identically
    one, two = _runs(run_dir)
    assert (one / "report.json").read_bytes() == first_report  # the earlier report is untouched
    assert json.loads(second.stdout)["report"] == str(two / "report.json")
    assert os.readlink(run_dir / "latest") == f"runs/{two.name}"
    latest = json.loads((run_dir / "latest.json").read_text())
    assert latest == {"schema": "dicomcloak/latest-run/1", "run": f"runs/{two.name}",
                      "report": f"runs/{two.name}/report.json"}
    for folder in (one, two):
        record = json.loads((folder / "run.json").read_text())
        assert record["output"] == str(out) and record["made_with"]["command"] == "deid"
        assert (folder / "events.jsonl").is_file()
    assert not (run_dir / "report.json").exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--domain", "partner-b"), ("pseudonym domain 'default'", "'partner-b'")),
        (("--option", "retain-uids"), ("options [] (this run: ['retain-uids'])",)),
        (("--layout", "mirror"), ("pseudonymous layout",)),
        (("--strict-table",), ("another policy (fingerprint",)),
    ],
)
def test_another_domain_option_layout_or_table_is_refused(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path, extra: tuple[str, ...],
    words: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    assert _deid(run_cli, dicom_tree, out, key_file).returncode == 0
    before = _files(out)
    (earlier,) = _runs(tmp_path / "out.run")
    _assert_refused(_deid(run_cli, dicom_tree, out, key_file, *extra), earlier / "report.json", *words)
    assert _files(out) == before and len(_runs(tmp_path / "out.run")) == 1  # nothing written


def test_another_key_is_refused_also_with_another_run_dir(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    """``--run-dir`` elsewhere does not hide the earlier run recorded in the default ``OUT.run``."""
    from dicomcloak.keys import ProjectKey, load_key_file, write_key_file

    other_key = tmp_path / "other.key"
    write_key_file(other_key, ProjectKey.generate())
    out = tmp_path / "out"
    assert _deid(run_cli, dicom_tree, out, key_file).returncode == 0
    (earlier,) = _runs(tmp_path / "out.run")
    ids = (load_key_file(key_file).key_id, load_key_file(other_key).key_id)
    for extra in ((), ("--run-dir", tmp_path / "elsewhere")):
        result = _deid(run_cli, dicom_tree, out, other_key, *extra)
        _assert_refused(result, earlier / "report.json", "another key", *ids)
    assert not (tmp_path / "elsewhere" / "runs").exists()


def test_another_policy_is_refused(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "site.toml"
    policy.write_text('[tags]\nPatientName = "K"\n')
    out = tmp_path / "out"
    assert _deid(run_cli, dicom_tree, out, key_file, "--policy", policy).returncode == 0
    (earlier,) = _runs(tmp_path / "out.run")
    _assert_refused(_deid(run_cli, dicom_tree, out, key_file), earlier / "report.json", "another policy")
    assert _deid(run_cli, dicom_tree, out, key_file, "--policy", policy).returncode == 0  # the same again


def test_another_command_is_refused(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    """Re-identified or merely sanitized files never land in a de-identified tree, nor the reverse."""
    out = tmp_path / "out"
    assert _deid(run_cli, dicom_tree, out, key_file).returncode == 0
    (earlier,) = _runs(tmp_path / "out.run")
    report = earlier / "report.json"
    _assert_refused(run_cli("sanitize", dicom_tree, "--out", out), report, "'dicomcloak deid'", "sanitize")
    reid = run_cli("reid", dicom_tree, "--out", out, "--vault", f"sqlite:///{tmp_path / 'v.db'}",
                   "--key", key_file)
    _assert_refused(reid, report, "'dicomcloak reid'")
    clean = tmp_path / "clean"
    assert run_cli("sanitize", dicom_tree, "--out", clean).returncode == 0
    (sanitized,) = _runs(tmp_path / "clean.run")
    _assert_refused(_deid(run_cli, dicom_tree, clean, key_file), sanitized / "report.json", "sanitize")


def test_a_run_that_did_not_finish_still_counts(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    """A run that stopped (here: its report removed, as after a crash) may have written outputs."""
    out = tmp_path / "out"
    assert _deid(run_cli, dicom_tree, out, key_file).returncode == 0
    (earlier,) = _runs(tmp_path / "out.run")
    (earlier / "report.json").unlink()
    result = _deid(run_cli, dicom_tree, out, key_file, "--domain", "other")
    _assert_refused(result, earlier / "run.json", "did not finish")


def test_a_run_directory_of_an_older_version_is_read(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    """``RUN_DIR/report.json`` (before run folders) is compared too, and never overwritten."""
    out, run_dir = tmp_path / "out", tmp_path / "out.run"
    assert _deid(run_cli, dicom_tree, out, key_file).returncode == 0
    (earlier,) = _runs(run_dir)
    shutil.copy(earlier / "report.json", run_dir / "report.json")
    shutil.rmtree(run_dir / "runs")
    legacy = (run_dir / "report.json").read_bytes()
    refused = _deid(run_cli, dicom_tree, out, key_file, "--domain", "x")
    _assert_refused(refused, run_dir / "report.json", "'x'")
    assert _deid(run_cli, dicom_tree, out, key_file).returncode == 0
    assert (run_dir / "report.json").read_bytes() == legacy


def test_ephemeral_keys_never_mix(run_cli: RunCli, dicom_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("deid", dicom_tree, "--out", out, "--ephemeral-key", "-j", "1").returncode == 0
    result = run_cli("deid", dicom_tree, "--out", out, "--ephemeral-key", "-j", "1")
    assert result.returncode == 2 and "error[output-made-differently]" in result.stderr


def test_policy_fingerprint_follows_what_the_policy_does() -> None:
    from dataclasses import replace

    from dicomcloak.batch.rundir import policy_fingerprint
    from dicomcloak.policy import Disposition, build_policy
    from dicomcloak.standard.table import Option

    base = build_policy([])
    assert policy_fingerprint(base) == policy_fingerprint(build_policy([]))
    others = [
        build_policy([Option.RETAIN_UIDS]),
        replace(base, keep_reference_sequences=False),
        replace(base, sanitize=replace(base.sanitize, icons=Disposition.REMOVE)),
    ]
    prints = {policy_fingerprint(policy) for policy in [base, *others]}
    assert len(prints) == 4
    limits = replace(base.sanitize.limits, max_sequence_depth=8)  # decides quarantine, not content
    assert policy_fingerprint(replace(base, sanitize=replace(base.sanitize, limits=limits))) == (
        policy_fingerprint(base)
    )

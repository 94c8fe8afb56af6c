"""``dicomcloak job status|list``, and the ``--job``/``--force`` options of ``deid`` and ``sanitize``.

A job is a batch run that can be killed and continued: its journal in the run
directory records every input's outcome (docs/jobs.md). ``job status`` reads
it while a run writes it, and shows counts only (never names or values).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dicomcloak.cli._common import JsonFlag, handles_errors
from dicomcloak.errors import UsageError

if TYPE_CHECKING:
    from dicomcloak.batch.jobstatus import JobStatus
    from dicomcloak.batch.journal import JobSettings
    from dicomcloak.batch.report import RunSummary
    from dicomcloak.batch.worker import SealSettings

__all__ = [
    "ForceArg",
    "JobArg",
    "app",
    "check_job",
    "job_lines",
    "job_settings",
    "list_command",
    "nothing_to_do",
    "status",
]

app = typer.Typer(help="Resumable batch jobs (deid --job NAME): their progress.", no_args_is_help=True)

JobArg = Annotated[
    str | None,
    typer.Option(
        "--job",
        help="Keep a journal of this run under RUN_DIR/jobs/NAME: the same command continues a killed run "
        "where it stopped, and does nothing once the job is finished (docs/jobs.md).",
    ),
]
ForceArg = Annotated[
    bool,
    typer.Option("--force", help="With --job: start the job over (its journal cleared), even if finished."),
]
_RunDirOption = Annotated[Path | None, typer.Option("--run-dir", help="The run directory of the job's runs.")]
_OutOption = Annotated[
    Path | None, typer.Option("--out", help="The job's output directory (its run directory: OUT.run).")
]


def check_job(name: str | None, force: bool) -> None:
    """Refuse a bad job name, or ``--force`` without ``--job``, before any work."""
    if name is None:
        if force:
            raise UsageError(
                "--force only applies to a job", reference="force-without-job",
                hint="add --job NAME, or leave --force out",
            )
        return
    from dicomcloak.batch.journal import validate_name

    validate_name(name)


def job_settings(
    name: str | None, force: bool, inputs: Sequence[Path], follow_symlinks: bool, *,
    seal: SealSettings | None = None, **facts: Any,
) -> JobSettings | None:
    """The job of a run (None without ``--job``): its inputs resolved, and what decides outputs besides
    the run's facts (sealing as digests: a vault URL may hold a password)."""
    if name is None:
        return None
    from dicomcloak.batch.journal import JobSettings

    settings = {"follow_symlinks": follow_symlinks, **facts, **_seal_facts(seal)}
    return JobSettings(name, tuple(str(path.resolve()) for path in inputs), force, settings)


def _seal_facts(seal: SealSettings | None) -> dict[str, Any]:
    if seal is None:
        return {}
    return {
        "recipients": sorted(hashlib.sha256(pem).hexdigest() for pem in seal.recipients),
        "vault": None if seal.vault_url is None else hashlib.sha256(seal.vault_url.encode()).hexdigest(),
        "signed": seal.sealer_key is not None,
    }


def nothing_to_do(summary: RunSummary) -> bool:
    """True when the run found its job finished earlier and did nothing."""
    job = summary.run.get("job")
    return isinstance(job, dict) and bool(job.get("nothing_to_do"))


def job_lines(summary: RunSummary) -> list[str]:
    """The job's lines in the human summary (none without a job)."""
    job = summary.run.get("job")
    if not isinstance(job, dict):
        return []
    if job.get("nothing_to_do"):
        return [f"job {job['name']} finished earlier: nothing to do ({summary.files} files; "
                f"{summary.written} written, {summary.duplicates} duplicates, {summary.quarantined} "
                "quarantined); --force runs it again"]
    runs = len(job.get("runs", []))
    return [f"  job                 {job['name']}  (run {runs}; {job['done_before']} inputs done by earlier "
            f"runs, {job['done_now']} by this one)"]


def _run_dir(run_dir: Path | None, out: Path | None) -> Path:
    if run_dir is not None:
        return run_dir.resolve()
    if out is not None:
        from dicomcloak.cli.deid import default_run_dir

        return default_run_dir(out.resolve())
    raise UsageError(
        "which run directory holds the job?", reference="job-run-dir-missing",
        hint="give --run-dir DIR (or --out OUT, whose run directory is OUT.run)",
    )


@app.command("status")
@handles_errors
def status(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The job's name (deid --job NAME).")],
    run_dir: _RunDirOption = None,
    out: _OutOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a job's progress: inputs done and pending, outcomes, runs (counts only)."""
    from dicomcloak.batch.jobstatus import job_status

    found = job_status(_run_dir(run_dir, out), name)
    print(json.dumps(found.to_dict(), indent=2, sort_keys=True) if as_json else render_status(found))


def render_status(found: JobStatus) -> str:
    """``job status`` for people."""
    outcomes = ", ".join(f"{count} {status}" for status, count in sorted(found.outcomes.items()))
    last = found.runs[-1] if found.runs else None
    lines = [
        f"job {found.name}: {'finished ' + found.finished if found.finished else 'unfinished'}",
        f"  inputs   {found.total}",
        f"  done     {found.done}" + (f"  ({outcomes})" if outcomes else ""),
        f"  pending  {found.pending}",
        f"  runs     {len(found.runs)}" + (f"  (last {last['run']}: {last['outcome']})" if last else ""),
        f"  created  {found.created}",
    ]
    return "\n".join(lines)


@app.command("list")
@handles_errors
def list_command(run_dir: _RunDirOption = None, out: _OutOption = None, as_json: JsonFlag = False) -> None:
    """List the jobs of a run directory with their done and pending counts."""
    from dicomcloak.batch.jobstatus import job_status, list_jobs

    where = _run_dir(run_dir, out)
    found = [job_status(where, name) for name in list_jobs(where)]
    if as_json:
        print(json.dumps([f.to_dict() for f in found], indent=2, sort_keys=True))
        return
    for f in found:
        print(f"{f.name}  {'finished' if f.finished else 'unfinished'}  {f.done}/{f.total} done")

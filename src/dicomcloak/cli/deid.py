"""``dicomcloak deid``: de-identify files, directories, archives and media sets into a pseudonymous tree."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dicomcloak.cli._common import (
    ExitCode,
    FollowSymlinksArg,
    JobsArg,
    JsonFlag,
    OptionsArg,
    PolicyFileArg,
    QuarantineArg,
    RunDirArg,
    StrictTableArg,
    collector_paused,
    handles_errors,
    load_key,
    load_policy,
    warn,
    warn_deviations,
)
from dicomcloak.cli._headeronly import import_pydicom_header_only
from dicomcloak.cli._inputs import FromListArg, InputsArg, gather_inputs
from dicomcloak.cli._progress import DEFAULT_INTERVAL, ProgressIntervalArg, ProgressLines
from dicomcloak.cli._sealing import SealerKeyArg, seal_settings
from dicomcloak.cli.job import ForceArg, JobArg, check_job, job_lines, job_settings, nothing_to_do
from dicomcloak.errors import DicomcloakError, UsageError
from dicomcloak.pixels.model import PixelMode

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn, TaskID

    from dicomcloak.batch.report import RunSummary
    from dicomcloak.batch.run import RunSettings
    from dicomcloak.batch.worker import FileResult, SealSettings
    from dicomcloak.io.inputs import WalkEntry
    from dicomcloak.pixels.settings import PixelSettings

__all__ = [
    "ConflictChoice",
    "LayoutChoice",
    "PixelsArg",
    "check_paths",
    "default_run_dir",
    "deid",
    "history",
    "make_run_dir",
    "render_summary",
    "run_items",
    "warn_skipped",
]


class LayoutChoice(StrEnum):
    """``--layout`` values (mirrors :class:`dicomcloak.batch.worker.Layout`, without importing it)."""

    PSEUDONYMOUS = "pseudonymous"
    MIRROR = "mirror"


class ConflictChoice(StrEnum):
    """``--uid-conflicts`` values (:class:`dicomcloak.batch.claims.OnConflict`, without importing it)."""

    QUARANTINE = "quarantine"
    KEEP_BOTH = "keep-both"


PixelsArg = Annotated[
    PixelMode | None,
    typer.Option(
        "--pixels",
        help="Burned-in text in the pixels: auto (per modality; CT and MR without Burned In Annotation YES "
        "are not decoded), off (pixels untouched), phi (redact text read as PHI), all-text (redact all "
        "text), quarantine (set aside images at risk). Default: the policy's [pixels] mode, else auto.",
        case_sensitive=False,
    ),
]


def pixel_settings(policy: Path | None, mode: PixelMode | None) -> PixelSettings:
    """The pixel stage's settings: the policy's ``[pixels]`` section, ``--pixels`` winning over its mode."""
    from dicomcloak.pixels.settings import resolve_pixel_settings

    return resolve_pixel_settings(policy, mode)


@handles_errors
def deid(
    inputs: InputsArg = None,
    *,
    out: Annotated[Path, typer.Option("--out", help="Output directory (de-identified DICOM only).")],
    from_list: FromListArg = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="Project key file (else $DICOMCLOAK_KEY_FILE).")
    ] = None,
    ephemeral_key: Annotated[
        bool, typer.Option("--ephemeral-key", help="Use a throwaway key: outputs not linkable across runs.")
    ] = False,
    domain: Annotated[str, typer.Option("--domain", help="Pseudonym domain, one per recipient.")] = "default",
    option: OptionsArg = None,
    policy: PolicyFileArg = None,
    strict_table: StrictTableArg = False,
    layout: Annotated[
        LayoutChoice, typer.Option("--layout", help="Output paths.")
    ] = LayoutChoice.PSEUDONYMOUS,
    uid_conflicts: Annotated[
        ConflictChoice,
        typer.Option(
            "--uid-conflicts",
            help="An input whose SOP Instance UID was already written with other content: "
            "quarantine it (reason uid-conflict), or keep both (it gets a UID of its own).",
        ),
    ] = ConflictChoice.QUARANTINE,
    run_dir: RunDirArg = None,
    quarantine: QuarantineArg = None,
    jobs: JobsArg = None,
    follow_symlinks: FollowSymlinksArg = False,
    recipient: Annotated[
        list[Path] | None,
        typer.Option(
            "--recipient",
            help="Seal the originals in each file to this PEM certificate (repeatable; PS3.15 E.1.1).",
        ),
    ] = None,
    sealer_key: SealerKeyArg = None,
    vault: Annotated[
        str | None, typer.Option("--vault", help="Seal the originals in this vault (SQLAlchemy URL).")
    ] = None,
    audit: Annotated[
        str | None,
        typer.Option(
            "--audit", help="Audit log URL (default: the vault's; embedded only: RUN_DIR/audit.db)."
        ),
    ] = None,
    vault_wait: Annotated[
        float | None,
        typer.Option(
            "--vault-wait",
            min=0,
            help="Seconds to keep retrying while the vault database is busy (locked) before the run stops "
            "(default 120).",
        ),
    ] = None,
    pixels: PixelsArg = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            metavar="ADDRESS",
            help="Run on this existing Dask scheduler's cluster (tls://HOST:8786). Inputs, OUT and the run "
            "dir on storage every worker sees; a key file and a PostgreSQL --vault (docs/cluster.md).",
        ),
    ] = None,
    job: JobArg = None,
    force: ForceArg = False,
    progress_interval: ProgressIntervalArg = DEFAULT_INTERVAL,
    as_json: JsonFlag = False,
) -> None:
    """De-identify INPUT... into OUT per PS3.15 Annex E; reports and quarantine go to the run dir."""
    if pixels is PixelMode.OFF:
        import_pydicom_header_only()  # Pixel Data is copied as it is: no NumPy, Pillow, GDCM
    with collector_paused():  # start-up state lives until exit; the batch freezes it
        from dicomcloak.batch.claims import OnConflict
        from dicomcloak.batch.report import PIXEL_CARDS
        from dicomcloak.batch.run import RunSettings, default_jobs
        from dicomcloak.batch.rundir import run_tree
        from dicomcloak.batch.worker import Layout, WorkerSettings
        from dicomcloak.io.inputs import iter_inputs

        out = out.resolve()
        run = (run_dir or default_run_dir(out)).resolve()
        qdir = (quarantine or run / "quarantine").resolve()
        paths = gather_inputs(inputs, from_list, out, run, qdir)
        check_job(job, force)  # a bad name fails before any work
        the_policy = load_policy(option, policy, strict_table=strict_table)
        # Every input checked before any work; a compressed tar inflates into the run directory's staging.
        items = iter_inputs(paths, follow_symlinks=follow_symlinks, limits=the_policy.sanitize.limits,
                            scratch=run_tree(run).staging)
        the_pixels = pixel_settings(policy, pixels)
        warn_deviations(the_policy)  # once, before any work
        if dask is not None and ephemeral_key:
            raise UsageError(
                "--dask needs a project key file, not --ephemeral-key",
                reference="dask-needs-key-file",
                hint="every worker reads the key file itself: pass --key FILE on storage every node sees",
            )
        the_key = load_key(key, ephemeral=ephemeral_key)
        seal = seal_settings(
            recipient or [], vault, audit, key, ephemeral=ephemeral_key, sealer_key=sealer_key,
            vault_wait=vault_wait,
        )
    if layout is LayoutChoice.MIRROR:
        warn("--layout mirror copies input paths verbatim; they may hold names or IDs")
    worker = WorkerSettings(
        the_policy,
        the_key,
        domain,
        out,
        qdir,
        Layout(layout.value),
        len(paths) > 1,
        seal=seal,
        on_conflict=OnConflict(uid_conflicts.value),
        pixels=the_pixels,
        pixel_report=PIXEL_CARDS,
    )
    the_job = job_settings(job, force, paths, follow_symlinks, seal=seal, uid_conflicts=uid_conflicts.value)
    settings = RunSettings(worker, run, jobs or default_jobs(), history(out, run), job=the_job)
    if dask is not None:
        settings = _on_cluster(settings, dask, key, sealer_key)

    def work() -> RunSummary:
        return run_items(items, settings, progress=not as_json, interval=progress_interval)

    # Embedded-only sealing has no vault to audit each group in: one event per run, in --audit or
    # in the run directory's own log (every seal is audited, architecture.md decision 3).
    embedded_only = seal is not None and seal.vault_url is None
    summary = _audited_embedded(seal, run, work) if seal is not None and embedded_only else work()
    print(json.dumps(summary.to_dict(), indent=2, sort_keys=True) if as_json else render_summary(summary))
    if summary.quarantined and not nothing_to_do(summary):
        raise typer.Exit(int(ExitCode.QUARANTINED))


def _on_cluster(
    settings: RunSettings, address: str, key: Path | None, sealer_key: Path | None
) -> RunSettings:
    """The run on the Dask cluster at ``address``: refusals checked now, the key files' paths for workers."""
    import os
    from dataclasses import replace

    from dicomcloak.batch.cluster import check_cluster, key_files, plaintext
    from dicomcloak.keys import resolve_key_path
    from dicomcloak.keys.sealing import SEALER_KEY_ENV

    check_cluster(settings.worker)
    key_path = resolve_key_path(key, os.environ)
    if key_path is None:  # pragma: no cover - load_key refused already
        raise UsageError("--dask needs --key FILE", reference="dask-needs-key-file")
    sealer = sealer_key or (Path(os.environ[SEALER_KEY_ENV]) if os.environ.get(SEALER_KEY_ENV) else None)
    if plaintext(address):
        warn("--dask without tls://: input paths and results cross the network unencrypted (docs/cluster.md)")
    return replace(settings, scheduler=address, key_files=key_files(settings.worker, key_path, sealer))


def _audited_embedded(seal: SealSettings, run: Path, work: Callable[[], RunSummary]) -> RunSummary:
    """Run an embedded-only sealing run and audit it (counts and reference codes, never values)."""
    from dicomcloak.audit import AuditLog
    from dicomcloak.batch.sealing import audit_url

    make_run_dir(run)
    log = AuditLog.open(audit_url(seal, run))
    try:
        facts: dict[str, object] = {"mode": "embedded", "recipients": len(seal.recipients), **_sealer(seal)}
        try:
            summary = work()
        except DicomcloakError as error:
            log.append("seal-failed", reference=error.reference, **facts)
            raise
        job = summary.run.get("job") or {}
        if job.get("nothing_to_do"):
            return summary  # nothing sealed
        earlier = job.get("earlier", {})  # a resumed job's earlier runs audited their own seals
        log.append(
            "seal", files=summary.files - job.get("done_before", 0),
            sealed=summary.written - earlier.get("written", 0),
            quarantined=summary.quarantined - earlier.get("quarantined", 0), **facts,
        )
        return summary
    finally:
        log.close()


def _sealer(seal: SealSettings) -> dict[str, object]:
    """The signing sealer's fingerprint (its first 16 hex digits), for the audit trail: who sealed."""
    if seal.sealer_key is None:
        return {}
    from dicomcloak.keys.sealing import load_sealer_key

    return {"sealer": load_sealer_key(seal.sealer_key, "--sealer-key").fingerprint.hex()[:16]}


def default_run_dir(out: Path) -> Path:
    """``OUT.run`` beside OUT: reports never go inside the output tree."""
    return out.with_name(out.name + ".run")


def history(out: Path, run: Path) -> tuple[Path, ...]:
    """Where else earlier runs into OUT may be recorded: ``OUT.run``, when ``--run-dir`` chose another."""
    default = default_run_dir(out)
    return () if run == default else (default,)


def make_run_dir(run: Path) -> None:
    """Create the run directory now, mode 0700 as the batch does (its audit log opens before the batch)."""
    from dicomcloak.errors import OutputError
    from dicomcloak.io.staging import makedirs_private

    try:
        makedirs_private(run)
    except OSError as error:
        raise OutputError(
            f"cannot create the run directory {run}: {error.strerror}",
            hint="choose a writable --run-dir (it holds the reports and the quarantine)",
        ) from None


def _within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def check_paths(inputs: list[Path], out: Path, run_dir: Path, quarantine: Path) -> None:
    """Refuse layouts that would mix outputs, reports and inputs (all paths resolved)."""
    for path in inputs:
        _check_input(path, out, run_dir, quarantine)
    for name, where in (("run directory", run_dir), ("quarantine", quarantine)):
        if _within(where, out) or _within(out, where):
            raise UsageError(
                f"the {name} {where} and the output {out} overlap",
                reference="run-dir-inside-output",
                hint="the output holds de-identified DICOM only",
            )


def _check_input(path: Path, out: Path, run_dir: Path, quarantine: Path) -> None:
    hint = "choose an --out outside every input"
    if _within(out, path):
        raise UsageError(
            f"the output {out} is inside the input {path}", reference="output-inside-input", hint=hint
        )
    if _within(path, out):
        raise UsageError(
            f"the input {path} is inside the output {out}", reference="input-inside-output", hint=hint
        )
    for name, where in (("run directory", run_dir), ("quarantine", quarantine)):
        if _within(where, path):
            raise UsageError(
                f"the {name} {where} is inside the input {path}",
                reference="run-dir-inside-input",
                hint="inputs are never modified",
            )


def run_items(
    items: Iterable[WalkEntry], settings: RunSettings, *, progress: bool, label: str = "de-identifying",
    interval: float = DEFAULT_INTERVAL,
) -> RunSummary:
    """Run a batch with a progress bar named ``label`` on a terminal (``deid`` and ``sanitize``).

    Without one (``--json``, or stderr not a terminal), a JSON progress line
    every ``interval`` seconds (:mod:`dicomcloak.cli._progress`).
    """
    from dicomcloak.batch.run import run_batch

    bar: ProgressBar | ProgressLines
    if progress and sys.stderr.isatty():
        bar = ProgressBar(enabled=True, label=label)
    else:
        bar = ProgressLines(interval)
    try:
        summary = run_batch(list(items), settings, bar)
    finally:
        bar.close()
    if nothing_to_do(summary):
        return summary
    if not summary.files:
        warn("no input files found")
    warn_skipped(summary)
    return summary


def warn_skipped(summary: RunSummary) -> None:
    """One warning when the walk skipped entries: how many, why, where they are listed (never their names)."""
    if summary.skipped:
        warn(
            f"{summary.skipped} entries skipped ({_counts(summary.skip_reasons)}): "
            f"listed by index in {summary.run.get('report', 'the report')}"
        )


def _counts(reasons: dict[str, int]) -> str:
    return ", ".join(f"{code}: {count}" for code, count in sorted(reasons.items()))


class ProgressBar:
    """A rich progress bar on stderr, drawn only for people (a TTY, no --json)."""

    def __init__(self, *, enabled: bool, label: str = "de-identifying") -> None:
        self.enabled = enabled
        self.label = label
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def start(self, total: int) -> None:
        """Draw the bar (called after the worker pool exists: rich starts a thread)."""
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            "{task.completed}/{task.total} files",
            _rate_column(),
            "ETA",
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task = self._bar.add_task(self.label, total=total)
        self._bar.start()

    def advance(self, result: FileResult) -> None:
        """One more input done."""
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task)

    def close(self) -> None:
        """Stop drawing."""
        if self._bar is not None:
            self._bar.stop()


def _rate_column() -> ProgressColumn:
    """Files per second, as rich measures them over the last half minute (``?`` until known)."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("? files/s" if speed is None else f"{speed:.1f} files/s", style="progress.data.speed")

    return RateColumn()


def _conflict_lines(summary: RunSummary) -> list[str]:
    """UID conflicts, when there were any: how many, and what was done (the report lists them by index)."""
    if not summary.uid_conflicts:
        return []
    done = "kept both" if summary.run.get("uid_conflict_resolution") == "keep-both" else "quarantined"
    return [f"  uid conflicts       {summary.uid_conflicts}  ({done}; report.json lists them by index)"]


def _pixel_lines(summary: RunSummary) -> list[str]:
    """What the pixel stage did, when it ran: instances by status, and where its report is."""
    if not summary.run.get("pixel_report"):
        return []
    counts = summary.pixels
    done = ", ".join(f"{counts.get(status, 0)} {words}" for status, words in _PIXEL_WORDS)
    return [f"  pixels              {done}", f"  pixel report        {summary.run['pixel_report']}"]


def _media_lines(summary: RunSummary) -> list[str]:
    """The media sets met (DICOMDIRs): their references, and the DICOMDIR rebuilt for the output."""
    media = summary.run.get("media")
    if not media:
        return []
    refused = {code: n for code, n in media["references"].items() if code != "referenced"}
    checked = f"{media['references'].get('referenced', 0)} references valid" + (
        f", not followed: {_counts(refused)}" if refused else "")
    lines = [f"  media sets          {media['sets']} ({checked})"]
    if media["dicomdir"]:
        lines.append(f"  new DICOMDIR        {media['dicomdir']} ({media['records']} instance records)")
    else:
        lines.append("  new DICOMDIR        none (docs/inputs.md, \"Media sets\")")
    return lines


#: How the summary names each pixel status (docs/pixels.md, "Statuses").
_PIXEL_WORDS = (
    ("cleaned", "cleaned"), ("no-text", "without text"), ("quarantined", "quarantined"),
    ("not-examined", "not examined"),
)


def render_summary(summary: RunSummary) -> str:
    """The human summary printed at the end of a run."""
    if nothing_to_do(summary):
        return job_lines(summary)[0]
    facts = summary.run
    reasons = _counts({code: n for code, n in summary.reasons.items() if code != "duplicate-instance"})
    skips = _counts(summary.skip_reasons)
    lines = [
        f"{summary.files} files in {summary.seconds:.1f} s ({summary.files_per_second:.1f} files/s)",
        f"  written             {summary.written}",
        f"  duplicates          {summary.duplicates}",
        f"  quarantined         {summary.quarantined}" + (f"  ({reasons})" if reasons else ""),
        f"  skipped             {summary.skipped}" + (f"  ({skips})" if skips else ""),
        *_conflict_lines(summary),
        *_pixel_lines(summary),
        *_media_lines(summary),
        *job_lines(summary),
        f"  changed attributes  {summary.changed_attributes}",
        f"  output              {facts.get('output', '')}",
        f"  report              {facts.get('report', '')}",
        *([f"  report (HTML)       {facts['html_report']}"] if facts.get("html_report") else []),
    ]
    if summary.quarantined:
        lines.append(f"  quarantine          {facts.get('quarantine', '')}")
    sealing = facts.get("sealing") or {}
    if sealing.get("embedded_recipients") or sealing.get("vault"):
        modes = []
        if sealing.get("embedded_recipients"):
            modes.append(f"embedded ({sealing['embedded_recipients']} recipient(s))")
        if sealing.get("vault"):
            modes.append(f"vault ({sealing['vault']})")
        lines.append(f"  originals sealed    {', '.join(modes)}")
    return "\n".join(lines)

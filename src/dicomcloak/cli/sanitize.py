"""``dicomcloak sanitize``: rebuild files clean (content disarm and reconstruction), no de-identification."""

from __future__ import annotations

import json
from dataclasses import replace
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
    load_policy,
)
from dicomcloak.cli._headeronly import import_pydicom_header_only
from dicomcloak.cli._inputs import FromListArg, InputsArg, gather_inputs
from dicomcloak.cli._progress import DEFAULT_INTERVAL, ProgressIntervalArg
from dicomcloak.cli.deid import default_run_dir, history, render_summary, run_items
from dicomcloak.cli.job import ForceArg, JobArg, check_job, job_settings, nothing_to_do

if TYPE_CHECKING:
    from dicomcloak.policy.model import Policy

__all__ = ["sanitize"]

_CHOICE_HELP = "keep, remove or quarantine (default: the site policy's, else {default})."
_DOCUMENTS_HELP = "Encapsulated documents: " + _CHOICE_HELP.format(default="quarantine")


@handles_errors
def sanitize(
    inputs: InputsArg = None,
    *,
    out: Annotated[Path, typer.Option("--out", help="Output directory (rebuilt DICOM only).")],
    from_list: FromListArg = None,
    option: OptionsArg = None,
    policy: PolicyFileArg = None,
    strict_table: StrictTableArg = False,
    documents: Annotated[
        str | None,
        typer.Option("--documents", help=_DOCUMENTS_HELP),
    ] = None,
    waveforms: Annotated[
        str | None, typer.Option("--waveforms", help="Waveforms: " + _CHOICE_HELP.format(default="keep"))
    ] = None,
    icons: Annotated[
        str | None, typer.Option("--icons", help="Icon images: " + _CHOICE_HELP.format(default="keep"))
    ] = None,
    overlays: Annotated[
        str | None, typer.Option("--overlays", help="Overlays: " + _CHOICE_HELP.format(default="keep"))
    ] = None,
    max_depth: Annotated[
        int | None, typer.Option("--max-depth", min=1, help="Deepest sequence nesting accepted (default 64).")
    ] = None,
    run_dir: RunDirArg = None,
    quarantine: QuarantineArg = None,
    jobs: JobsArg = None,
    follow_symlinks: FollowSymlinksArg = False,
    job: JobArg = None,
    force: ForceArg = False,
    progress_interval: ProgressIntervalArg = DEFAULT_INTERVAL,
    as_json: JsonFlag = False,
) -> None:
    """Rebuild INPUT... into OUT from validated elements; hostile inputs are quarantined with a reason code.

    Outputs keep the inputs' relative paths and are NOT de-identified. Private
    elements are kept only as the policy (--option, --policy) allows.
    """
    import_pydicom_header_only()  # no pixel stage here: Pixel Data is checked and copied, never decoded
    with collector_paused():  # start-up state lives until exit; the batch freezes it
        from dicomcloak.batch.run import RunSettings, default_jobs
        from dicomcloak.batch.rundir import run_tree
        from dicomcloak.batch.worker import Layout, WorkerSettings
        from dicomcloak.io.inputs import iter_inputs
        from dicomcloak.keys import ProjectKey

        out = out.resolve()
        run = (run_dir or default_run_dir(out)).resolve()
        qdir = (quarantine or run / "quarantine").resolve()
        paths = gather_inputs(inputs, from_list, out, run, qdir, "sanitize")
        check_job(job, force)
        loaded = load_policy(option, policy, strict_table=strict_table)
        the_policy = _with_choices(loaded, documents, waveforms, icons, overlays, max_depth)
        items = iter_inputs(paths, follow_symlinks=follow_symlinks, limits=the_policy.sanitize.limits,
                            scratch=run_tree(run).staging)
    # No pseudonym is made without de-identification: the key is a placeholder, never used or shown.
    unused_key = ProjectKey.generate(ephemeral=True)
    worker = WorkerSettings(
        the_policy, unused_key, "default", out, qdir, Layout.MIRROR, len(paths) > 1, deidentify=False
    )
    the_job = job_settings(job, force, paths, follow_symlinks)
    settings = RunSettings(worker, run, jobs or default_jobs(), history(out, run), job=the_job)
    summary = run_items(items, settings, progress=not as_json, label="sanitizing", interval=progress_interval)
    print(json.dumps(summary.to_dict(), indent=2, sort_keys=True) if as_json else render_summary(summary))
    if summary.quarantined and not nothing_to_do(summary):
        raise typer.Exit(int(ExitCode.QUARANTINED))


def _with_choices(
    policy: Policy,
    documents: str | None,
    waveforms: str | None,
    icons: str | None,
    overlays: str | None,
    max_depth: int | None,
) -> Policy:
    """The policy with the command line's sanitize choices (they win over the site policy's)."""
    from dicomcloak.policy.site import parse_sanitize

    current = policy.sanitize
    given = {"encapsulated_documents": documents, "waveforms": waveforms}
    given.update(icons=icons, overlays=overlays)
    choices = {key: value for key, value in given.items() if value is not None}
    if not choices and max_depth is None:
        return policy
    parsed = parse_sanitize(choices)  # validated like the site policy's [sanitize] section
    settings = replace(current, **{key: getattr(parsed, key) for key in choices})
    if max_depth is not None:
        settings = replace(settings, limits=replace(settings.limits, max_sequence_depth=max_depth))
    return replace(policy, sanitize=settings)

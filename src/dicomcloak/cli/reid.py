"""``dicomcloak reid``: restore de-identified files for their owner (PS3.15 E.1.2), embedded or vault."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    handles_errors,
    load_policy,
    warn,
)
from dicomcloak.cli._inputs import FromListArg, gather_inputs
from dicomcloak.cli._sealing import TrustedSealerArg
from dicomcloak.cli.deid import default_run_dir, history, make_run_dir
from dicomcloak.cli.vault import KeyArg
from dicomcloak.errors import DicomcloakError, UsageError

if TYPE_CHECKING:
    from dicomcloak.audit import AuditLog
    from dicomcloak.batch.reidentify import ReidSettings
    from dicomcloak.batch.report import RunSummary
    from dicomcloak.batch.restoring import EmbeddedKeys
    from dicomcloak.keys.cms import OwnerKey

__all__ = ["reid", "render_reid_summary"]

PatientSelectArg = Annotated[
    list[str] | None,
    typer.Option(
        "--patient",
        metavar="PSEUDONYM",
        help="Restore only this patient: its pseudonymous Patient ID as in the de-identified files "
        "('vault lookup --patient-id' gives it). Repeatable; with --study, either selects a file.",
    ),
]
StudySelectArg = Annotated[
    list[str] | None,
    typer.Option(
        "--study",
        metavar="UID",
        help="Restore only this study: its pseudonymous Study Instance UID. Repeatable.",
    ),
]


@handles_errors
def reid(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[INPUT]...", help="De-identified DICOM files, directories, zip or tar archives.",
            show_default=False,
        ),
    ] = None,
    *,
    out: Annotated[Path, typer.Option("--out", help="Output directory (mirrors the inputs' layout).")],
    from_list: FromListArg = None,
    private_key: Annotated[
        Path | None, typer.Option("--private-key", help="Recipient private key (PEM): embedded mode.")
    ] = None,
    cert: Annotated[
        Path | None,
        typer.Option("--cert", help="Recipient certificate (default: owner.cert.pem beside the key)."),
    ] = None,
    vault: Annotated[
        str | None, typer.Option("--vault", help="Vault SQLAlchemy URL: vault mode (with --key).")
    ] = None,
    key: KeyArg = None,
    trusted_sealer: TrustedSealerArg = None,
    accept_unverified: Annotated[
        bool,
        typer.Option(
            "--accept-unverified",
            help="Also restore embedded seals no trusted sealer signed (unsigned, older, or made by "
            "another tool such as gdcmanon). Seals made for another instance are refused even so.",
        ),
    ] = False,
    audit: Annotated[
        str | None,
        typer.Option("--audit", help="Audit log URL (default: the vault's; embedded: RUN_DIR/audit.db)"),
    ] = None,
    option: OptionsArg = None,
    policy: PolicyFileArg = None,
    strict_table: StrictTableArg = False,
    run_dir: RunDirArg = None,
    quarantine: QuarantineArg = None,
    follow_symlinks: FollowSymlinksArg = False,
    jobs: JobsArg = None,
    patient: PatientSelectArg = None,
    study: StudySelectArg = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-identify INPUT... into OUT: sealed originals restored, markers removed; fails closed (exit 4).

    Every input is sanitized first (what comes back from outside is untrusted);
    give the --option/--policy used by deid so that the private elements it kept
    are kept here too. --patient/--study restore part of a tree; the other files
    are counted not-selected.
    """
    from dicomcloak.batch.reidentify import ReidSettings
    from dicomcloak.batch.run import default_jobs
    from dicomcloak.batch.selection import Selection
    from dicomcloak.io.inputs import iter_inputs

    if (private_key is None) == (vault is None) or (vault is not None and trusted_sealer):
        raise UsageError(
            "give exactly one of --private-key (embedded) or --vault (vault)",
            reference="reid-mode",
            hint="embedded: --private-key KEY.pem [--cert CERT.pem] [--trusted-sealer CERT.pem]; "
            "vault: --vault URL --key FILE",
        )
    out = out.resolve()
    run = (run_dir or default_run_dir(out)).resolve()
    qdir = (quarantine or run / "quarantine").resolve()
    paths = gather_inputs(inputs, from_list, out, run, qdir, "reid")
    items = list(iter_inputs(paths, follow_symlinks=follow_symlinks))
    the_policy = load_policy(option, policy, strict_table=strict_table)
    selection = Selection.of(patient or (), study or ())
    settings = ReidSettings(
        out, run, qdir, len(paths) > 1, the_policy, history=history(out, run),
        jobs=jobs or default_jobs(), selection=selection,
    )
    if private_key is not None:
        owner = _embedded_keys(private_key, cert, trusted_sealer or [], accept_unverified)
        summary = _embedded_run(items, owner, audit, settings)
    else:
        assert vault is not None  # checked above
        summary = _vault_run(items, vault, key, audit, settings)
    _warn_skipped(summary)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2, sort_keys=True))
    else:
        print(render_reid_summary(summary))
    if summary.quarantined:
        raise typer.Exit(int(ExitCode.QUARANTINED))


def _vault_run(
    items: list[Any], url: str, key: Path | None, audit: str | None, settings: ReidSettings
) -> RunSummary:
    """Vault mode: the vault opened here (its key checked before any work, the run audited in it) and
    by each process that restores (a connection of its own)."""
    from dataclasses import replace

    from dicomcloak.batch.reidentify import run_reid
    from dicomcloak.batch.restoring import VaultKeys
    from dicomcloak.cli.vault import load_keyring_from
    from dicomcloak.vault import Vault

    ring = load_keyring_from(key)
    with Vault.open(url, ring) as store:
        keys = VaultKeys(url, ring)
        facts = {"mode": "vault", "vault": url.split(":", 1)[0]}
        settings = replace(settings, facts=facts, audit_url=audit or url)
        with _audit_log(audit) if audit is not None else nullcontext(store.audit) as log:
            return _audited(log, "vault", settings, lambda: run_reid(items, keys, settings))


def _embedded_run(
    items: list[Any], owner: tuple[EmbeddedKeys, int], audit: str | None, settings: ReidSettings
) -> RunSummary:
    """Embedded mode: the owner's keys (and how many trusted sealers), the run audited in ``--audit`` or,
    always (architecture.md decision 3), in the run directory's own log."""
    from dataclasses import replace

    from dicomcloak.batch.reidentify import run_reid
    from dicomcloak.batch.sealing import embedded_audit_url

    keys, trusted = owner
    url = audit or embedded_audit_url(settings.run_dir)
    settings = replace(settings, facts={"mode": "embedded", "trusted_sealers": trusted}, audit_url=url)
    make_run_dir(settings.run_dir)
    with _audit_log(url) as log:
        return _audited(log, "embedded", settings, lambda: run_reid(items, keys, settings))


def _embedded_keys(
    private_key: Path, cert: Path | None, trusted_sealer: list[Path], accept_unverified: bool
) -> tuple[EmbeddedKeys, int]:
    """The owner's key (its passphrase asked once, here) and the trusted sealers, as the workers get them."""
    from dicomcloak.batch.keyfiles import read_trusted_certificates
    from dicomcloak.batch.restoring import EmbeddedKeys

    pems, count = read_trusted_certificates(trusted_sealer)
    owner = _owner(private_key, cert)
    return EmbeddedKeys.of(owner, pems, accept_unverified=accept_unverified), count


def _warn_skipped(summary: RunSummary) -> None:
    """One warning when the walk skipped entries (those a --patient/--study left out are not a warning)."""
    from dicomcloak.batch.selection import NOT_SELECTED

    reasons = {code: count for code, count in summary.skip_reasons.items() if code != NOT_SELECTED}
    if reasons:
        listed = ", ".join(f"{code}: {count}" for code, count in sorted(reasons.items()))
        warn(f"{sum(reasons.values())} entries skipped ({listed}): "
             f"listed by index in {summary.run.get('report', 'the report')}")


def _audit_facts(summary: RunSummary, settings: ReidSettings) -> dict[str, object]:
    """What the audit trail records of a run: counts only (architecture.md decision 7).

    A selection is recorded by how many values were given, never the values: an
    original ID typed by mistake must not reach the log.
    """
    selection = settings.selection
    return {
        "jobs": summary.run.get("jobs", 1),
        "selected": {"patients": len(selection.patients), "studies": len(selection.studies)},
        "not_selected": summary.run.get("not_selected", 0),
        "files": summary.files,
        "written": summary.written,
        "quarantined": summary.quarantined,
        "skipped": summary.skipped,
        "restored_or_mapped": summary.changed_attributes,
        "modes": summary.run.get("modes", {}),
        "unbound": summary.run.get("unbound", 0),
        "unverified": summary.run.get("unverified", 0),
        "sealers": summary.run.get("sealers", {}),
    }


@contextmanager
def _audit_log(url: str) -> Iterator[AuditLog]:
    from dicomcloak.audit import AuditLog

    log = AuditLog.open(url)
    try:
        yield log
    finally:
        log.close()


def _audited(
    log: AuditLog, mode: str, settings: ReidSettings, run: Callable[[], RunSummary]
) -> RunSummary:
    """Run a re-identification and audit it, refused attempts included (reference code, never values)."""
    try:
        summary = run()
    except DicomcloakError as error:
        log.append("reidentify-refused", mode=mode, reference=error.reference)
        raise
    log.append("reidentify", **_audit_facts(summary, settings))
    return summary


def _owner(private_key: Path, cert: Path | None) -> OwnerKey:
    from dicomcloak.batch.keyfiles import load_owner
    from dicomcloak.cli._common import warn_if_exposed
    from dicomcloak.cli._passphrase import passphrase_for

    owner = load_owner(private_key, cert, lambda: passphrase_for(private_key))
    warn_if_exposed(private_key.resolve(), "private key")
    return owner


def _trust_lines(facts: dict[str, Any]) -> list[str]:
    """Files restored from originals not known to be theirs, or not integrity-checked: said, never silent."""
    notes = {
        "unbound": "originals not bound to their file: made before binding, or by another tool",
        "unverified": "embedded seals no trusted sealer signed (--accept-unverified)",
    }
    lines = [f"  {name:<20}{facts[name]}  ({note})" for name, note in notes.items() if facts.get(name)]
    sealers = ", ".join(f"{name}: {count}" for name, count in sorted(facts.get("sealers", {}).items()))
    return [*lines, f"  signed by           {sealers}"] if sealers else lines


def render_reid_summary(summary: RunSummary) -> str:
    """The human summary of a re-identification run."""
    facts = summary.run
    modes = ", ".join(f"{mode}: {count}" for mode, count in facts.get("modes", {}).items()) or "none"
    lines = [
        f"{summary.files} files in {summary.seconds:.1f} s",
        f"  re-identified       {summary.written}  ({modes})",
        f"  quarantined         {summary.quarantined}",
        f"  skipped             {summary.skipped - facts.get('not_selected', 0)}",
        *([f"  not selected        {facts['not_selected']}"] if facts.get("not_selected") else []),
        f"  restored/mapped     {summary.changed_attributes} attributes",
        *_trust_lines(facts),
        f"  output              {facts.get('output', '')}",
        f"  report              {facts.get('report', '')}",
    ]
    if summary.quarantined:
        lines.append(f"  quarantine          {facts.get('quarantine', '')}")
    return "\n".join(lines)

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
    JsonFlag,
    OptionsArg,
    PolicyFileArg,
    QuarantineArg,
    RunDirArg,
    StrictTableArg,
    handles_errors,
    load_policy,
)
from dicomcloak.cli._sealing import TrustedSealerArg
from dicomcloak.cli.deid import check_paths, default_run_dir, history, make_run_dir, warn_skipped
from dicomcloak.cli.vault import KeyArg
from dicomcloak.errors import DicomcloakError, UsageError

if TYPE_CHECKING:
    from dicomcloak.audit import AuditLog
    from dicomcloak.batch.report import RunSummary
    from dicomcloak.keys.cms import OwnerKey

__all__ = ["reid", "render_reid_summary"]


@handles_errors
def reid(
    inputs: Annotated[
        list[Path], typer.Argument(metavar="INPUT...", help="De-identified DICOM files, directories, zips.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output directory (mirrors the inputs' layout).")],
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
    as_json: JsonFlag = False,
) -> None:
    """Re-identify INPUT... into OUT: sealed originals restored, markers removed; fails closed (exit 4).

    Every input is sanitized first (what comes back from outside is untrusted);
    give the --option/--policy used by deid so that the private elements it kept
    are kept here too.
    """
    from dicomcloak.api import Reidentifier
    from dicomcloak.batch.reidentify import ReidSettings, run_reid
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
    check_paths([path.resolve() for path in inputs], out, run, qdir)
    items = list(iter_inputs(inputs, follow_symlinks=follow_symlinks))
    several = len(inputs) > 1
    the_policy = load_policy(option, policy, strict_table=strict_table)
    if private_key is not None:
        from dicomcloak.batch.sealing import embedded_audit_url
        from dicomcloak.cli._sealing import read_trusted_sealers

        trusted = read_trusted_sealers(trusted_sealer or [])
        owner = _owner(private_key, cert)
        reidentifier = Reidentifier(owner, accept_unverified=accept_unverified, trusted=trusted)
        facts: dict[str, Any] = {"mode": "embedded", "trusted_sealers": len(trusted)}
        # Always audited (architecture.md decision 3): with no --audit, in the run directory's own log.
        url = audit or embedded_audit_url(run)
        settings = ReidSettings(out, run, qdir, several, the_policy, facts, history(out, run), url)
        make_run_dir(run)
        with _audit_log(url) as log:
            summary = _audited(log, "embedded", lambda: run_reid(items, reidentifier, settings))
    else:
        from dicomcloak.cli.vault import open_vault

        assert vault is not None  # checked above
        with open_vault(vault, key) as store:
            reidentifier = Reidentifier(vault=store)
            facts = {"mode": "vault", "vault": vault.split(":", 1)[0]}
            url = audit or vault
            settings = ReidSettings(out, run, qdir, several, the_policy, facts, history(out, run), url)
            with _audit_log(audit) if audit is not None else nullcontext(store.audit) as log:
                summary = _audited(log, "vault", lambda: run_reid(items, reidentifier, settings))
    warn_skipped(summary)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2, sort_keys=True))
    else:
        print(render_reid_summary(summary))
    if summary.quarantined:
        raise typer.Exit(int(ExitCode.QUARANTINED))


def _audit_facts(summary: RunSummary) -> dict[str, object]:
    """What the audit trail records of a run: counts only (architecture.md decision 7)."""
    return {
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


def _audited(log: AuditLog, mode: str, run: Callable[[], RunSummary]) -> RunSummary:
    """Run a re-identification and audit it, refused attempts included (reference code, never values)."""
    try:
        summary = run()
    except DicomcloakError as error:
        log.append("reidentify-refused", mode=mode, reference=error.reference)
        raise
    log.append("reidentify", **_audit_facts(summary))
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
        f"  skipped             {summary.skipped}",
        f"  restored/mapped     {summary.changed_attributes} attributes",
        *_trust_lines(facts),
        f"  output              {facts.get('output', '')}",
        f"  report              {facts.get('report', '')}",
    ]
    if summary.quarantined:
        lines.append(f"  quarantine          {facts.get('quarantine', '')}")
    return "\n".join(lines)

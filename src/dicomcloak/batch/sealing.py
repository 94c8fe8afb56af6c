"""What a run's report says about sealing: how originals were sealed, and the audit head it saw.

The audit log of a run's seals (the vault's, ``--audit``, or in embedded-only
mode the run directory's own ``audit.db``) anchors its own head in its
metadata table (:mod:`dicomcloak.audit.log`). The report keeps a second copy:
the number of events and the head hash when it was written. Kept somewhere
the database's administrators cannot reach, a report exposes a truncation
that also rewrote the anchor (``audit verify --report``, docs/vault.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomcloak.errors import DicomcloakError

if TYPE_CHECKING:
    from dicomcloak.batch.worker import SealSettings

__all__ = ["audit_url", "embedded_audit_url", "recorded_head", "seal_facts"]


def embedded_audit_url(run_dir: Path) -> str:
    """The audit log of a run that seals in files only and was given no ``--audit``: ``RUN_DIR/audit.db``."""
    return f"sqlite:///{run_dir / 'audit.db'}"


def audit_url(seal: SealSettings, run_dir: Path) -> str:
    """Where a run's seals are audited: ``--audit``, else the vault, else the run directory's log."""
    return seal.audit_url or seal.vault_url or embedded_audit_url(run_dir)


def seal_facts(seal: SealSettings | None, run_dir: Path) -> dict[str, Any]:
    """How originals were sealed: recipients, the vault's database kind (never its URL), the audit head."""
    if seal is None:
        return {"embedded_recipients": 0, "vault": None, "audit": None}
    dialect = None if seal.vault_url is None else seal.vault_url.split(":", 1)[0]
    head = recorded_head(audit_url(seal, run_dir))
    return {"embedded_recipients": len(seal.recipients), "vault": dialect, "audit": head}


def recorded_head(url: str | None) -> dict[str, Any] | None:
    """``{"events": N, "head": HASH}`` of the audit log at ``url`` now; None without one.

    Informational: a log that cannot be read at this point (its errors stopped
    the run earlier, if they mattered) leaves the report without a head rather
    than without a report.
    """
    if url is None:
        return None
    import sqlalchemy as sa

    from dicomcloak.audit import AuditLog

    try:
        log = AuditLog.open(url)
    except (DicomcloakError, sa.exc.SQLAlchemyError):
        return None
    try:
        return log.head().to_dict()
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        log.close()

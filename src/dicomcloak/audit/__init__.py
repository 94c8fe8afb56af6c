"""The hash-chained audit log (an edge: SQLAlchemy, imported on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dicomcloak.audit.log import AuditLog

__all__ = ["AuditLog"]


def __getattr__(name: str) -> object:
    # Lazy: SQLAlchemy costs ~0.2 s to import; commands that never audit must not pay it.
    if name == "AuditLog":
        from dicomcloak.audit.log import AuditLog

        return AuditLog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

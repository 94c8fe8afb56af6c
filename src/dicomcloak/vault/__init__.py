"""The key vault: sealed originals and the pseudonym map under per-study keys (an edge: SQLAlchemy).

``Vault`` is imported on first use: SQLAlchemy costs ~0.2 s to import, and
commands that never touch the vault must not pay it. ``VaultRecord`` is light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dicomcloak.vault.record import OpenedRecord, VaultRecord

if TYPE_CHECKING:
    from dicomcloak.vault.store import Vault

__all__ = ["OpenedRecord", "Vault", "VaultRecord"]


def __getattr__(name: str) -> object:
    if name == "Vault":
        from dicomcloak.vault.store import Vault

        return Vault
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

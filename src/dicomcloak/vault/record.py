"""What the batch hands the vault: one instance's sealed-originals payload, by pseudonyms only."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["VaultRecord"]


@dataclass(frozen=True)
class VaultRecord:
    """One instance's originals to seal.

    ``patient``, ``study`` and ``instance`` are pseudonyms (the patient
    pseudonym, the de-identified Study and SOP Instance UIDs); ``payload`` is
    opaque bytes (the serialized original attributes). ``uid_pairs`` maps each
    pseudonym UID/ID of the instance to its original, for re-identifying
    objects made later on the de-identified data. ``repr`` shows no payload or
    original.
    """

    patient: str
    study: str
    instance: str
    payload: bytes = field(repr=False)
    uid_pairs: tuple[tuple[str, str], ...] = field(default=(), repr=False)

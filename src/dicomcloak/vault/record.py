"""What the batch hands the vault (sealed originals, by pseudonyms only); which record opens for a file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from dicomcloak.errors import SealError

__all__ = ["OpenedRecord", "VaultRecord", "choose_record"]


@dataclass(frozen=True)
class VaultRecord:
    """One instance's originals to seal.

    ``patient``, ``study`` and ``instance`` are pseudonyms (the patient
    pseudonym, the de-identified Study and SOP Instance UIDs); ``payload`` is
    opaque bytes (the serialized original attributes). ``uid_pairs`` maps each
    pseudonym UID/ID of the instance to its original, for re-identifying
    objects made later on the de-identified data. ``binding`` is the binding
    digest (:mod:`dicomcloak.io.binding`) of the output the record is made for:
    the record restores onto that output only (empty: unbound, for callers
    without one). ``repr`` shows no payload or original.
    """

    patient: str
    study: str
    instance: str
    payload: bytes = field(repr=False)
    uid_pairs: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    binding: bytes = b""


class OpenedRecord(NamedTuple):
    """A record's verified payload, and whether it was bound to the output it was opened for."""

    payload: bytes
    bound: bool


def choose_record(
    rows: Mapping[str, bytes], legacy: bytes | None, binding: bytes | None, where: str
) -> tuple[str | None, bytes, bool]:
    """Pick the sealed blob to open for one instance: (its binding for the AAD, the blob, bound).

    ``rows`` maps binding digests (hex) to the instance's bound records,
    ``legacy`` is its record of the first format (bound to the instance only),
    ``binding`` the binding digest of the file being re-identified (None: the
    caller has no file). In order: the record bound to this file; a record
    sealed without binding; the legacy record (both restore as before, and are
    reported unbound); with no file, the only record there is. Otherwise the
    records there are belong to other objects: ``vault-record-mismatch``.

    Raises
    ------
    SealError
        ``vault-record-mismatch``, ``vault-record-missing``.
    """
    wanted = None if binding is None else binding.hex()
    if wanted is not None and wanted in rows:
        return wanted, rows[wanted], True
    if "" in rows:
        return "", rows[""], False
    if legacy is not None:
        return None, legacy, False
    if wanted is None and len(rows) == 1:
        ((only, sealed),) = rows.items()
        return only, sealed, False
    if rows:
        raise SealError(
            f"the vault holds no record for this object: the records of {where} were made for other objects",
            reference="vault-record-mismatch",
            hint="the file changed after de-identification, or it is another object under the same "
            "UID; nothing was restored",
        )
    raise SealError(
        f"no vault record for {where}",
        reference="vault-record-missing",
        hint="was this instance de-identified with this vault (deid --vault)?",
    )

"""The whole dicomcloak exception tree, with stable reference codes and hints.

Every error the project raises derives from :class:`DicomcloakError`. Each
carries a kebab-case ``reference`` (stable, documented, safe to log), a
message and a hint. Messages name tags, paths chosen by the operator, and
reason codes; they never contain element values, because an element value
may be PHI (architecture.md decision 7).

::

    DicomcloakError
     +-- UsageError                 bad command line or API call        (exit 2)
     +-- ConfigError                bad policy file or settings         (exit 2)
     +-- KeyError_                  key missing, unreadable, malformed  (exit 3)
     +-- OutputError                output not writable                 (exit 3)
     +-- StoreError                 vault or audit database unreachable (exit 3)
     +-- SealError                  sealed originals cannot be opened   (exit 4)
     |                              (tampered, missing, shredded, wrong key); fail closed
     |    +-- VaultDatabaseError    the vault's database failed in use  (exit 4)
     |                              (busy past the wait, lost, full, broken); the run stops
     +-- InputError                 one input cannot be processed       (quarantined)
          +-- NotDicomError         not a DICOM file at all
          +-- ReadLimitError        a reading limit was exceeded
          +-- MalformedError        DICOM that cannot be parsed or is inconsistent
          +-- UnsafeContentError    the sanitizer (CDR) refused the instance
          +-- ProcessingError       de-identification of a parsed file failed

An :class:`InputError` never stops a run: the file is quarantined with its
``reference`` as reason code and the run goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError",
    "DicomcloakError",
    "InputError",
    "KeyError_",
    "MalformedError",
    "NotDicomError",
    "OutputError",
    "ProcessingError",
    "ReadLimitError",
    "SealError",
    "StoreError",
    "UnsafeContentError",
    "UsageError",
    "VaultDatabaseError",
]


class DicomcloakError(Exception):
    """Root of all dicomcloak errors.

    Parameters
    ----------
    reference:
        Stable kebab-case code, e.g. ``"key-file-missing"``; used as the
        quarantine reason code, in JSON output and in the docs.
    message:
        What went wrong. Must not contain element values.
    hint:
        What the user can do about it.
    """

    default_reference = "dicomcloak-error"

    def __init__(self, message: str, *, reference: str | None = None, hint: str = "") -> None:
        self.reference = reference or self.default_reference
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle with the reference and hint: errors cross process boundaries (pool workers)."""
        return (_rebuild, (type(self), self.message, self.reference, self.hint))

    def __str__(self) -> str:
        text = f"[{self.reference}] {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-ready description (reference, message, hint)."""
        return {"reference": self.reference, "message": self.message, "hint": self.hint}


class UsageError(DicomcloakError):
    """The command line or API call is wrong."""

    default_reference = "usage"


class ConfigError(DicomcloakError):
    """A policy file or setting is invalid."""

    default_reference = "config-invalid"


class KeyError_(DicomcloakError):  # noqa: N801, N818 - named for the key, not shadowing builtins.KeyError
    """The project key is missing, unreadable or malformed."""

    default_reference = "key-invalid"


class OutputError(DicomcloakError):
    """The output location cannot be written.

    ``path``, when set, is the file that could not be written. It stays in the
    process that raised the error (it is not pickled): the batch worker uses it
    to name only the directory the user gave when the path below it is an
    input's own name (:func:`dicomcloak.batch.worker.without_input_names`).
    """

    default_reference = "output-unwritable"
    path: Path | None = None


class StoreError(DicomcloakError):
    """The vault or audit database cannot be reached: no server, no such host or socket, refused
    credentials, no such database, a SQLite file that cannot be opened. An error of the environment,
    not of dicomcloak: reported with a hint, never as ``internal-error``, and never with the URL
    (it may hold a password).
    """

    default_reference = "vault-unreachable"


class SealError(DicomcloakError):
    """Sealed originals cannot be opened or written safely: integrity or key failure.

    Raised instead of returning anything when a vault record or wrapped key fails
    its AES-GCM tag, a record is missing, a study's data key was shredded, or the
    key ring does not hold the right wrapping key (architecture.md decision 3: fail
    closed). References: ``vault-record-missing``, ``vault-record-tampered``,
    ``vault-key-tampered``, ``vault-key-shredded``, ``vault-key-unknown``,
    ``vault-key-retired``, ``wrong-master-key``, ``audit-chain-broken``,
    ``audit-chain-truncated``; embedded
    mode (the Encrypted Attributes Sequence): ``seal-missing``, ``seal-wrong-key``,
    ``seal-tampered``, ``seal-mismatch`` (made for another instance),
    ``seal-signature-invalid``, ``seal-unverified`` (no trusted sealer signed it),
    ``seal-content-invalid``; the pseudonym
    map: ``vault-nothing-mapped``. A seal failure stops the run and nothing is
    written for the instance concerned.
    """

    default_reference = "seal-failed"


class VaultDatabaseError(SealError):
    """The vault's (or its audit log's) database failed while in use: originals could not be sealed or read.

    Typed at the store's edge from the database driver's error
    (:mod:`dicomcloak.audit.failures`), so it never reaches a worker as a bare
    driver exception and is never blamed on an input. References:
    ``vault-busy`` (still locked by another connection when the bounded
    retries ran out), ``vault-unreachable`` (the connection was lost: a
    stopped server, a network failure), ``vault-full`` (the database or the
    disk under it is full), ``vault-broken`` (anything else: a corrupt file, a
    missing table). The run stops with exit 4; a group of outputs whose
    originals could not be sealed is not written, and the run's report counts
    only what is on disk. Opening an unreachable vault before any work is a
    :class:`StoreError` (exit 3) instead.
    """

    default_reference = "vault-broken"


class InputError(DicomcloakError):
    """One input cannot be processed; it is quarantined and the run goes on."""

    default_reference = "input-error"


class NotDicomError(InputError):
    """The input is not a DICOM file."""

    default_reference = "not-dicom"


class ReadLimitError(InputError):
    """A reading limit (size, depth, element count, ...) was exceeded."""

    default_reference = "read-limit"


class MalformedError(InputError):
    """The input looks like DICOM but cannot be parsed consistently."""

    default_reference = "malformed"


class UnsafeContentError(InputError):
    """The sanitize stage quarantined the instance (executable preamble, embedded document, ...).

    The reference is the verdict's reason code (``docs/security.md``).
    """

    default_reference = "unsafe-content"


class ProcessingError(InputError):
    """De-identifying a parsed instance failed."""

    default_reference = "processing-failed"


def _rebuild(cls: type[DicomcloakError], message: str, reference: str, hint: str) -> DicomcloakError:
    """Unpickle a :class:`DicomcloakError` with the reference and hint it was raised with."""
    return cls(message, reference=reference, hint=hint)

"""The per-file step of a batch: read, sanitize, de-identify, write atomically or quarantine.

Workers read and write files themselves, so no dataset ever crosses a process
boundary: a task is an :class:`~dicomcloak.io.inputs.InputItem` (a few paths)
and its result a :class:`FileResult` (counts and codes, never PHI).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from enum import StrEnum
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dicomcloak.api import Deidentifier, Sealer
from dicomcloak.engine.outcome import Outcome, TagPath
from dicomcloak.errors import DicomcloakError, InputError, OutputError, ProcessingError
from dicomcloak.io.grouped import GroupedWriter
from dicomcloak.io.inputs import InputItem
from dicomcloak.io.layout import mirror_relpath, pseudonymous_relpath
from dicomcloak.io.quarantine import quarantine
from dicomcloak.io.reader import ReadLimits, read_dataset
from dicomcloak.io.staging import Tree
from dicomcloak.io.writer import encode_dataset_parts
from dicomcloak.keys import ProjectKey
from dicomcloak.policy.model import Policy
from dicomcloak.sanitize import classify_prefix, verdict_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydicom.dataset import Dataset

    from dicomcloak.keys import Keyring
    from dicomcloak.vault import Vault, VaultRecord

__all__ = [
    "ChangeKey",
    "Claims",
    "DirClaims",
    "FileResult",
    "Layout",
    "MemoryClaims",
    "SealSettings",
    "Status",
    "WorkerContext",
    "WorkerSettings",
    "build_context",
    "process_chunk",
    "process_item",
    "without_input_names",
]

#: One aggregated change: (tag path, action, rule source); paths are formatted once, in the report.
ChangeKey = tuple[TagPath, str, str]


class Layout(StrEnum):
    """How output paths are chosen."""

    PSEUDONYMOUS = "pseudonymous"  # <patient>/<study>/<series>/<sop>.dcm from pseudonyms only
    MIRROR = "mirror"  # the input's relative path, copied verbatim


class Status(StrEnum):
    """What happened to one input."""

    WRITTEN = "written"
    DUPLICATE = "duplicate"  # the same instance was already written in this run
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker needs, fixed for the run; picklable (sent once per worker)."""

    policy: Policy
    key: ProjectKey
    domain: str
    out_dir: Path
    quarantine_dir: Path
    layout: Layout = Layout.PSEUDONYMOUS
    several_roots: bool = False
    limits: ReadLimits | None = None  # None: the policy's (site policy [sanitize.limits])
    claims_dir: Path | None = None  # shared claim directory when several processes write
    seal: SealSettings | None = None  # sealing of the originals (embedded and/or vault), if asked
    deidentify: bool = True  # False: sanitize only (``dicomcloak sanitize``), mirrored paths

    @property
    def read_limits(self) -> ReadLimits:
        """The reading limits in force."""
        return self.limits or self.policy.sanitize.limits


@dataclass(frozen=True)
class SealSettings:
    """How originals are sealed (DESIGN.md decision 3); picklable, sent once per worker.

    ``recipients`` are PEM certificates (embedded mode); ``vault_url`` with the
    ``keyring`` seals a record per instance in the vault, ``audit_url`` moves
    its audit trail to another database.
    """

    recipients: tuple[bytes, ...] = ()
    vault_url: str | None = None
    keyring: Keyring | None = None
    audit_url: str | None = None


@dataclass(frozen=True, slots=True)
class FileResult:
    """The outcome of one input, small and picklable; carries no PHI.

    ``out_relpath`` is set only in the pseudonymous layout (where it is built from
    pseudonyms); ``changes`` counts applied rules by (tag path, action, source). In a
    chunk, the last result carries the counts of the whole chunk (see process_chunk).
    ``event`` is the sanitize verdict's audit event as one JSON line (codes only).
    """

    index: int
    status: Status
    reason: str = ""
    n_changes: int = 0
    out_relpath: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    changes: tuple[tuple[ChangeKey, int], ...] = ()
    event: str = ""

    def __reduce__(self) -> tuple[type[FileResult], tuple[object, ...]]:
        """Pickle as a constructor call on a tuple: dataclasses' per-field state of slotted classes
        runs in Python, on both ends of every result a pool worker sends (half the cost, measured)."""
        return (FileResult, _RESULT_FIELDS(self))


class Claims(Protocol):
    """Who writes an output path first: later inputs with the same path are duplicates."""

    def claim(self, relpath: str) -> bool:
        """Return True if ``relpath`` was free and is now ours."""


class MemoryClaims:
    """Claims for a single process: a set."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, relpath: str) -> bool:
        """Return True the first time ``relpath`` is seen."""
        if relpath in self._taken:
            return False
        self._taken.add(relpath)
        return True


class DirClaims:
    """Claims shared by worker processes: one ``O_EXCL`` marker file per output path."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def claim(self, relpath: str) -> bool:
        """Atomically create the marker for ``relpath``; False if another worker did."""
        name = hashlib.sha256(relpath.encode("utf-8", "surrogateescape")).hexdigest()[:40]
        try:
            os.close(os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        return True


@dataclass
class WorkerContext:
    """A worker's long-lived state: the settings and the Deidentifier built once from them.

    With a vault, the writer seals each group's records in one transaction on
    its commit thread before the group's files are renamed into place.
    """

    settings: WorkerSettings
    deidentifier: Deidentifier
    claims: Claims
    writer: GroupedWriter = field(default_factory=lambda: GroupedWriter(background=True))
    sealer: Sealer | None = None
    vault: Vault | None = None

    def close(self) -> None:
        """Commit the last group, then close the vault (in that order: the last group seals there)."""
        try:
            self.writer.close()
        except OutputError as error:
            raise _named_safely(error, self.settings) from None
        finally:
            if self.vault is not None:
                self.vault.close()
                self.vault = None


def build_context(settings: WorkerSettings) -> WorkerContext:
    """Build the Deidentifier once; the policy and key are never re-read per file."""
    deidentifier = Deidentifier(settings.policy, settings.key, settings.domain)
    claims: Claims = MemoryClaims() if settings.claims_dir is None else DirClaims(settings.claims_dir)
    seal = settings.seal
    if seal is None:
        return WorkerContext(settings, deidentifier, claims, _writer(settings))
    from dicomcloak.keys.cms import load_certificate

    certificates = [load_certificate(pem, "--recipient") for pem in seal.recipients]
    sealer = Sealer(certificates, vault=seal.vault_url is not None)
    vault = _open_vault(seal)
    hook = None if vault is None else vault.seal_records
    return WorkerContext(settings, deidentifier, claims, _writer(settings, hook), sealer, vault)


def _writer(settings: WorkerSettings, hook: Callable[[list[Any]], None] | None = None) -> GroupedWriter:
    """Outputs committed in groups; their temporary files in the output's ``.dicomcloak-tmp``."""
    return GroupedWriter(background=True, before_commit=hook, tree=Tree(settings.out_dir))


def _open_vault(seal: SealSettings) -> Vault | None:
    if seal.vault_url is None or seal.keyring is None:
        return None
    from dicomcloak.vault import Vault

    return Vault.open(seal.vault_url, seal.keyring, audit_url=seal.audit_url)


def process_item(
    item: InputItem, ctx: WorkerContext, index: int = 0, counts: Counter[ChangeKey] | None = None
) -> FileResult:
    """De-identify one input and write it, or quarantine it with its reason code.

    Only :class:`~dicomcloak.errors.InputError` is about the input. Any other
    :class:`~dicomcloak.errors.DicomcloakError` and any ``OSError`` (an
    unwritable output, a full disk) stop the run. Other exceptions are bugs
    triggered by one input: that input is quarantined as ``internal-error``
    (hostile input never crashes a run, DESIGN.md decision 5).
    """
    try:
        try:
            return _deidentify_one(index, item, ctx, counts)
        except InputError as error:
            return _quarantined(index, item, error, ctx)
        except (DicomcloakError, OSError):
            raise
        except Exception as error:  # noqa: BLE001 - one hostile input must not stop the run
            # The type name is safe to record; the message may hold values and is dropped.
            wrapped = ProcessingError(f"unexpected {type(error).__name__}", reference="internal-error")
            return _quarantined(index, item, wrapped, ctx)
    except OutputError as error:  # writing the output or the quarantined original
        raise _named_safely(error, ctx.settings) from None


def without_input_names(error: OutputError, quarantine_dir: Path, mirrored_out: Path | None) -> OutputError:
    """``error``, naming only the quarantine or output directory when the failed path is an input's name.

    Quarantined originals and mirrored outputs (``--layout mirror``, ``sanitize``,
    ``reid``; ``mirrored_out``, None when outputs are named by pseudonyms) keep
    their inputs' relative paths, and input folder and file names often carry
    patient names and IDs: an error message is no place for them.
    """
    path = error.path
    if path is not None and path.is_relative_to(quarantine_dir):
        return _hidden(error, "quarantine", quarantine_dir)
    if path is not None and mirrored_out is not None and path.is_relative_to(mirrored_out):
        return _hidden(error, "output", mirrored_out)
    return error


def _named_safely(error: OutputError, settings: WorkerSettings) -> OutputError:
    """:func:`without_input_names` for this run: output paths are the inputs' unless pseudonymous."""
    pseudonymous = settings.deidentify and settings.layout is Layout.PSEUDONYMOUS
    return without_input_names(error, settings.quarantine_dir, None if pseudonymous else settings.out_dir)


def _hidden(error: OutputError, what: str, root: Path) -> OutputError:
    hidden = OutputError(
        f"cannot write a file in the {what} directory {root} (its path, an input's name, is not shown)",
        reference=error.reference,
        hint=error.hint,
    )
    hidden.path = error.path
    return hidden


def _deidentify_one(
    index: int, item: InputItem, ctx: WorkerContext, counts: Counter[ChangeKey] | None
) -> FileResult:
    settings = ctx.settings
    limits = settings.read_limits
    data = item.read_bytes(limits.max_file_bytes)
    # The pixels are streamed through to the output: shared with `data`, not copied.
    source = read_dataset(data, limits, share_pixel_data=True)
    sanitized = ctx.deidentifier.sanitize(source, then_deidentify=settings.deidentify)
    event = _event(verdict_event(index, "", sanitized.verdict.preamble, sanitized.changes))
    record = None
    if settings.deidentify:
        outcome = ctx.deidentifier.deidentify_sanitized(sanitized)
        dataset, all_changes, relpath = outcome.dataset, outcome.changes, _relpath(outcome, item, settings)
        # The originals come from the dataset as read: both stages' change paths address it.
        # Embedded sealing adds the Encrypted Attributes Sequence to outcome.dataset.
        record = _seal(source, outcome, ctx)
    else:
        dataset, all_changes = sanitized.dataset, sanitized.changes
        relpath = mirror_relpath(item, settings.several_roots)
    shown = relpath if settings.layout is Layout.PSEUDONYMOUS else ""  # mirrored paths may hold PHI
    payload = encode_dataset_parts(dataset)
    if not ctx.claims.claim(relpath):
        if settings.layout is Layout.MIRROR:
            raise InputError("another input already wrote this output path", reference="output-collision")
        return FileResult(index, Status.DUPLICATE, "duplicate-instance", 0, shown, len(data), event=event)
    ctx.writer.submit(settings.out_dir / relpath, payload, record)  # renamed when its group commits
    n_changes = len(all_changes)
    if counts is None:
        changes = tuple(Counter(map(_CHANGE_KEY, all_changes)).items())
    else:  # a chunk counts its files' changes together (process_chunk)
        counts.update(map(_CHANGE_KEY, all_changes))
        changes = ()
    size = sum(map(len, payload))
    return FileResult(index, Status.WRITTEN, "", n_changes, shown, len(data), size, changes, event)


def _event(record: dict[str, object]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def _seal(source: Dataset, outcome: Outcome, ctx: WorkerContext) -> VaultRecord | None:
    """Seal the originals: into the output (embedded) and/or as the vault record of this instance.

    A failure here is a :class:`~dicomcloak.errors.SealError` and stops the run:
    an output is never written unsealed when sealing was asked for.
    """
    if ctx.sealer is None:
        return None
    sealed = ctx.sealer.seal(source, outcome)
    if ctx.vault is None:
        return None
    from dicomcloak.vault import VaultRecord

    patient, study, instance = outcome.patient_pseudonym, outcome.study_uid, outcome.sop_instance_uid
    return VaultRecord(patient, study, instance, sealed.payload, sealed.uid_pairs)


def _relpath(outcome: Outcome, item: InputItem, settings: WorkerSettings) -> str:
    if settings.layout is Layout.MIRROR:
        return mirror_relpath(item, settings.several_roots)
    return pseudonymous_relpath(
        outcome.patient_pseudonym, outcome.study_uid, outcome.series_uid, outcome.sop_instance_uid
    )


def _quarantined(index: int, item: InputItem, error: InputError, ctx: WorkerContext) -> FileResult:
    quarantine(item, error, ctx.settings.quarantine_dir)
    event = _event(verdict_event(index, error.reference, classify_prefix(_head(item))))
    return FileResult(index, Status.QUARANTINED, error.reference, event=event)


def _head(item: InputItem) -> bytes:
    """The first 132 bytes of an input (preamble and ``DICM``), for the verdict event."""
    try:
        with item.open() as handle:
            return handle.read(132)
    except Exception:  # noqa: BLE001 - an unreadable input has no preamble to classify
        return b""


def process_chunk(tasks: list[tuple[int, InputItem]], ctx: WorkerContext) -> list[FileResult]:
    """Process a chunk of inputs; their outputs are committed in groups by the context's writer.

    Groups follow the writer's own bounds, not chunks (a pool's chunks are small,
    and each commit is a journal commit); the caller closes the writer at the end.
    The chunk's change counts are summed into its last result (the report only
    ever uses their sum), so a pool ships one small table per chunk, not one per file;
    they are counted as they come, in C (``Counter.update`` over ``attrgetter``).
    """
    counts: Counter[ChangeKey] = Counter()
    results = [process_item(item, ctx, index, counts) for index, item in tasks]
    if results and counts:
        results[-1] = replace(results[-1], changes=tuple(counts.items()))
    return results


_RESULT_FIELDS = attrgetter(
    "index", "status", "reason", "n_changes", "out_relpath", "bytes_in", "bytes_out", "changes", "event"
)

#: The aggregation key of a change: (tag path, action, rule source).
_CHANGE_KEY = attrgetter("path", "action", "source")

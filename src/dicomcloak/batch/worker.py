"""The per-file step of a batch: read, sanitize, de-identify, write atomically or quarantine.

Workers read and write files themselves, so no dataset ever crosses a process
boundary: a task is an :class:`~dicomcloak.io.inputs.InputItem` (a few paths)
and its result a :class:`FileResult` (counts and codes, never PHI).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomcloak.api import Deidentifier, Sealed, Sealer
from dicomcloak.batch.claims import (
    Claims,
    Contents,
    OnConflict,
    content_digest,
    instance_key,
    keep_both,
    make_claims,
)
from dicomcloak.batch.modality import modality_code
from dicomcloak.batch.names import without_input_names
from dicomcloak.engine.outcome import Outcome, TagPath
from dicomcloak.errors import DicomcloakError, InputError, OutputError, ProcessingError
from dicomcloak.io.grouped import GroupedWriter
from dicomcloak.io.inputs import InputItem
from dicomcloak.io.layout import mirror_relpath, pseudonymous_relpath
from dicomcloak.io.mediaset import media_relpath
from dicomcloak.io.quarantine import quarantine
from dicomcloak.io.reader import ReadLimits, read_dataset, read_input
from dicomcloak.io.staging import Tree
from dicomcloak.io.writer import encode_dataset_bound, encode_dataset_parts, encode_dataset_sealed
from dicomcloak.keys import ProjectKey
from dicomcloak.pixels.stage import PixelRefusedError
from dicomcloak.policy.model import Policy
from dicomcloak.sanitize import classify_prefix, verdict_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydicom.dataset import Dataset

    from dicomcloak.keys import Keyring
    from dicomcloak.pixels.report.views import ItemView
    from dicomcloak.pixels.settings import PixelSettings
    from dicomcloak.pixels.stage import PixelStage
    from dicomcloak.vault import Vault, VaultRecord

__all__ = [
    "ChangeKey",
    "FileResult",
    "Layout",
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
    DUPLICATE = "duplicate"  # the same data set (or, for sanitize, output path) was already written
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
    on_conflict: OnConflict = OnConflict.QUARANTINE  # another object under an instance already written
    pixels: PixelSettings | None = None  # the pixel stage (docs/pixels.md); None or mode off: not run
    pixel_report: int = 0  # report cards (thumbnails, PHI) each worker process makes for the run directory
    workers: int = 1  # worker processes of the run: they share the cores (the OCR engine's threads)
    # The gateway's needs (docs/gateway.md): claims that outlive the received inputs, and each output
    # durable before its sender is answered.
    claim_digests: bool = False  # claims record content digests: the first input need not be read again
    commit_each: bool = False  # each output synced and renamed at once, on the calling thread
    private_output: bool = False  # directories made in out_dir are mode 0700

    @property
    def read_limits(self) -> ReadLimits:
        """The reading limits in force."""
        return self.limits or self.policy.sanitize.limits


@dataclass(frozen=True)
class SealSettings:
    """How originals are sealed (architecture.md decision 3); picklable, sent once per worker.

    ``recipients`` are PEM certificates (embedded mode), ``sealer_key`` the
    PEM private key that signs each embedded seal; ``vault_url`` with the
    ``keyring`` seals a record per instance in the vault, ``audit_url`` moves
    its audit trail to another database. ``vault_wait``: seconds a busy
    (locked) vault is waited for before the run stops (None: the vault's
    default, :data:`dicomcloak.audit.failures.DEFAULT_WAIT`).
    """

    recipients: tuple[bytes, ...] = ()
    vault_url: str | None = None
    keyring: Keyring | None = None
    audit_url: str | None = None
    vault_wait: float | None = None
    sealer_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class FileResult:
    """The outcome of one input, small and picklable; carries no PHI.

    ``out_relpath`` is set only in the pseudonymous layout (where it is built from
    pseudonyms); ``changes`` counts applied rules by (tag path, action, source). In a
    chunk, the last result carries the counts of the whole chunk (see process_chunk).
    ``event`` is the sanitize verdict's audit event as one JSON line (codes only).
    ``conflict_with`` is the index of the input this one is in UID conflict with
    (quarantined, or written under a UID of its own), -1 for none. ``pixels`` is
    the pixel stage's status (empty when the stage is off); ``pixel_view`` the
    instance's card for the run directory's pixel report, the one field with
    PHI (thumbnails of the original image), never written anywhere else.
    ``modality`` is the instance's Modality (0008,0060) as a defined term or
    ``other`` (:func:`~dicomcloak.batch.modality.modality_code`: never free
    text), counted per outcome in the run report; empty when not known.
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
    conflict_with: int = -1
    pixels: str = ""
    pixel_view: ItemView | None = None
    modality: str = ""
    instance: str = ""
    chunk: tuple[int, ...] = ()

    def __reduce__(self) -> tuple[type[FileResult], tuple[object, ...]]:
        """Pickle as a constructor call on a tuple: dataclasses' per-field state of slotted classes
        runs in Python, on both ends of every result a pool worker sends (half the cost, measured)."""
        return (FileResult, _RESULT_FIELDS(self))


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
    contents: Contents = field(default_factory=Contents)  # digests of inputs that share a UID
    pixels: PixelStage | None = None  # the pixel stage, when it runs

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
    claims = make_claims(settings.claims_dir, digests=settings.claim_digests)
    seal = settings.seal
    if seal is None:
        return WorkerContext(settings, deidentifier, claims, _writer(settings), pixels=_pixel_stage(settings))
    from dicomcloak.keys.cms import load_certificate
    from dicomcloak.keys.sealing import load_sealer_key

    certificates = [load_certificate(pem, "--recipient") for pem in seal.recipients]
    signer = None if seal.sealer_key is None else load_sealer_key(seal.sealer_key, "--sealer-key")
    sealer = Sealer(certificates, vault=seal.vault_url is not None, signer=signer)
    vault = _open_vault(seal)
    hook = None if vault is None else vault.seal_records
    writer = _writer(settings, hook)
    return WorkerContext(settings, deidentifier, claims, writer, sealer, vault, pixels=_pixel_stage(settings))


def _pixel_stage(settings: WorkerSettings) -> PixelStage | None:
    """The pixel stage when ``deid`` runs it; None keeps Pixel Data streamed through untouched."""
    from dicomcloak.pixels.model import PixelMode

    if not settings.deidentify or settings.pixels is None or settings.pixels.mode is PixelMode.OFF:
        return None
    from dicomcloak.pixels.stage import PixelStage

    return PixelStage(settings.pixels, report=settings.pixel_report, workers=settings.workers)


def _writer(settings: WorkerSettings, hook: Callable[[list[Any]], None] | None = None) -> GroupedWriter:
    """Outputs committed in groups; their temporary files in the output's ``.dicomcloak-tmp``.

    ``commit_each``: groups of one, committed on the calling thread when
    submitted, so the output is in place (and its vault record sealed) when
    :func:`process_item` returns.
    """
    tree = Tree(settings.out_dir, private=settings.private_output)
    if settings.commit_each:
        return GroupedWriter(max_files=1, before_commit=hook, tree=tree)
    return GroupedWriter(background=True, before_commit=hook, tree=tree)


def _open_vault(seal: SealSettings) -> Vault | None:
    if seal.vault_url is None or seal.keyring is None:
        return None
    from dicomcloak.vault import Vault

    if seal.vault_wait is None:
        return Vault.open(seal.vault_url, seal.keyring, audit_url=seal.audit_url)
    return Vault.open(seal.vault_url, seal.keyring, audit_url=seal.audit_url, wait=seal.vault_wait)


def process_item(
    item: InputItem, ctx: WorkerContext, index: int = 0, counts: Counter[ChangeKey] | None = None
) -> FileResult:
    """De-identify one input and write it, or quarantine it with its reason code.

    Only :class:`~dicomcloak.errors.InputError` is about the input. Any other
    :class:`~dicomcloak.errors.DicomcloakError` and any ``OSError`` (an
    unwritable output, a full disk; a vault that cannot seal a group, typed
    at its edge whatever the database said) stop the run. Other exceptions
    are bugs triggered by one input: that input is quarantined as
    ``internal-error`` (hostile input never crashes a run, architecture.md decision
    5). The writer never raises those for another file's group (it types them).
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


def _named_safely(error: OutputError, settings: WorkerSettings) -> OutputError:
    """:func:`without_input_names` for this run: output paths are the inputs' unless pseudonymous."""
    pseudonymous = settings.deidentify and settings.layout is Layout.PSEUDONYMOUS
    return without_input_names(error, settings.quarantine_dir, None if pseudonymous else settings.out_dir)


def _deidentify_one(
    index: int, item: InputItem, ctx: WorkerContext, counts: Counter[ChangeKey] | None
) -> FileResult:
    settings = ctx.settings
    limits = settings.read_limits
    data = read_input(item, limits)  # a large input's element headers are walked first
    # The pixels are streamed through to the output: shared with `data`, not copied.
    source = read_dataset(data, limits, share_pixel_data=True)
    sanitized = ctx.deidentifier.sanitize(source, then_deidentify=settings.deidentify)
    event = _event(verdict_event(index, "", sanitized.verdict.preamble, sanitized.changes))
    modality = modality_code(sanitized.dataset.get("Modality"))  # a defined term or "other": no PHI
    if settings.deidentify:
        outcome = ctx.deidentifier.deidentify_sanitized(sanitized)
        all_changes = outcome.changes
        status, view, cleaned = _pixels(index, source, outcome, ctx)
        placed = _placed(index, item, data, source, outcome, ctx, cleaned)
    else:  # ``dicomcloak sanitize``: mirrored paths, the first input of a path wins
        status, view = "", None
        all_changes, relpath = sanitized.changes, mirror_relpath(item, settings.several_roots)
        placed = _Placed(relpath, encode_dataset_parts(sanitized.dataset))
        if not ctx.claims.claim_path(relpath):
            placed = _duplicate(index, None, item, settings)
    if isinstance(placed, FileResult):  # a quarantined UID conflict, or a duplicate (read, accepted)
        if placed.status is Status.DUPLICATE:
            return replace(placed, bytes_in=len(data), event=event, pixels=status, modality=modality)
        return replace(placed, modality=modality)
    # Renamed when its group commits; counted written only if it is (batch.placement).
    ctx.writer.submit(settings.out_dir / placed.relpath, placed.payload, placed.record, tag=index)
    n_changes = len(all_changes)
    if counts is None:
        changes = tuple(Counter(map(_CHANGE_KEY, all_changes)).items())
    else:  # a chunk counts its files' changes together (process_chunk)
        counts.update(map(_CHANGE_KEY, all_changes))
        changes = ()
    size = sum(map(len, placed.payload))
    shown = placed.relpath if settings.layout is Layout.PSEUDONYMOUS else ""  # mirrored paths may hold PHI
    return FileResult(
        index, Status.WRITTEN, "", n_changes, shown, len(data), size, changes, event, placed.conflict_with,
        status, view, modality, placed.instance,
    )


def _pixels(
    index: int, source: Dataset, outcome: Outcome, ctx: WorkerContext
) -> tuple[str, ItemView | None, bool]:
    """Run the pixel stage on the de-identified data set: its status, report card, and whether it cleaned.

    Between de-identification and sealing (issue 14): the originals' Pixel Data
    is sealed only when the stage changed it. Raises ``PixelRefusedError`` (an
    :class:`InputError`: the input is quarantined) when it will not pass the
    instance on.
    """
    if ctx.pixels is None:
        return "", None, False
    done = ctx.pixels.clean(source, outcome.dataset, f"#{index} {outcome.sop_instance_uid}")
    return done.result.status.value, done.view, done.cleaned


@dataclass(frozen=True, slots=True)
class _Placed:
    """An output ready to write: where, its encoded parts, its vault record, the input it conflicts with."""

    relpath: str
    payload: list[bytes]
    record: VaultRecord | None = None
    conflict_with: int = -1
    instance: str = ""  # its claim key (pseudonymous UIDs)


def _placed(
    index: int, item: InputItem, data: bytes, source: Dataset, outcome: Outcome, ctx: WorkerContext,
    pixels: bool = False,
) -> _Placed | FileResult:
    """Seal, encode and claim a de-identified instance: an output to write, or why there is none.

    Encoded before its instance is claimed, so a claim means a written output. A
    later input of a claimed instance is a duplicate or a UID conflict, set
    aside or kept under a UID of its own (:mod:`dicomcloak.batch.claims`).
    Sealing failures are :class:`~dicomcloak.errors.SealError` and stop the run.
    ``pixels``: the pixel stage cleaned the pixels, whose originals are sealed too.
    """
    settings = ctx.settings
    # Originals from the dataset as read (both stages' change paths address it).
    sealed = ctx.sealer.capture(source, outcome, pixels=pixels) if ctx.sealer is not None else None
    uids = outcome.study_uid, outcome.sop_instance_uid  # decoded once: for the claim, the path, the record
    payload, binding = _encoded(outcome.dataset, ctx, sealed, uids[1])
    original = ""  # the original SOP Instance UID of an object kept under a UID of its own
    limits = settings.read_limits
    digest = content_digest(data, limits) if ctx.claims.records_digests else None
    first = ctx.claims.claim(instance_key(*uids), index, item, digest)
    conflict = None if first is None else ctx.contents.compare(first, index, data, limits, digest)
    if first is not None and conflict is None:
        return _duplicate(index, outcome, item, settings)
    if conflict is not None:
        if settings.on_conflict is OnConflict.QUARANTINE:
            result = _quarantined(index, item, conflict.error(), ctx, conflict.details())
            return replace(result, conflict_with=conflict.first.index)
        sop, original = keep_both(source, outcome, conflict.digest, ctx.deidentifier.pseudonymizer)
        uids, (payload, binding) = (uids[0], sop), _encoded(outcome.dataset, ctx, sealed, sop)
        if ctx.claims.claim(instance_key(*uids), index, item, digest):  # its UID comes from its content:
            return _duplicate(index, outcome, item, settings)  # the same object, already written
    relpath = _relpath(outcome, item, settings, uids)
    if (settings.layout is Layout.MIRROR or item.media) and not ctx.claims.claim_path(relpath):
        raise InputError("another input already wrote this output path", reference="output-collision")
    record = _record(outcome, uids, sealed, binding, original) if ctx.vault is not None else None
    first_index = -1 if conflict is None else conflict.first.index
    return _Placed(relpath, payload, record, first_index, instance_key(*uids))


def _encoded(
    dataset: Dataset, ctx: WorkerContext, sealed: Sealed | None, sop: str
) -> tuple[list[bytes], bytes]:
    """The output's parts, and its binding digest when a seal or a vault record is bound to it (else empty).

    An embedded seal is made from the digest of the parts the encoder made and
    encoded in its place (:func:`~dicomcloak.io.writer.encode_dataset_sealed`):
    one encoding, the seal bound to this output's SOP Instance UID ``sop``.
    """
    if sealed is not None and sealed.embedded and ctx.sealer is not None:
        return encode_dataset_sealed(dataset, partial(ctx.sealer.seal_element, sealed, sop))
    return (encode_dataset_parts(dataset), b"") if ctx.vault is None else encode_dataset_bound(dataset)


def _duplicate(index: int, outcome: Outcome | None, item: InputItem, settings: WorkerSettings) -> FileResult:
    """A duplicate; with the output it duplicates when pseudonymous (mirrored paths may hold PHI)."""
    shown = "" if outcome is None or settings.layout is Layout.MIRROR else _relpath(outcome, item, settings)
    return FileResult(index, Status.DUPLICATE, "duplicate-instance", out_relpath=shown)


def _record(
    outcome: Outcome, uids: tuple[str, str], sealed: Sealed | None, to: bytes, original: str
) -> VaultRecord | None:
    """This instance's vault record, bound to its output by the output's binding digest ``to``.

    ``original`` is the original SOP Instance UID of an object written under a
    UID of its own (``--uid-conflicts keep-both``): its pair joins the map.
    """
    if sealed is None:
        return None
    from dicomcloak.vault import VaultRecord

    pairs = (*sealed.uid_pairs, (uids[1], original)) if original else sealed.uid_pairs
    return VaultRecord(outcome.patient_pseudonym, *uids, sealed.payload, pairs, to)


def _event(record: dict[str, object]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def _relpath(outcome: Outcome, item: InputItem, settings: WorkerSettings, uids: tuple[str, ...] = ()) -> str:
    """The output path; ``uids``: the (study, SOP instance) UIDs, when already decoded."""
    if settings.layout is Layout.MIRROR:
        return mirror_relpath(item, settings.several_roots)
    study, sop = uids or (outcome.study_uid, outcome.sop_instance_uid)
    if item.media:  # a media set's instance: ISO 9660 File IDs for the DICOMDIR (io.mediaset)
        return media_relpath(outcome.patient_pseudonym, study, outcome.series_uid, sop)
    return pseudonymous_relpath(outcome.patient_pseudonym, study, outcome.series_uid, sop)


def _quarantined(
    index: int, item: InputItem, error: InputError, ctx: WorkerContext, details: dict[str, Any] | None = None
) -> FileResult:
    cap = ctx.settings.read_limits.max_quarantine_bytes
    quarantine(item, error, ctx.settings.quarantine_dir, details, max_bytes=cap)
    event = _event(verdict_event(index, error.reference, classify_prefix(_head(item))))
    if not isinstance(error, PixelRefusedError):
        return FileResult(index, Status.QUARANTINED, error.reference, event=event)
    # The pixel stage refused the image: counted as such, its card shown in the pixel report.
    return FileResult(index, Status.QUARANTINED, error.reference, event=event, pixels="quarantined",
                      pixel_view=error.view)


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
    if results:
        chunk = tuple(index for index, _ in tasks)
        results[-1] = replace(results[-1], changes=tuple(counts.items()), chunk=chunk)
    return results


_RESULT_FIELDS = attrgetter(
    "index", "status", "reason", "n_changes", "out_relpath", "bytes_in", "bytes_out", "changes", "event",
    "conflict_with", "pixels", "pixel_view", "modality", "instance", "chunk",
)

#: The aggregation key of a change: (tag path, action, rule source).
_CHANGE_KEY = attrgetter("path", "action", "source")

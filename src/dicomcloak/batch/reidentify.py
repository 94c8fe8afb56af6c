"""Re-identify many files: read, restore (embedded or vault), write atomically in a mirrored layout.

The same conventions as ``deid`` (architecture.md decision 6): inputs never
modified, outputs under their final name only when complete, unreadable
inputs quarantined with a reason code, the walk's skips counted, a
``report.json`` in the run's own folder of the run directory (and no
re-identified file written into an output made by another command,
:mod:`dicomcloak.batch.rundir`). A :class:`~dicomcloak.errors.SealError` (wrong key, tampered or
missing sealed originals) is not a quarantine: it stops the run, and nothing
is written for that input (fail closed). Re-identification is rare and
audited, so it runs in one process.

What comes back from outside (an AI result, a partner's SEG or SR) is as
untrusted as anything else: every input goes through the sanitize stage
(content disarm and reconstruction, architecture.md decision 5) before restoring,
under the policy given (the same private-element rules as ``deid``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomcloak.api import Reidentified, Reidentifier
from dicomcloak.batch.debris import remove_debris, tidy_trees
from dicomcloak.batch.report import ReportBuilder, RunSummary, encode_report
from dicomcloak.batch.run import prepare_dir, quarantine_refused
from dicomcloak.batch.rundir import RunFolder, begin_run, check_made_alike, finish_run
from dicomcloak.batch.sealing import recorded_head
from dicomcloak.batch.worker import ChangeKey, FileResult, Status, without_input_names
from dicomcloak.errors import DicomcloakError, InputError, OutputError, ProcessingError
from dicomcloak.io.grouped import GroupedWriter, sync_file_system
from dicomcloak.io.inputs import InputItem, Refused, Skipped, WalkEntry
from dicomcloak.io.layout import mirror_relpath
from dicomcloak.io.quarantine import quarantine
from dicomcloak.io.reader import ReadLimits, read_dataset, read_input
from dicomcloak.io.staging import Tree
from dicomcloak.io.writer import encode_dataset_parts
from dicomcloak.policy.model import Policy
from dicomcloak.sanitize import sanitize_dataset

__all__ = ["REID_SCHEMA", "ReidSettings", "restore_data", "run_reid"]

REID_SCHEMA = "dicomcloak/reid-summary/1"


@dataclass(frozen=True)
class ReidSettings:
    """One re-identification run."""

    out_dir: Path
    run_dir: Path
    quarantine_dir: Path
    several_roots: bool = False
    policy: Policy = field(default_factory=Policy)  # its private rules, limits and content choices
    facts: dict[str, Any] = field(default_factory=dict)  # mode facts for the summary (no secrets)
    history: tuple[Path, ...] = ()  # other run directories that may hold runs into out_dir
    audit_url: str | None = None  # where the run is audited: its head goes into the report

    @property
    def limits(self) -> ReadLimits:
        """The reading limits in force (the policy's ``[sanitize.limits]``)."""
        return self.policy.sanitize.limits


def run_reid(inputs: Iterable[WalkEntry], reidentifier: Reidentifier, settings: ReidSettings) -> RunSummary:
    """Re-identify every input into ``settings.out_dir``; write this run's report; return the summary."""
    started = time.perf_counter()
    folder = _begin(settings)
    builder = ReportBuilder()
    modes: Counter[str] = Counter()  # files per mode, and the "unbound" and "unverified" ones
    writer = GroupedWriter(tree=Tree(settings.out_dir))
    try:
        try:
            for index, entry in enumerate(inputs):
                if isinstance(entry, Skipped):
                    builder.skip(index, entry.reason)
                elif isinstance(entry, Refused):  # a zip-slip member: quarantined, never restored
                    builder.add(quarantine_refused(index, entry, settings.quarantine_dir))
                else:
                    builder.add(_one(index, entry, reidentifier, settings, writer, modes))
        except OSError as error:
            raise OutputError(f"cannot write: {error.strerror or type(error).__name__}") from None
        finally:
            writer.close()  # what was restored before a failure is complete and kept
    except OutputError as error:  # the outputs and the quarantine mirror the inputs' paths
        raise without_input_names(error, settings.quarantine_dir, settings.out_dir) from None
    sync_file_system(settings.out_dir)
    summary = builder.summary(time.perf_counter() - started, _facts(settings, folder, modes))
    finish_run(folder, encode_report(builder.report(summary)))
    tidy_trees(settings.out_dir, settings.run_dir, settings.quarantine_dir)
    return summary


def _begin(settings: ReidSettings) -> RunFolder:
    """As ``deid`` does: refuse an output another command made, make the directories, record the run."""
    facts: dict[str, Any] = {"command": "reid"}
    check_made_alike(settings.out_dir, facts, [settings.run_dir, *settings.history])
    prepare_dir(settings.run_dir, "run", "--run-dir (it holds the reports and the quarantine)", private=True)
    prepare_dir(settings.out_dir, "output", "--out")
    remove_debris(settings.out_dir, settings.run_dir, settings.quarantine_dir)
    return begin_run(settings.run_dir, settings.out_dir, facts)


def _facts(settings: ReidSettings, folder: RunFolder, modes: Counter[str]) -> dict[str, Any]:
    trust = {name: modes.pop(name, 0) for name in _TRUST}
    sealers = {name[len(_SEALER) :]: modes.pop(name) for name in list(modes) if name.startswith(_SEALER)}
    return {
        "schema": REID_SCHEMA,
        "command": "reid",
        "modes": dict(sorted(modes.items())),
        **trust,
        "sealers": dict(sorted(sealers.items())),
        "output": str(settings.out_dir),
        "run_dir": str(settings.run_dir),
        "quarantine": str(settings.quarantine_dir),
        "report": str(folder.report),
        "audit": recorded_head(settings.audit_url),
        **settings.facts,
    }


def _one(
    index: int,
    item: InputItem,
    reidentifier: Reidentifier,
    settings: ReidSettings,
    writer: GroupedWriter,
    modes: Counter[str],
) -> FileResult:
    try:
        data = read_input(item, settings.limits)
        payload, result = restore_data(data, reidentifier, settings.policy)
    except InputError as error:
        return _quarantined(index, item, error, settings)
    except (DicomcloakError, OSError):
        raise  # SealError among them: fail closed, stop the run
    except Exception as error:  # noqa: BLE001 - one hostile input must not stop the run
        wrapped = ProcessingError(f"unexpected {type(error).__name__}", reference="internal-error")
        return _quarantined(index, item, wrapped, settings)
    writer.submit(settings.out_dir / mirror_relpath(item, settings.several_roots), payload)
    modes[result.mode] += 1
    modes.update(name for name, flag in zip(_TRUST, (result.bound, result.verified), strict=True) if not flag)
    if result.sealer:
        modes[_SEALER + result.sealer.hex()[:16]] += 1
    changes = _changes(result)
    return FileResult(
        index, Status.WRITTEN, "", sum(c for _, c in changes), "", len(data), sum(map(len, payload)), changes
    )


#: Summary counts of files restored from originals not known to be theirs (a vault record or an embedded
#: seal made before they were bound), or from embedded seals no trusted sealer signed (--accept-unverified).
_TRUST = ("unbound", "unverified")
#: Files per signing sealer (the first 16 hex digits of its fingerprint): who sealed what was restored.
_SEALER = "sealer:"


def restore_data(data: bytes, reidentifier: Reidentifier, policy: Policy) -> tuple[list[bytes], Reidentified]:
    """Re-identify one encoded instance: sanitize, restore, encode; the per-instance step of ``reid``.

    Shared by ``reid`` and the gateway's re-identifying routes (docs/gateway.md).
    Raises :class:`~dicomcloak.errors.InputError` for an input to quarantine and
    :class:`~dicomcloak.errors.SealError` when its originals cannot be opened (fail closed).
    """
    limits = policy.sanitize.limits
    as_read = read_dataset(data, limits)
    sanitized = sanitize_dataset(as_read, policy.sanitize, policy)
    # A vault record is bound to the output it was made for: the file as read, before sanitizing.
    result = reidentifier.reidentify(sanitized.dataset, as_read=as_read)
    return encode_dataset_parts(result.dataset), result


def _quarantined(index: int, item: InputItem, error: InputError, settings: ReidSettings) -> FileResult:
    quarantine(item, error, settings.quarantine_dir, max_bytes=settings.limits.max_quarantine_bytes)
    return FileResult(index, Status.QUARANTINED, error.reference)


def _changes(result: Reidentified) -> tuple[tuple[ChangeKey, int], ...]:
    """What was done, as report rows: restored tags (R), removed markers (X), mapped values (M)."""
    source = f"reid:{result.mode}"
    rows: list[tuple[ChangeKey, int]] = [(((tag,), "R", source), 1) for tag in result.restored]
    rows += [(((tag,), "X", "reid:deidentification-marker"), 1) for tag in result.removed]
    if result.mapped:
        rows.append((((), "M", source), result.mapped))
    return tuple(rows)

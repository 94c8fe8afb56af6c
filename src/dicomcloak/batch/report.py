"""The run summary and ``report.json``: counts, reason codes and tag paths, never values or input paths.

Every entry the input walk yields is counted once: ``files = written +
duplicates + quarantined + skipped``. Input paths often hold patient names, so
every entry not written (a duplicate, a quarantined input, an entry the walk
skipped) is listed by its index in the walk's order, with its status and
reason code; so are UID conflicts (two inputs with one SOP Instance UID and
different content, :mod:`dicomcloak.batch.claims`): the later input, the
earlier one, and what was done (``quarantined``, or ``kept-both``: written
under a UID of its own). Attributes are named by tag path and keyword. A
de-identifying run also lists the policy's deviations from the profile
(``deviations``, docs/policy.md).

A run that stops (a vault that stays busy, is lost, full or broken) still
writes its report, and its counts are what is on disk: an input reported
written whose group of outputs could not be sealed or committed is moved to
``unwritten`` (:meth:`ReportBuilder.unplaced`, the reason being the error that
stopped the run), and the summary's ``stopped`` says why and how many inputs
were never processed: ``files = written + duplicates + quarantined + skipped
+ unwritten + not_processed``.

Each input read is counted by its Modality (a defined term, ``other`` or
``unknown``: :mod:`dicomcloak.batch.modality`) and outcome (``modalities``).
The document names its version in ``schema`` (:data:`REPORT_SCHEMA`); every
field is documented in docs/reports.md and checked by the JSON Schema shipped
as package data (:data:`SCHEMA_FILE`).

With the pixel stage on (``deid --pixels``), ``pixels`` counts instances by
what the stage did (``not-examined``, ``no-text``, ``cleaned``,
``quarantined``); the cards of up to :data:`PIXEL_CARDS` images with text
are kept for the run directory's pixel report (PHI: thumbnails), never for
``report.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydicom.datadict import keyword_for_tag

from dicomcloak.batch.modality import UNKNOWN
from dicomcloak.batch.worker import ChangeKey, FileResult, Status, WorkerSettings
from dicomcloak.engine.outcome import TagPath, format_path
from dicomcloak.policy.deviations import Deviation

if TYPE_CHECKING:
    from dicomcloak.pixels.report.views import ItemView

__all__ = [
    "PIXEL_CARDS",
    "REPORT_SCHEMA",
    "SCHEMA_FILE",
    "SKIPPED",
    "SUMMARY_SCHEMA",
    "UNWRITTEN",
    "ReportBuilder",
    "RunSummary",
    "encode_report",
    "report_schema",
    "run_deviations",
]

#: Version tag of the JSON summary printed by ``deid --json`` (schema in README.md).
SUMMARY_SCHEMA = "dicomcloak/deid-summary/1"
#: Version tag of ``report.json`` (docs/reports.md); version 1 had no ``schema`` field.
REPORT_SCHEMA = "dicomcloak/report/2"
#: The JSON Schema of ``report.json``, package data of ``dicomcloak.batch``.
SCHEMA_FILE = "data/report.schema.json"
#: Images shown in a run's pixel report at most (the rest are counted): a page a browser opens quickly.
PIXEL_CARDS = 200
#: The status of an entry the input walk saw and did not process (``io.inputs.Skipped``).
SKIPPED = "skipped"
#: The status of an input whose output was removed with its group: its originals could not be sealed, or
#: the group could not be committed (the run stopped).
UNWRITTEN = "unwritten"


@dataclass(frozen=True)
class RunSummary:
    """What a batch run did, in numbers; ``to_dict`` is the documented JSON summary."""

    files: int
    written: int
    duplicates: int
    quarantined: int
    skipped: int
    changed_attributes: int
    bytes_in: int
    bytes_out: int
    seconds: float
    reasons: dict[str, int]
    skip_reasons: dict[str, int] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    uid_conflicts: int = 0
    pixels: dict[str, int] = field(default_factory=dict)

    @property
    def files_per_second(self) -> float:
        """Throughput over the whole run."""
        return self.files / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary (schema ``dicomcloak/deid-summary/1``, README.md)."""
        return {
            "schema": SUMMARY_SCHEMA,
            "files": self.files,
            "written": self.written,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "skipped": self.skipped,
            "changed_attributes": self.changed_attributes,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "seconds": round(self.seconds, 3),
            "files_per_second": round(self.files_per_second, 1),
            "reasons": dict(sorted(self.reasons.items())),
            "skip_reasons": dict(sorted(self.skip_reasons.items())),
            "uid_conflicts": self.uid_conflicts,
            "pixels": dict(sorted(self.pixels.items())),
            **self.run,
        }


class ReportBuilder:
    """Accumulate :class:`FileResult` objects in any order; the report is order-independent.

    ``deviations`` (a de-identifying run's, :func:`run_deviations`) become the
    report's ``deviations`` list; None leaves the list out (sanitize, reid).
    """

    def __init__(self, deviations: Sequence[Deviation] | None = None) -> None:
        self.deviations = None if deviations is None else tuple(deviations)
        self.status: Counter[Status] = Counter()
        self.reasons: Counter[str] = Counter()
        self.changes: Counter[ChangeKey] = Counter()
        self.skip_reasons: Counter[str] = Counter()
        self.n_changes = self.bytes_in = self.bytes_out = 0
        self.not_written: list[tuple[int, str, str, str]] = []  # (index, status, reason, output)
        self.unwritten = 0
        # At the index of each input counted written, 1 + its modality's number (a byte per input).
        self._written = bytearray()
        self.modalities: Counter[tuple[str, str]] = Counter()  # (modality, outcome)
        self._modality_names: list[str] = []
        self.conflicts: list[tuple[int, int, str]] = []
        self.pixels: Counter[str] = Counter()
        self.pixel_cards: list[tuple[int, ItemView]] = []  # (input index, card)

    def add(self, result: FileResult) -> None:
        """Count one result."""
        self.status[result.status] += 1
        self.bytes_in += result.bytes_in
        self.bytes_out += result.bytes_out
        self.n_changes += result.n_changes
        if result.reason:
            self.reasons[result.reason] += 1
        modality = result.modality or UNKNOWN
        self.modalities[modality, result.status.value] += 1
        if result.status is Status.WRITTEN:
            self._mark(result.index, 1 + self._modality_number(modality))
        else:
            self.not_written.append((result.index, result.status.value, result.reason, result.out_relpath))
        for key, count in result.changes:
            self.changes[key] += count
        if result.conflict_with >= 0:
            kept = "kept-both" if result.status is Status.WRITTEN else "quarantined"
            self.conflicts.append((result.index, result.conflict_with, kept))
        if result.pixels:
            self.pixels[result.pixels] += 1
        if result.pixel_view is not None and len(self.pixel_cards) < PIXEL_CARDS:
            self.pixel_cards.append((result.index, result.pixel_view))

    def unplaced(self, unplaced: dict[int, int], reason: str) -> None:
        """Count the inputs whose outputs are not on disk (input index -> output bytes) as ``unwritten``.

        An input already counted written is taken back (its bytes too); one
        whose result never arrived (its chunk stopped) is counted here only.
        Its changes stay counted: they describe what was de-identified.
        """
        for index, size in sorted(unplaced.items()):
            modality = UNKNOWN
            if index < len(self._written) and self._written[index]:
                modality = self._modality_names[self._written[index] - 1]
                self.modalities[modality, Status.WRITTEN.value] -= 1
                self._mark(index, 0)
                self.status[Status.WRITTEN] -= 1
                self.bytes_out -= size
            self.modalities[modality, UNWRITTEN] += 1
            self.unwritten += 1
            self.reasons[reason] += 1
            self.not_written.append((index, UNWRITTEN, reason, ""))

    def _modality_number(self, modality: str) -> int:
        """A small number per modality seen, kept in a byte of ``_written``: there are fewer than 255
        (the defined terms, ``other`` and ``unknown``, :mod:`dicomcloak.batch.modality`)."""
        names = self._modality_names
        if modality not in names:
            names.append(modality)
        return names.index(modality)

    def _mark(self, index: int, value: int) -> None:
        if index >= len(self._written):
            self._written.extend(bytes(max(index + 1 - len(self._written), len(self._written))))
        self._written[index] = value

    def skip(self, index: int, reason: str) -> None:
        """Count one entry the input walk skipped (never sent to a worker)."""
        self.skip_reasons[reason] += 1
        self.not_written.append((index, SKIPPED, reason, ""))

    @property
    def accounted(self) -> int:
        """Entries counted so far: processed (whatever became of them) or skipped."""
        return sum(self.status.values()) + sum(self.skip_reasons.values()) + self.unwritten

    def summary(self, seconds: float, run: dict[str, Any], entries: int | None = None) -> RunSummary:
        """Freeze the counts into a :class:`RunSummary`; ``entries``: all the walk saw (a stopped run's
        ``files`` counts those it never processed too)."""
        skipped = sum(self.skip_reasons.values())
        return RunSummary(
            files=self.accounted if entries is None else entries,
            written=self.status[Status.WRITTEN],
            duplicates=self.status[Status.DUPLICATE],
            quarantined=self.status[Status.QUARANTINED],
            skipped=skipped,
            changed_attributes=self.n_changes,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            seconds=seconds,
            reasons=dict(self.reasons),
            skip_reasons=dict(self.skip_reasons),
            run=run,
            uid_conflicts=len(self.conflicts),
            pixels=dict(self.pixels),
        )

    def report(self, summary: RunSummary) -> dict[str, Any]:
        """The full ``report.json`` document: summary, entries not written (by index), aggregated changes."""
        not_written = [
            {"index": index, "status": status, "reason": reason, **({"output": out} if out else {})}
            for index, status, reason, out in sorted(self.not_written)
        ]
        changes = [
            {"path": format_path(path), "keyword": _keyword(path), "action": action, "source": source,
             "count": count}
            for (path, action, source), count in sorted(self.changes.items())
        ]
        conflicts = [
            {"index": index, "conflicts_with": first, "resolution": resolution}
            for index, first, resolution in sorted(self.conflicts)
        ]
        document = {"schema": REPORT_SCHEMA, "summary": summary.to_dict(), "not_written": not_written,
                    "changes": changes, "uid_conflicts": conflicts, "modalities": self.modality_rows()}
        if self.deviations is not None:
            document["deviations"] = [deviation.to_dict() for deviation in self.deviations]
        return document

    def modality_rows(self) -> list[dict[str, Any]]:
        """Inputs processed per modality and outcome (``written``, ``duplicate``, ``quarantined``,
        ``unwritten``), one row per modality, sorted; every outcome present, zero or not."""
        outcomes = [status.value for status in Status] + [UNWRITTEN]
        names = sorted({modality for modality, _ in self.modalities})
        return [
            {"modality": name, **{outcome: self.modalities[name, outcome] for outcome in outcomes}}
            for name in names
        ]


def _keyword(path: TagPath) -> str:
    """The PS3.6 keyword of the element a tag path ends at ("" for private and unknown tags)."""
    return keyword_for_tag(path[-1]) if path else ""


def run_deviations(worker: WorkerSettings) -> tuple[Deviation, ...] | None:
    """What a run's report lists as deviations: the policy's, computed once, when the run de-identifies."""
    return worker.policy.deviations if worker.deidentify else None


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``report.json``, as shipped in the package (docs/reports.md)."""
    from importlib.resources import files

    schema: dict[str, Any] = json.loads(files("dicomcloak.batch").joinpath(SCHEMA_FILE).read_text("utf-8"))
    return schema


def encode_report(document: dict[str, Any]) -> bytes:
    """Serialize a report deterministically (sorted keys, UTF-8, trailing newline)."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


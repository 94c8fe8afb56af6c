"""The run summary and ``report.json``: counts, reason codes and tag paths, never values or input paths.

Input paths often hold patient names, so quarantined and duplicate inputs are
listed by their index in the (sorted) input order, with their reason code; so
are UID conflicts (two inputs with one SOP Instance UID and different content,
:mod:`dicomcloak.batch.claims`): the later input, the earlier one, and what was
done (``quarantined``, or ``kept-both``: written under a UID of its own).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomcloak.batch.worker import ChangeKey, FileResult, Status
from dicomcloak.engine.outcome import format_path

__all__ = ["REPORT_NAME", "SUMMARY_SCHEMA", "ReportBuilder", "RunSummary"]

#: Version tag of the JSON summary printed by ``deid --json`` (schema in README.md).
SUMMARY_SCHEMA = "dicomcloak/deid-summary/1"
REPORT_NAME = "report.json"


@dataclass(frozen=True)
class RunSummary:
    """What a batch run did, in numbers; ``to_dict`` is the documented JSON summary."""

    files: int
    written: int
    duplicates: int
    quarantined: int
    changed_attributes: int
    bytes_in: int
    bytes_out: int
    seconds: float
    reasons: dict[str, int]
    run: dict[str, Any] = field(default_factory=dict)
    uid_conflicts: int = 0

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
            "changed_attributes": self.changed_attributes,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "seconds": round(self.seconds, 3),
            "files_per_second": round(self.files_per_second, 1),
            "reasons": dict(sorted(self.reasons.items())),
            "uid_conflicts": self.uid_conflicts,
            **self.run,
        }


class ReportBuilder:
    """Accumulate :class:`FileResult` objects in any order; the report is order-independent."""

    def __init__(self) -> None:
        self.status: Counter[Status] = Counter()
        self.reasons: Counter[str] = Counter()
        self.changes: Counter[ChangeKey] = Counter()
        self.n_changes = self.bytes_in = self.bytes_out = 0
        self.skipped: list[tuple[int, str, str]] = []
        self.conflicts: list[tuple[int, int, str]] = []

    def add(self, result: FileResult) -> None:
        """Count one result."""
        self.status[result.status] += 1
        self.bytes_in += result.bytes_in
        self.bytes_out += result.bytes_out
        self.n_changes += result.n_changes
        if result.reason:
            self.reasons[result.reason] += 1
        if result.status is not Status.WRITTEN:
            self.skipped.append((result.index, result.reason, result.out_relpath))
        for key, count in result.changes:
            self.changes[key] += count
        if result.conflict_with >= 0:
            kept = "kept-both" if result.status is Status.WRITTEN else "quarantined"
            self.conflicts.append((result.index, result.conflict_with, kept))

    def summary(self, seconds: float, run: dict[str, Any]) -> RunSummary:
        """Freeze the counts into a :class:`RunSummary`."""
        return RunSummary(
            files=sum(self.status.values()),
            written=self.status[Status.WRITTEN],
            duplicates=self.status[Status.DUPLICATE],
            quarantined=self.status[Status.QUARANTINED],
            changed_attributes=self.n_changes,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            seconds=seconds,
            reasons=dict(self.reasons),
            run=run,
            uid_conflicts=len(self.conflicts),
        )

    def report(self, summary: RunSummary) -> dict[str, Any]:
        """The full ``report.json`` document: summary, skipped inputs, aggregated changes."""
        skipped = [
            {"index": index, "reason": reason, **({"output": out} if out else {})}
            for index, reason, out in sorted(self.skipped)
        ]
        changes = [
            {"path": format_path(path), "action": action, "source": source, "count": count}
            for (path, action, source), count in sorted(self.changes.items())
        ]
        conflicts = [
            {"index": index, "conflicts_with": first, "resolution": resolution}
            for index, first, resolution in sorted(self.conflicts)
        ]
        document = {"summary": summary.to_dict(), "skipped": skipped, "changes": changes}
        return {**document, "uid_conflicts": conflicts}


def encode_report(document: dict[str, Any]) -> bytes:
    """Serialize a report deterministically (sorted keys, UTF-8, trailing newline)."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def report_path(run_dir: Path) -> Path:
    """Where ``report.json`` goes in a run directory."""
    return run_dir / REPORT_NAME

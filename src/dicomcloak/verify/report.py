"""The result of ``verify``: counts and findings, never a value (docs/verify.md, "JSON report").

A finding names the output file and the original file (paths relative to
OUTPUT and ORIGINAL), the element of the output (keyword and tag, nested
paths included), the kind of value, the element of the original that held
it, and the length of the matched value. No character of a value is shown:
a first letter and a length narrow a name down too much for a report that
is meant to travel (to a release gate, a ticket, a log).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import keyword_for_tag

from dicomcloak.engine.outcome import TagPath, format_path
from dicomcloak.verify.outputs import Finding

__all__ = ["SCHEMA_VERSION", "Finding", "VerifyReport", "named_path"]

#: Version of the JSON report's layout (docs/verify.md); raised on any incompatible change.
SCHEMA_VERSION = 2
_SHOWN = 50
_UNPARSED = "(file not parsed as DICOM)"


def named_path(path: TagPath) -> str:
    """``ReferencedImageSequence (0008,1140)[0] / ReferencedSOPInstanceUID (0008,1155)``."""
    if not path:
        return _UNPARSED
    parts: list[str] = []
    for position, value in enumerate(path):
        if position % 2:
            parts[-1] += f"[{value}]"
            continue
        tag = format_path((value,))
        keyword = keyword_for_tag(value) if (value >> 16) % 2 == 0 else ""
        parts.append(f"{keyword} {tag}" if keyword else tag)
    return " / ".join(parts)


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify_trees`` checked and found.

    Attributes
    ----------
    originals, unreadable_originals:
        Original files read as DICOM, and those that could not be (not DICOM, damaged).
    outputs:
        Output files checked (parsed as DICOM, or searched as raw bytes).
    unparsed_outputs:
        Outputs that did not parse as DICOM and were searched as raw bytes.
    unreadable_outputs:
        Outputs that could not be read at all (over the size limit, unreadable):
        not checked, so the report is not OK.
    skipped_outputs:
        Entries of OUTPUT the walk skips without opening them (symbolic links
        out of the tree or to a file also reached by its own path, FIFOs, the
        writer's temporary files): not part of the output a recipient gets.
    matched_by_key, matched_by_content:
        Outputs matched to their original by pseudonymous SOP Instance UID, or by content.
    findings:
        Every finding, sorted by output, element, kind.
    matches:
        How each output with findings was matched (``key``, ``content``, ``none``).
    """

    originals: int
    outputs: int
    findings: tuple[Finding, ...] = ()
    unreadable_originals: int = 0
    unparsed_outputs: int = 0
    unreadable_outputs: int = 0
    skipped_outputs: int = 0
    matched_by_key: int = 0
    matched_by_content: int = 0
    matches: dict[str, str] = field(default_factory=dict)

    @property
    def kinds(self) -> dict[str, int]:
        """Findings by kind of value."""
        return dict(sorted(Counter(finding.kind for finding in self.findings).items()))

    @property
    def outputs_with_findings(self) -> int:
        """Output files with at least one finding."""
        return len({finding.output for finding in self.findings})

    @property
    def ok(self) -> bool:
        """True when nothing was found and every output could be checked."""
        return not self.findings and not self.unreadable_outputs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (schema ``SCHEMA_VERSION``; paths, tags, kinds and lengths only)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "ok": self.ok,
            "originals": {"read": self.originals, "unreadable": self.unreadable_originals},
            "outputs": {
                "checked": self.outputs, "matched_by_key": self.matched_by_key,
                "matched_by_content": self.matched_by_content,
                "unmatched": self.outputs - self.matched_by_key - self.matched_by_content,
                "unparsed": self.unparsed_outputs, "unreadable": self.unreadable_outputs,
                "skipped": self.skipped_outputs,
            },
            "findings_count": len(self.findings),
            "outputs_with_findings": self.outputs_with_findings,
            "findings_by_kind": self.kinds,
            "findings": [self._finding_dict(finding) for finding in self.findings],
        }

    def _finding_dict(self, finding: Finding) -> dict[str, Any]:
        return {
            "output": finding.output, "original": finding.original,
            "path": named_path(finding.path), "tag_path": format_path(finding.path),
            "kind": finding.kind,
            "source": named_path(finding.source), "source_tag_path": format_path(finding.source),
            "length": finding.length, "match": self.matches.get(finding.output, "none"),
        }

    def render_text(self) -> str:
        """A short human-readable summary, one line per finding (at most 50 shown)."""
        lines = [self._summary()]
        if self.unreadable_originals or self.unparsed_outputs or self.unreadable_outputs:
            lines.append(
                f"not DICOM or unreadable: {self.unreadable_originals} original(s); outputs: "
                f"{self.unparsed_outputs} searched as raw bytes, {self.unreadable_outputs} not checked"
            )
        if self.skipped_outputs:
            lines.append(f"skipped in OUTPUT (links, FIFOs, temporary files): {self.skipped_outputs}")
        if self.ok:
            lines.append("OK: no original identifying value found where the policy does not keep it")
        elif not self.findings:
            lines.append(f"FAILED: {self.unreadable_outputs} output file(s) could not be read")
        else:
            lines += self._finding_lines()
        return "\n".join(lines) + "\n"

    def _summary(self) -> str:
        unmatched = self.outputs - self.matched_by_key - self.matched_by_content
        return (
            f"checked {self.outputs} output file(s) against {self.originals} original(s): "
            f"{self.matched_by_key} matched by key, {self.matched_by_content} by content, "
            f"{unmatched} unmatched"
        )

    def _finding_lines(self) -> list[str]:
        by_kind = ", ".join(f"{kind} {count}" for kind, count in self.kinds.items())
        lines = [f"LEAKS: {len(self.findings)} in {self.outputs_with_findings} output file(s) ({by_kind})"]
        for finding in self.findings[:_SHOWN]:
            lines.append(
                f"  {finding.output}: {named_path(finding.path)}  {finding.kind}"
                f" ({finding.length} chars)  from {finding.original}: {named_path(finding.source)}"
            )
        if len(self.findings) > _SHOWN:
            lines.append(f"  ... and {len(self.findings) - _SHOWN} more (use --json for all)")
        return lines

"""The result of ``verify``: counts and where leaks were found, never the leaked values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["Leak", "VerifyReport"]

_SHOWN = 50


class Leak(NamedTuple):
    """One output element that holds an original identifying value (the value is never kept).

    ``kind`` is what the value was in the original: ``uid``, ``person-name``,
    ``name-part``, ``date``, ``time`` or ``text``.
    """

    output: str
    path: str
    kind: str


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify_trees`` checked and found.

    Attributes
    ----------
    files_checked:
        Original DICOM instances read.
    outputs_checked:
        Output files searched.
    leaks:
        Number of (output file, element, kind) findings.
    leaked:
        The findings: output relative path, element tag path, kind.
    matched_outputs:
        Outputs matched to their original through the key (and so also searched
        for that original's values alone); every output is searched for all originals' values.
    unreadable_inputs, unreadable_outputs:
        Files that did not parse as DICOM; unreadable outputs are searched as raw bytes.
    """

    files_checked: int
    outputs_checked: int
    leaks: int
    leaked: tuple[Leak, ...] = ()
    matched_outputs: int = 0
    unreadable_inputs: int = 0
    unreadable_outputs: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing leaked and something was actually checked."""
        return self.leaks == 0 and (self.outputs_checked > 0 or self.files_checked == 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths, tags and kinds only)."""
        return {
            "ok": self.ok,
            "files_checked": self.files_checked,
            "outputs_checked": self.outputs_checked,
            "matched_outputs": self.matched_outputs,
            "unreadable_inputs": self.unreadable_inputs,
            "unreadable_outputs": self.unreadable_outputs,
            "leaks": self.leaks,
            "leaks_by_kind": dict(sorted(self.kinds.items())),
            "leaked": [leak._asdict() for leak in self.leaked],
        }

    def render_text(self) -> str:
        """A short human-readable summary, one line per finding (at most 50 shown)."""
        lines = [
            f"checked {self.outputs_checked} output file(s) against {self.files_checked} original(s)"
            f" ({self.matched_outputs} matched by key)",
        ]
        if self.unreadable_inputs or self.unreadable_outputs:
            lines.append(
                f"unreadable: {self.unreadable_inputs} original(s), {self.unreadable_outputs} output(s)"
            )
        if self.ok:
            lines.append("OK: no original identifying value found in the output")
            return "\n".join(lines) + "\n"
        if self.leaks == 0:
            lines.append("FAILED: no output file was checked")
            return "\n".join(lines) + "\n"
        by_kind = ", ".join(f"{kind} {count}" for kind, count in sorted(self.kinds.items()))
        lines.append(f"LEAKS: {self.leaks} ({by_kind})")
        lines += [f"  {leak.output}  {leak.path}  {leak.kind}" for leak in self.leaked[:_SHOWN]]
        if self.leaks > _SHOWN:
            lines.append(f"  ... and {self.leaks - _SHOWN} more (use --json for all)")
        return "\n".join(lines) + "\n"

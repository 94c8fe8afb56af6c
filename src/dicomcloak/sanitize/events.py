"""One audit-style event per sanitize verdict: codes, counts and tag sources only, never values or paths."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from dicomcloak.engine.outcome import Change
from dicomcloak.sanitize.preamble import PreambleKind

__all__ = ["EVENT_SCHEMA", "verdict_event"]

EVENT_SCHEMA = "dicomcloak/sanitize-event/1"


def verdict_event(
    index: int, reason: str, preamble: PreambleKind, changes: Iterable[Change] = ()
) -> dict[str, Any]:
    """The event of one input: accepted (``reason`` empty) or quarantined with its reason code.

    ``alert`` is true when the preamble held an executable (a polyglot file);
    ``removed`` counts the sanitizer's removals by reason code.
    """
    removed = Counter(c.source.removeprefix("sanitize:") for c in changes if c.source.startswith("sanitize:"))
    return {
        "schema": EVENT_SCHEMA,
        "index": index,
        "verdict": "quarantined" if reason else "accepted",
        "reason": reason,
        "preamble": preamble.value,
        "alert": preamble.executable,
        "removed": dict(sorted(removed.items())),
    }

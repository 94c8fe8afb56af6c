"""What a listener hands a received instance to, and what it answers (PS3.7 C.4.2.1.4, Annex C).

The listener (:mod:`dicomcloak.net.listener`) knows associations and
security; the gateway (:mod:`dicomcloak.net.gateway`) knows routes, the
spool and the per-instance path. This protocol is the seam between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "CANNOT_UNDERSTAND",
    "OUT_OF_RESOURCES",
    "PROCESSING_FAILURE",
    "REFUSED_QUARANTINED",
    "SUCCESS",
    "StoreAnswer",
    "StoreSink",
]

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # Refused: out of resources (PS3.4 Table B.2-1): back-pressure, send later
CANNOT_UNDERSTAND = 0xC000  # Error: cannot understand (not DICOM, malformed)
PROCESSING_FAILURE = 0x0110  # Failure: processing failure (PS3.7 C.4.2.1.4)
REFUSED_QUARANTINED = 0xC101  # Error, ours: the instance was quarantined with a reason code


@dataclass(frozen=True)
class StoreAnswer:
    """The status a C-STORE gets, and the reason code (never a value) for the audit and the comment."""

    status: int
    reason: str = ""


class StoreSink(Protocol):
    """Receives each instance a listener accepted; answers only once the result is durable."""

    def accepting(self, route: str) -> bool:
        """False when the route's spool is over its limits (answer 0xA700, or refuse associations)."""

    def store(self, route: str, encoded: bytes, caller: str) -> StoreAnswer:
        """Process one Part 10 encoded instance through ``route``; ``caller`` is the calling AE title."""

    def audit(self, action: str, **facts: object) -> None:
        """Append an event to the gateway's hash-chained audit log (codes, AE titles, addresses; no PHI)."""

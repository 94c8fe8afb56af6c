"""Content disarm and reconstruction: rebuild each instance from validated elements, or refuse it.

See :func:`sanitize_dataset` and ``docs/security.md`` (threats, limits, reason codes).
"""

from dicomcloak.sanitize.events import verdict_event
from dicomcloak.sanitize.preamble import PreambleKind, classify_preamble, classify_prefix
from dicomcloak.sanitize.stage import ENCAPSULATED_DOCUMENT_CLASSES, Sanitized, Verdict, sanitize_dataset

__all__ = [
    "ENCAPSULATED_DOCUMENT_CLASSES",
    "PreambleKind",
    "Sanitized",
    "Verdict",
    "classify_preamble",
    "classify_prefix",
    "sanitize_dataset",
    "verdict_event",
]

"""What the sanitize (CDR) stage does with content it can keep, remove or refuse, and its limits.

Part of the policy because a site decides it in the same TOML file
(``[sanitize]``, docs/policy.md) and because private elements are judged by
the de-identification policy itself (architecture.md decision 5): the sanitizer
enforces that policy even when de-identification is off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dicomcloak.raw.limits import ReadLimits

__all__ = ["Disposition", "SanitizeSettings"]


class Disposition(StrEnum):
    """What to do with one kind of embedded content."""

    KEEP = "keep"
    REMOVE = "remove"  # removed, recorded as a change
    QUARANTINE = "quarantine"  # the whole instance is refused


@dataclass(frozen=True)
class SanitizeSettings:
    """The sanitize stage's settings; frozen, picklable, passed down with the Policy.

    Parameters
    ----------
    limits:
        Reading limits, checked by the reader while reading and by the
        sanitizer while it opens sequences (``docs/security.md``).
    encapsulated_documents:
        Encapsulated PDF, CDA, STL, OBJ and MTL (PS3.3 A.45, A.85-A.87): the
        document is the object, so removing it leaves an invalid instance;
        quarantined by default.
    waveforms:
        Waveform Sequence (5400,0100) (PS3.3 C.10.9); kept by default.
    icons:
        Icon Image Sequence (0088,0200) (PS3.3 C.7.6.1.1.6), anywhere; kept by
        default (de-identification removes it per Table E.1-1).
    overlays:
        Overlay planes, groups 6000-601E (PS3.3 C.9.2); kept by default
        (de-identification decides per Clean Graphics).
    """

    limits: ReadLimits = field(default_factory=ReadLimits)
    encapsulated_documents: Disposition = Disposition.QUARANTINE
    waveforms: Disposition = Disposition.KEEP
    icons: Disposition = Disposition.KEEP
    overlays: Disposition = Disposition.KEEP

"""Keep pydicom from quoting element values in warnings and log lines (architecture.md decision 7).

pydicom validates values as it decodes them and, in its default WARN mode,
reports an invalid value with ``warnings.warn`` *and* a log line that quote
the value (e.g. a malformed UID or name). A de-identifier must never do that,
so dicomcloak switches reading validation off: invalid values are handled by
the policy (removed, replaced or cleaned) like any other value. This is
pydicom's process-wide setting; it is set once, idempotently.
"""

from __future__ import annotations

from pydicom import config

__all__ = ["quiet_pydicom"]


def quiet_pydicom() -> None:
    """Turn off pydicom's value-quoting reading validation (idempotent)."""
    if config.settings.reading_validation_mode != config.IGNORE:
        config.settings.reading_validation_mode = config.IGNORE

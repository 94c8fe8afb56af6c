"""Every common written form of a header date or time, as it may be burned into the pixels.

A DA value ``YYYYMMDD`` (PS3.5 6.2) is shown by devices in many orders and
styles: ``MM/DD/YYYY`` (US), ``DD.MM.YYYY`` (Europe), ``YYYY-MM-DD`` (ISO),
``DD-Mon-YYYY``, ``Mon DD YYYY``, with or without leading zeros, with
two-digit years. Separators vanish in matching (see :mod:`.normalise`), so
only the order of the parts and the spelling of the month matter. A TM value
``HHMMSS.FFFFFF`` is shown as ``HH:MM:SS`` or ``HH:MM``.
"""

from __future__ import annotations

__all__ = ["date_forms", "time_forms"]

_ORDERS = ("ymd", "mdy", "dmy")
#: English month names, fixed (``calendar`` follows the process locale).
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


def date_forms(value: str) -> set[str]:
    """The written forms of a DA value (empty for anything that is not ``YYYYMMDD``), unnormalised."""
    value = value.strip()[:8]
    if len(value) != 8 or not value.isdigit() or not 1 <= int(value[4:6]) <= 12:
        return set()
    year, month, day = value[:4], value[4:6], value[6:]
    forms = _numeric_forms(year, month, day)
    forms |= _month_name_forms(year, int(month), day)
    return forms


def _numeric_forms(year: str, month: str, day: str) -> set[str]:
    forms: set[str] = set()
    for y in (year, year[2:]):
        for m, d in ((month, day), (month.lstrip("0"), day.lstrip("0"))):
            parts = {"y": y, "m": m, "d": d}
            forms.update("/".join(parts[key] for key in order) for order in _ORDERS)
    return forms


def _month_name_forms(year: str, month: int, day: str) -> set[str]:
    forms: set[str] = set()
    for name in {_MONTHS[month - 1][:3], _MONTHS[month - 1]}:
        for d in (day, day.lstrip("0")):
            for y in (year, year[2:]):
                forms.update({f"{d}-{name}-{y}", f"{name} {d} {y}"})
    return forms


def time_forms(value: str) -> set[str]:
    """The written forms of a TM value (``HH:MM:SS`` and ``HH:MM``), unnormalised."""
    digits = value.strip().split(".")[0]
    if len(digits) < 4 or not digits.isdigit():
        return set()
    forms = {f"{digits[:2]}:{digits[2:4]}"}
    if len(digits) >= 6:
        forms.add(f"{digits[:2]}:{digits[2:4]}:{digits[4:6]}")
    return forms

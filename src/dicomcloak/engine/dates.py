"""Coherent keyed date and time shifting (PS3.15 E.3.6, Retain Longitudinal Temporal Information
with Modified Dates).

One per-patient offset (days plus a time-of-day part) moves every DA, TM and DT
value. A date with its paired time (StudyDate + StudyTime, ...) moves as one
date-time, so intervals between any two instants of a patient are kept
exactly. A date without a paired time moves by whole days (taken at midnight,
which the sub-day part never pushes across a day boundary); a time without a
date moves by the sub-day part, modulo one day. Values that do not parse are
reported as ``None`` so the caller removes them instead of guessing.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache, lru_cache

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from dicomcloak.keys.pseudonyms import DateShift

__all__ = ["paired_tag", "shift_date", "shift_datetime", "shift_time"]

_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?$")


@cache
def paired_tag(tag: int) -> int | None:
    """The TM tag paired with a DA tag, or the DA tag paired with a TM tag (by keyword).

    PS3.6 names pairs consistently (StudyDate/StudyTime, DateOfLastCalibration/
    TimeOfLastCalibration), so the pairing is derived from the data dictionary.
    """
    keyword = keyword_for_tag(tag)
    if not keyword:
        return None
    vr = dictionary_VR(tag)
    if vr == "DA" and "Date" in keyword:
        other, want = keyword.replace("Date", "Time"), "TM"
    elif vr == "TM" and "Time" in keyword:
        other, want = keyword.replace("Time", "Date"), "DA"
    else:
        return None
    found = tag_for_keyword(other)
    if found is None or dictionary_VR(found) != want:
        return None
    return int(found)


def _parse_date(text: str) -> dt.date | None:
    match = _DA.match(text.strip())
    if match is None:
        return None
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _parse_time(text: str) -> tuple[dt.timedelta, int] | None:
    """Return (time since midnight, number of components given) or None."""
    match = _TM.match(text.strip().replace(":", ""))
    if match is None:
        return None
    hours, minutes, seconds = int(match[1]), int(match[2] or 0), int(match[3] or 0)
    if hours > 23 or minutes > 59 or seconds > 60:
        return None
    fraction = match[4] or ""
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    parts = 1 + (match[2] is not None) + (match[3] is not None)
    delta = dt.timedelta(hours=hours, minutes=minutes, seconds=min(seconds, 59), microseconds=micro)
    return delta, parts if not fraction else -len(fraction[1:])


def _format_time(moment: dt.datetime, precision: int) -> str:
    """Format like the input: 1-3 components, or seconds plus -precision fraction digits."""
    text = moment.strftime("%H%M%S")
    if precision > 0:
        return text[: 2 * precision]
    return f"{text}.{moment.microsecond:06d}"[: 7 - precision]


@lru_cache(maxsize=16384)  # a series repeats the same dates and times in every file
def shift_date(value: str, paired_time: str | None, shift: DateShift) -> str | None:
    """Shift one DA value, with its paired TM value when present."""
    day = _parse_date(value)
    if day is None:
        return None
    start = dt.datetime.combine(day, dt.time())
    parsed = _parse_time(paired_time) if paired_time else None
    offset = dt.timedelta(seconds=shift.total_seconds) if parsed else dt.timedelta(days=shift.days)
    if parsed:
        start += parsed[0]
    try:
        return (start + offset).strftime("%Y%m%d")
    except OverflowError:
        return None


@lru_cache(maxsize=16384)
def shift_time(value: str, paired_date: str | None, shift: DateShift) -> str | None:
    """Shift one TM value; with its paired date the day roll-over lands on the date."""
    parsed = _parse_time(value)
    if parsed is None:
        return None
    base = dt.datetime(2000, 1, 1) + parsed[0]
    moved = base + dt.timedelta(seconds=shift.seconds if not paired_date else shift.total_seconds)
    return _format_time(moved, parsed[1])


@lru_cache(maxsize=16384)
def shift_datetime(value: str, shift: DateShift) -> str | None:
    """Shift one DT value, keeping its precision and UTC offset suffix."""
    match = _DT.match(value.strip())
    if match is None:
        return None
    given = [g is not None for g in match.groups()[:6]]
    try:
        moment = dt.datetime(
            int(match[1]), int(match[2] or 1), int(match[3] or 1),
            int(match[4] or 0), int(match[5] or 0), min(int(match[6] or 0), 59),
        )
        fraction = match[7] or ""
        moment += dt.timedelta(microseconds=int((fraction[1:] + "000000")[:6]) if fraction else 0)
        moved = moment + dt.timedelta(seconds=shift.total_seconds)
    except (ValueError, OverflowError):
        return None
    widths = (4, 6, 8, 10, 12, 14)
    text = moved.strftime("%Y%m%d%H%M%S")[: widths[sum(given) - 1]]
    if fraction:
        text += f".{moved.microsecond:06d}"[: len(fraction)]
    return text + (match[8] or "")

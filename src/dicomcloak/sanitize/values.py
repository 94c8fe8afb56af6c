"""Cheap validity checks of raw element values for their VR (PS3.5 6.2), on bytes, never decoded.

One precompiled byte pattern per text VR (character repertoire, value
multiplicity separators, maximum length per value) and one unit size per
binary VR: an element is checked with one ``fullmatch`` or one modulo, and
nothing is decoded unless the character set needs it (UTF-8, below). A value
that fails is *removed* by the sanitizer and recorded, never repaired: a
"repaired" date or UID would look authoritative and be wrong.

Deliberate leniencies (values real archives are full of, and that parse
safely): lowercase in CS, bytes >= 0x80 in text VRs under the default
character set (read as Latin-1 by pydicom), a trailing NUL pad, the ACR-NEMA
``YYYY.MM.DD`` date form, UID components with leading zeros.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

__all__ = ["TEXT_VRS", "UNITS", "is_valid", "max_short_length", "validator"]

#: A check: truthy for a valid value (a compiled pattern's ``fullmatch``, or a function).
Check = Callable[[bytes], object]

#: VRs whose value is text in the instance's character set (decoded by pydicom).
TEXT_VRS = frozenset({"LO", "SH", "PN", "ST", "LT", "UT", "UC"})

# Control characters other than ESC (ISO 2022 code extensions, PS3.5 6.1.2.5.3) are
# not in any repertoire; ST/LT/UT also allow TAB, LF, FF and CR (PS3.5 6.1.3).
_LINE = rb"[^\x00-\x1a\x1c-\x1f\\]"
_FREE = rb"[^\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]"
_PAD = rb"[ \x00]?"  # one pad byte to even length (PS3.5 6.2)
#: Value size unit of the binary VRs: the length must be a multiple (PS3.5 6.2).
UNITS: dict[str, int] = {
    "US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "SV": 8, "UV": 8,
    "OW": 2, "OF": 4, "OD": 8, "OL": 4, "OV": 8, "US or SS": 2, "US or OW": 2,
}
# VRs whose explicit VR length field has two bytes (PS3.5 7.1.2).
_SHORT_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST",
     "TM", "UI", "UL", "US"}
)


def _multi(one: bytes) -> bytes:
    """Values separated by backslashes (PS3.5 6.4), then an optional NUL pad."""
    return rb"(?:" + one + rb")(?:\\(?:" + one + rb"))*" + _PAD


_UID = rb"(?:[0-9]{1,64}(?:\.[0-9]{1,64}){0,63})? ?"
_SINGLE_BYTE: dict[str, bytes] = {
    "AE": _multi(rb"[\x20-\x5b\x5d-\x7e]{0,16}"),
    "AS": _multi(rb"(?:[0-9]{3}[DWMY])?"),
    "CS": _multi(rb"[\x20-\x5b\x5d-\x7e]{0,16}"),
    "DA": _multi(rb"(?:[0-9]{8}|[0-9]{4}\.[0-9]{2}\.[0-9]{2})? *"),
    "DS": _multi(rb"[0-9+\-.eE ]{0,16}"),
    "DT": _multi(rb"[0-9.+\- ]{0,26}"),
    "IS": _multi(rb"[0-9+\- ]{0,12}"),
    "TM": _multi(rb"[0-9.: ]{0,16}"),
    "UI": rb"(?:" + _UID + rb")(?:\\(?:" + _UID + rb"))*" + _PAD,
    "UR": rb"[\x20-\x7e]*" + _PAD,
    "LO": _multi(_LINE + rb"{0,64}"),
    "SH": _multi(_LINE + rb"{0,16}"),
    "PN": _multi(_LINE + rb"{0,194}"),  # three component groups of 64, two "=" (PS3.5 6.2.1)
    "UC": _multi(_LINE + rb"*"),
    "ST": _FREE + rb"{0,1024}" + _PAD,
    "LT": _FREE + rb"{0,10240}" + _PAD,
    "UT": _FREE + rb"*" + _PAD,
}
# Multi-byte character sets (ISO 2022 JIS/KS, GB18030, GBK, UTF-8): a backslash byte
# may sit inside a character, and lengths count characters, not bytes.
_MULTI_BYTE: dict[str, bytes] = {
    **_SINGLE_BYTE,
    "LO": _FREE + rb"{0,1024}",
    "SH": _FREE + rb"{0,256}",
    "PN": _FREE + rb"{0,1024}",
    "UC": _FREE + rb"*",
    "ST": _FREE + rb"{0,4096}",
    "LT": _FREE + rb"{0,40960}",
}


def _pattern_check(pattern: bytes) -> Check:
    return re.compile(pattern, re.DOTALL).fullmatch


def _unit_check(unit: int) -> Check:
    return lambda value: len(value) % unit == 0


def _utf8_check(inner: Check) -> Check:
    def check(value: bytes) -> bool:
        if not inner(value):
            return False
        if value.isascii():
            return True
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    return check


def _build(patterns: dict[str, bytes], utf8: bool) -> dict[str, Check]:
    checks = {vr: _pattern_check(pattern) for vr, pattern in patterns.items()}
    if utf8:
        checks.update({vr: _utf8_check(checks[vr]) for vr in TEXT_VRS})
    checks.update({vr: _unit_check(unit) for vr, unit in UNITS.items()})
    return checks


_CHECKS = {
    (False, False): _build(_SINGLE_BYTE, False),
    (True, False): _build(_MULTI_BYTE, False),
    (True, True): _build(_MULTI_BYTE, True),
}


def validator(multi_byte: bool, utf8: bool) -> dict[str, Check]:
    """The checks by VR for a character set: single-byte, multi-byte, or UTF-8 (decoded to check).

    VRs without a check (OB, UN, SQ, ...) are absent: any bytes are valid.
    """
    return _CHECKS[(multi_byte or utf8, utf8)]


def is_valid(vr: str, value: bytes, *, multi_byte: bool = False, utf8: bool = False) -> bool:
    """True if ``value`` is a valid raw value for ``vr`` (convenience form of :func:`validator`)."""
    check = validator(multi_byte, utf8).get(vr)
    return check is None or bool(check(value))


@cache
def max_short_length(vr: str) -> int:
    """Longest value an explicit VR header of ``vr`` can carry (2-byte lengths: 0xFFFF)."""
    return 0xFFFF if vr in _SHORT_VRS else 0xFFFFFFFE

"""Patterns of identifying text that need no header: dates, times, long numbers, phones, places.

HIPAA's Safe Harbor identifiers (45 CFR 164.514(b)(2)) and PS3.15 E.3.1
(Clean Pixel Data) name what burned-in text must not show: dates (other
than years), telephone numbers, SSNs, e-mail addresses, record numbers,
geographic subdivisions smaller than a state, ages. Each pattern below is
tried on the text after look-alike letters inside numeric words were read
as digits (:func:`.normalise.digit_fold`), so ``O8/29/l951`` is a date;
the rules about words (places, institutions, groups) on the text with
digits inside words read as letters (:func:`.normalise.letter_fold`).

Annotation text must stay unflagged: ``5.0 MHz``, ``TIS 0.4``, ``1:1``,
``WW 400 WL 40``, ``C5-1`` match none of them (times need two-digit minutes,
long numbers six digits in a row).
"""

from __future__ import annotations

import re

from dicomcloak.pixels.classify.normalise import digit_fold, letter_fold

__all__ = ["PATTERNS", "find_pattern"]

_MON = (
    r"(?:JAN(?:UARY)?|FEB(?:RUARY)?|MAR(?:CH)?|APR(?:IL)?|MAY|JUNE?|JULY?|AUG(?:UST)?|SEP(?:T(?:EMBER)?)?"
    r"|OCT(?:OBER)?|NOV(?:EMBER)?|DEC(?:EMBER)?)(?![A-Z])\.?"
)
_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|"
    "NY|NC|ND|OH|OK|OR|PA|PR|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)
_STREET = (
    r"STREET|ST|AVENUE|AVE|ROAD|RD|BOULEVARD|BLVD|DRIVE|DR|LANE|LN|WAY|COURT|CT|PLACE|PL|SUITE|STE|"
    r"HIGHWAY|HWY|PARKWAY|PKWY|SQUARE|SQ|TERRACE|STRASSE|STR|RUE|PLAZA"
)
_INSTITUTION = (
    r"HOSPITAL|HOSP|CLINIC|CLINICS|MEDICAL|MED\s+CTR|INFIRMARY|UNIVERSITY|UNIV|INSTITUTE|HEALTH|"
    r"HEALTHCARE|RADIOLOGY|KLINIK|KLINIKUM|HOPITAL|SPITAL|OSPEDALE|ZIEKENHUIS|SANATORIUM"
)
#: Nationality, religious and political group words (Presidio's NRP entity), a small list.
_NRP = (
    r"CATHOLIC|PROTESTANT|BAPTIST|METHODIST|LUTHERAN|PRESBYTERIAN|ANGLICAN|EPISCOPALIAN|ORTHODOX|MORMON|"
    r"JEHOVAH'?S\s+WITNESS|MUSLIM|MOSLEM|ISLAMIC|JEWISH|JEW|HINDU|BUDDHIST|SIKH|ATHEIST|AGNOSTIC|"
    r"DEMOCRAT|REPUBLICAN|COMMUNIST|SOCIALIST|LIBERTARIAN|"
    r"AMERICAN|MEXICAN|CANADIAN|CHINESE|JAPANESE|KOREAN|VIETNAMESE|FILIPINO|INDIAN|PAKISTANI|"
    r"NIGERIAN|ETHIOPIAN|SOMALI|HAITIAN|CUBAN|PUERTO\s+RICAN|DOMINICAN|BRAZILIAN|COLOMBIAN|"
    r"GERMAN|FRENCH|ITALIAN|SPANISH|POLISH|RUSSIAN|UKRAINIAN|IRISH|BRITISH|ENGLISH|GREEK|TURKISH|"
    r"IRANIAN|IRAQI|SYRIAN|LEBANESE|ARAB|ISRAELI|HISPANIC|LATINO|LATINA"
)
_I = re.IGNORECASE

#: ``(rule, kind, regex)`` in the order they are tried; the first that matches names the rule.
PATTERNS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("email", "email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("ssn", "id", re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)")),
    ("phone", "phone", re.compile(
        r"(?<![\d.])(?:\+?\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}(?![\d.])"
    )),
    ("date", "date", re.compile(
        r"(?<![\d.])(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})|\d{4}[/.\-]\d{1,2}[/.\-]\d{1,2})(?![\d.])"
    )),
    ("date", "date", re.compile(
        rf"(?<![A-Z0-9])(?:\d{{1,2}}(?:ST|ND|RD|TH)?[\s\-./]*{_MON}[\s\-./,]*(?:\d{{4}}|\d{{2}})"
        rf"|{_MON}[\s\-./]*\d{{1,2}}(?:ST|ND|RD|TH)?[\s\-./,]+(?:\d{{4}}|\d{{2}})"
        rf"|{_MON}[\s\-./,]*(?:19|20)\d{{2}})(?![0-9])", _I,
    )),
    ("time", "time", re.compile(
        r"(?<![\d:.])(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?:\s*[AP]\.?M\.?)?(?![\d:])", _I
    )),
    ("digits", "id", re.compile(r"\d{6,}")),
    ("age", "age", re.compile(r"(?<![\w.])\d{1,3}\s?(?:Y|YO|Y/O|YR|YRS|YEARS?)(?![\w/])", _I)),
    ("city-state", "location", re.compile(
        rf"\b[A-Za-z][A-Za-z.'\-]{{2,}}(?:\s+[A-Za-z][A-Za-z.'\-]+){{0,2}},\s*(?:{_STATES})\b"
    )),
    ("zip", "location", re.compile(rf"\b(?:{_STATES})\s+\d{{5}}(?:-\d{{4}})?\b")),
    ("address", "location", re.compile(
        rf"\b\d{{1,6}}\s+(?:[A-Za-z][\w.'\-]*\s+){{1,4}}(?:{_STREET})\b\.?|\bP\.?\s?O\.?\s+BOX\s+\d+", _I
    )),
    ("institution", "institution", re.compile(rf"\b(?:{_INSTITUTION})\b", _I)),
    ("nrp", "nrp", re.compile(rf"\b(?:{_NRP})\b", _I)),
)


#: Rules about words, tried on the text with digits read as letters (``P0RTLAND, 0R``).
_ALPHABETIC = frozenset({"city-state", "institution", "nrp"})


def find_pattern(text: str) -> tuple[str, str] | None:
    """``(rule, kind)`` of the first identifying pattern in ``text``, or ``None``."""
    numeric, alphabetic = digit_fold(text), letter_fold(text)
    for rule, kind, regex in PATTERNS:
        if regex.search(alphabetic if rule in _ALPHABETIC else numeric):
            return rule, kind
    return None

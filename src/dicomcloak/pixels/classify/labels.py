"""PHI labels burned in beside the value they announce: ``DOB:``, ``MRN``, ``Name:``, ``Acc#``, ``Ref:``.

A label says what follows is identifying, even when the value itself is not
recognisable (a sonographer's first name alone, a name missing from every
list, a date OCR garbled). A region holding a label is PHI, and so is the
region that follows it on the same text line (:mod:`.lines`): the label box
itself is redacted too, so that an OCR box that cut the value short still
covers it.

Two strengths:

* *strong* labels identify on their own, with or without punctuation
  (``DOB``, ``D.O.B.``, ``MRN``, ``Acc#``, ``SSN``, ``Accession``, ``Patient ID``);
* *weak* labels are common words that count only when followed by ``:`` or
  ``#`` (``Name:``, ``ID:``, ``Pt:``, ``Ref:``, ``Sono:``, ``Date:``), or when
  the region holds nothing else (a box reading ``Name``).
"""

from __future__ import annotations

import re

__all__ = ["LABELS", "find_label", "trailing_label"]

_I = re.IGNORECASE

#: ``(label, kind of what follows, pattern)``; strong labels first.
_STRONG: tuple[tuple[str, str, str], ...] = (
    ("DOB", "date", r"D\.?\s?O\.?\s?B\.?|DATE\s+OF\s+BIRTH|BIRTH\s?DATE|GEB(?:URTSDATUM)?\.?"),
    ("MRN", "id", r"MRN|MR\s?#|MED(?:ICAL)?\.?\s+REC(?:ORD)?\.?(?:\s+(?:NO|NUM|NUMBER)\.?|\s?#)?"),
    ("Acc#", "id", r"ACC(?:ESSION)?\s?(?:#|NO\.|NUM(?:BER)?)|ACCESSION"),
    ("SSN", "id", r"SSN|S\.S\.N\.?|SOC(?:IAL)?\.?\s+SEC(?:URITY)?\.?(?:\s+(?:NO|NUMBER)\.?)?"),
    ("PatientID", "id", r"PAT(?:IENT)?\.?\s?ID|PID"),
    ("Name", "person-name", r"PAT(?:IENT)?\.?\s?NAME|PT\.?\s?NAME"),
)
_WEAK: tuple[tuple[str, str, str], ...] = (
    ("Name", "person-name", r"NAME|NOM|NAAM"),
    ("Patient", "person-name", r"PATIENT|PAT|PT"),
    ("ID", "id", r"ID|ID\s?(?:NO|NUM|NUMBER)\.?|MR|ACCT|ACCOUNT|ENCOUNTER|VISIT|CASE|ACC"),
    ("Ref", "person-name", r"REF(?:ERRING)?|REF\.?\s?(?:PHYS|DR|MD)|REQ(?:UESTING)?"),
    ("Physician", "person-name",
     r"PHYSICIAN|DOCTOR|MD|ATTENDING|PROVIDER|SURGEON|RADIOLOGIST|READ\s+BY|READER"),
    ("Operator", "person-name",
     r"SONO(?:GRAPHER)?|TECH(?:NOLOGIST)?|OPERATOR|OP|PERFORMED\s+BY|SCANNED\s+BY"),
    ("Date", "date", r"(?:EXAM\s+|STUDY\s+|SCAN\s+)?DATE|DOS|BIRTH|BORN"),
    ("Age", "age", r"AGE"),
    ("Hospital", "institution", r"HOSPITAL|INSTITUTION|FACILITY|CLINIC|DEPT|WARD|ROOM|BED|LOCATION|LOC"),
    ("Address", "location", r"ADDRESS|ADDR|CITY|ZIP"),
    ("Phone", "phone", r"PHONE|TEL|TELEPHONE|MOBILE|CELL|FAX"),
    ("Email", "email", r"E-?MAIL"),
)

#: Every label name with the kind of value it announces.
LABELS: dict[str, str] = {name: kind for name, kind, _ in _STRONG + _WEAK}

_BEFORE = r"(?<![A-Za-z0-9])"
_STRONG_RE = tuple(
    (name, re.compile(rf"{_BEFORE}(?:{pattern})(?![A-Za-z])\s*[:#.]?", _I)) for name, _, pattern in _STRONG
)
_WEAK_RE = tuple((name, re.compile(rf"{_BEFORE}(?:{pattern})\s*[:#]", _I)) for name, _, pattern in _WEAK)
#: Weak labels that are a label even alone in a region: not ``MR``, ``PT``, ``MD``, ``AGE``, ``OP``...
_BARE_WEAK = {
    "Name": "NAME", "Patient": "PATIENT", "ID": "ID|ID\\s?(?:NO|NUMBER)", "Ref": "REF|REFERRING",
    "Physician": "PHYSICIAN|RADIOLOGIST", "Operator": "SONO|SONOGRAPHER|OPERATOR|TECHNOLOGIST",
    "Date": "(?:EXAM\\s+|STUDY\\s+)?DATE|BIRTH", "Hospital": "HOSPITAL|INSTITUTION|FACILITY",
    "Address": "ADDRESS", "Phone": "PHONE|TELEPHONE", "Email": "E-?MAIL",
}
_BARE_RE = tuple(
    (name, re.compile(rf"\s*(?:{pattern})\s*[:#.]?\s*", _I))
    for name, pattern in [(name, pattern) for name, _, pattern in _STRONG] + list(_BARE_WEAK.items())
)


def find_label(text: str) -> tuple[str, str] | None:
    """``(label, text after it)`` for the first PHI label in ``text``, or ``None``.

    The text after a bare label (a region that is only ``DOB:``) is ``""``.
    """
    for name, regex in _BARE_RE:
        if regex.fullmatch(text):
            return name, ""
    found = [(match.start(), name, match.end()) for name, regex in _STRONG_RE + _WEAK_RE
             if (match := regex.search(text))]
    if not found:
        return None
    _, name, end = min(found)
    return name, text[end:].strip()


def trailing_label(text: str) -> str | None:
    """The label ``text`` ends with (``Pt ID:``, ``Ref:``), announcing the next region; else ``None``."""
    end = len(text.rstrip())
    for name, regex in _STRONG_RE + _WEAK_RE:
        if any(match.end() >= end for match in regex.finditer(text)):
            return name
    bare = find_label(text)
    return bare[0] if bare and not bare[1] else None

"""Classify a text region read from the pixels as PHI or not (PS3.15 E.3.1, Clean Pixel Data).

:func:`classify` decides for one region's text, :func:`classify_line` for
the regions of one image, looking at neighbours on the same text line. The
rules, tried in order (the first that fires names the :class:`Verdict`'s
``rule``):

1. ``header:<Keyword>``: the text shows one of the instance's own
   identifying header values (:class:`HeaderValues`, captured from the
   ORIGINAL data set), exactly or with OCR noise (:mod:`.header`);
2. ``pattern:<name>``: a date, time, long number, phone, SSN, e-mail,
   ``City, ST``, ZIP, street address, institution word or NRP word
   (:mod:`.patterns`);
3. ``names:first+last``, ``names:last,first``, ``names:title``: a first name
   next to a surname from the US Census lists, or a title before a name
   (:mod:`.names`); a lone surname never (LEFT, GAIN, KIDNEY are surnames);
4. ``label:<Label>``: a PHI label (``DOB``, ``MRN``, ``Name:``...), alone or
   with what follows it (:mod:`.labels`).

No NER model: none ships inside a wheel with known provenance and training
data (spaCy's English models are not on PyPI). Kinds map to the entity
kinds of Presidio through :data:`ENTITY_OF_KIND` (PERSON, LOCATION, NRP,
DATE_TIME...). Verdicts carry kinds and rule names, never the text.
"""

from __future__ import annotations

from collections.abc import Sequence

from dicomcloak.pixels.classify.header import HeaderValues
from dicomcloak.pixels.classify.labels import LABELS, find_label
from dicomcloak.pixels.classify.lines import with_neighbours
from dicomcloak.pixels.classify.names import find_person
from dicomcloak.pixels.classify.normalise import letter_fold
from dicomcloak.pixels.classify.patterns import find_pattern
from dicomcloak.pixels.model import TextBox, Verdict

__all__ = ["ENTITY_OF_KIND", "NOT_PHI", "UNREAD", "HeaderValues", "classify", "classify_line"]

#: The verdict for a region with no identifying content.
NOT_PHI = Verdict(False, "none", "none")
#: The verdict for a region whose text was not read (detection only, or a template): it may hold anything.
UNREAD = Verdict(True, "text", "unread")

#: Verdict kinds as entity kinds (Presidio's names, where it has one).
ENTITY_OF_KIND = {
    "person-name": "PERSON", "location": "LOCATION", "institution": "LOCATION", "nrp": "NRP",
    "date": "DATE_TIME", "time": "DATE_TIME", "age": "DATE_TIME", "id": "ID", "phone": "PHONE_NUMBER",
    "email": "EMAIL_ADDRESS", "label": "LABEL", "text": "TEXT", "none": "NONE",
}


def classify(text: str, header: HeaderValues) -> Verdict:
    """Whether ``text`` (one region read by OCR) is PHI for the instance ``header`` was captured from.

    Parameters
    ----------
    text:
        The region's text as recognised (OCR noise allowed).
    header:
        The instance's identifying header values, from :meth:`HeaderValues.capture`
        on the ORIGINAL data set.

    Returns
    -------
    Verdict
        ``phi``, the kind of identifier and the rule that decided; :data:`NOT_PHI`
        for text no rule flags (and for blank text).
    """
    if not text.strip():
        return NOT_PHI
    return _by_header(text, header) or _by_pattern(text) or _by_name(text) or _by_label(text) or NOT_PHI


def _by_header(text: str, header: HeaderValues) -> Verdict | None:
    found = header.match(text)
    return Verdict(True, found[1], f"header:{found[0]}") if found else None


def _by_pattern(text: str) -> Verdict | None:
    found = find_pattern(text)
    return Verdict(True, found[1], f"pattern:{found[0]}") if found else None


def _by_name(text: str) -> Verdict | None:
    rule = find_person(text)
    return Verdict(True, "person-name", rule) if rule else None


def _by_label(text: str) -> Verdict | None:
    found = find_label(letter_fold(text))
    if not found:
        return None
    name, rest = found
    return Verdict(True, LABELS[name] if rest else "label", f"label:{name}")


def classify_line(boxes: Sequence[TextBox], header: HeaderValues) -> list[Verdict]:
    """One verdict per box, in order, each box judged with its neighbours on the same text line.

    A box whose ``text`` is ``None`` (not recognised: detection only, or a
    device template) gets :data:`UNREAD`, which is PHI: what was not read
    cannot be cleared. See :mod:`.lines` for the neighbour rules.
    """
    own = [UNREAD if box.text is None else classify(box.text, header) for box in boxes]
    return with_neighbours(boxes, own)

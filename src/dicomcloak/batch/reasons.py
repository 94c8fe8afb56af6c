"""What each reason code a run can report means, and what to do about it: one table for the run report.

A run reports every entry it did not write by index and reason code
(``report.json`` ``not_written``, :mod:`dicomcloak.batch.report`). The codes
are raised in many places (the walk, the reader, the sanitizer, the engine, the
pixel stage, the claims, the vault); the person who reads ``report.html`` (a
privacy officer, an operator) needs one sentence on what happened and one on
what to do, next to the count. This module is that table, gathered from where
each error is raised and from docs/security.md ("Reason codes", "Input walk",
"Limits"), docs/pixels.md and docs/vault.md.
``tests/batch/test_reasons.py`` finds every code an input error, a skip or a
run-stopping error can carry in the source and checks that it is here.

Words only: no code here is ever followed by a value, and neither is its text
(architecture.md decision 7).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REASONS", "Reason", "reason"]


@dataclass(frozen=True)
class Reason:
    """One reason code: the outcome it leads to, what it means, and what to do about it."""

    code: str
    outcome: str  # quarantined, skipped, duplicate, unwritten
    meaning: str
    action: str


_Q, _S, _D, _U = "quarantined", "skipped", "duplicate", "unwritten"
_LIMITS = (
    "raise the limit in the site policy's [sanitize.limits] (docs/security.md, 'Limits') "
    "if such files are expected"
)
_SOURCE = (
    "ask the sender for a clean export of this instance; "
    "the original is in the quarantine with its .reason.json"
)
_BUG = "report it with the .reason.json (it holds no values): this is a bug in dicomcloak, not in the input"
_RUN_AGAIN = "fix the cause named in the report's 'stopped' section, then run the same command again"

_TABLE: tuple[tuple[str, str, str, str], ...] = (
    # The input walk (docs/security.md, "Input walk"): never opened, counted.
    ("symlink-outside-input", _S, "a symbolic link to something outside the input was not followed",
     "copy the target into the input, or pass --follow-symlinks if the link is meant"),
    ("symlink-duplicate", _S, "a symbolic link to a file inside the input: the file itself was processed",
     "nothing: each file is processed once, by its real path"),
    ("dangling-symlink", _S, "a symbolic link to nothing, or a loop of links", "remove or repair the link"),
    ("not-regular-file", _S, "a FIFO, socket or device in the input tree was never opened",
     "nothing, unless a file was meant: copy it in as a regular file"),
    ("temporary-file", _S, "a temporary file left by an interrupted dicomcloak run",
     "nothing: it is not an input (later runs remove their own debris)"),
    ("unsafe-path", _Q, "a zip or tar member's path would leave the archive (zip slip); it was never "
     "processed", "check where the archive comes from; an honest archive has no such member"),
    ("archive-link", _S, "a symbolic or hard link inside a tar archive: never followed",
     "nothing, unless the linked file was meant: archive the file itself (tar without -h keeps links)"),
    ("sparse-member", _S, "a GNU sparse member of a tar archive: its data are not contiguous, not read",
     "re-create the archive without --sparse"),
    ("archive-too-large", _Q, "a compressed tar would inflate beyond max_archive_bytes or 90% of the free "
     "space of the run directory (a decompression bomb, or a very large export)",
     "unpack it yourself onto a large enough disk and give the directory, or raise max_archive_bytes in "
     "the site policy's [sanitize.limits] (docs/inputs.md)"),
    ("media-directory", _S, "a DICOMDIR (a CD's media directory, PS3.10 section 8): never de-identified or "
     "copied, it names patients; its instances were processed and a new DICOMDIR written for them",
     "nothing: the output's DICOMDIR is the new one (docs/inputs.md)"),
    ("unreadable", _Q, "the entry could not be opened or listed (permissions, or it changed during the run)",
     "check its permissions and run again"),
    # Duplicates and UID conflicts (batch.claims).
    ("duplicate-instance", _D, "the same data set was already written in this run: not written twice",
     "nothing: the output holds it once"),
    ("uid-conflict", _Q, "another input with the same SOP Instance UID but other content was written first",
     "check the two inputs listed under UID conflicts; --uid-conflicts keep-both writes both"),
    ("output-collision", _Q, "another input already wrote this output path (--layout mirror)",
     "use the pseudonymous layout, or give inputs distinct paths"),
    # Not DICOM, or not well formed (NotDicomError, MalformedError).
    ("not-dicom", _Q, "the file is not DICOM",
     "nothing if it was not meant to be an image; else re-export it"),
    ("malformed", _Q, "DICOM that cannot be parsed consistently", _SOURCE),
    ("truncated", _Q, "the file ends in the middle of an element",
     "copy it again from its source: it is cut"),
    ("length-beyond-file", _Q, "an element's length runs past the end of the file", _SOURCE),
    ("element-repeated", _Q, "an element appears twice in one data set", _SOURCE),
    ("trailing-bytes", _Q, "bytes follow the last complete element", _SOURCE),
    ("deflate-invalid", _Q, "the deflated data set does not inflate", _SOURCE),
    ("missing-sop-instance-uid", _Q, "the instance has no SOP Instance UID: it cannot be identified",
     _SOURCE),
    ("unparseable", _Q, "the parser could not read the data set", _SOURCE),
    ("sanitize-failed", _Q, "the sanitizer could not rebuild the instance from valid elements", _SOURCE),
    ("element-undecodable", _Q, "an element that de-identification must change could not be decoded",
     _SOURCE),
    ("identity-undecodable", _Q, "the patient or study identity could not be decoded for its pseudonyms",
     _SOURCE),
    # Reading limits (ReadLimitError).
    ("read-limit", _Q, "a reading limit was exceeded", _LIMITS),
    ("file-too-large", _Q, "the file is larger than max_file_bytes", _LIMITS),
    ("meta-too-large", _Q, "the File Meta Information is larger than max_meta_bytes", _SOURCE),
    ("element-too-large", _Q, "an element is longer than max_element_bytes", _LIMITS),
    ("too-many-elements", _Q, "the instance holds more than max_elements elements (large multi-frames can)",
     _LIMITS),
    ("sequence-too-deep", _Q, "sequences are nested deeper than max_sequence_depth", _SOURCE),
    ("deflate-bomb", _Q, "the deflated data set inflates far beyond its size", _SOURCE),
    ("pixel-bomb", _Q, "the compressed image describes far more pixels than its data can hold", _SOURCE),
    ("memory-exhausted", _Q, "reading the instance did not fit in the memory left",
     "run again with fewer --jobs or more memory"),
    ("pixel-too-large", _Q, "the decoded frames would exceed the pixel stage's decoding limit",
     "raise the pixel decoding limit if such images are expected (docs/pixels.md)"),
    # Content the sanitizer refuses (UnsafeContentError, docs/security.md).
    ("unsafe-content", _Q, "the sanitizer refused the instance", _SOURCE),
    ("preamble-executable", _Q, "the 128-byte preamble holds an executable header (a polyglot file)",
     "treat the file as suspect: do not open it elsewhere; tell whoever sent it"),
    ("encapsulated-document", _Q, "the instance carries an encapsulated document (PDF, CDA ...)",
     "check the document by hand, or set [sanitize] encapsulated_documents in the site policy"),
    ("waveform-present", _Q, "the instance carries waveforms the site policy quarantines",
     "set [sanitize] waveforms in the site policy to keep or remove them"),
    ("icon-present", _Q, "the instance carries an icon image the site policy quarantines",
     "set [sanitize] icons in the site policy to keep or remove it"),
    ("overlay-present", _Q, "the instance carries overlays the site policy quarantines",
     "set [sanitize] overlays in the site policy to keep or remove them"),
    ("charset-unknown", _Q, "the Specific Character Set names an unknown character set: text cannot be "
     "decoded reliably", _SOURCE),
    ("uid-invalid", _Q, "a UID is missing or not digits and dots (PS3.5 9.1)", _SOURCE),
    ("pixel-description-invalid", _Q, "the image description (rows, columns, bits) is inconsistent",
     _SOURCE),
    ("pixel-length-mismatch", _Q, "the Pixel Data length does not match the image description", _SOURCE),
    # Burned-in text (the pixel stage, docs/pixels.md).
    ("pixel-phi-remains", _Q, "the verifying OCR pass still read text after redaction",
     "look at the image (dicomcloak scan FILE --report r.html), add a device template for it, "
     "or clean it by hand"),
    ("pixel-undecodable", _Q, "no installed decoder reads this image's transfer syntax",
     "convert it to a supported transfer syntax (docs/pixels.md), or --pixels off if it has no text"),
    ("pixel-quarantine-policy", _Q, "the pixel policy quarantines images of this kind at risk of text",
     "change --pixels or the policy's [pixels] section, or clean the image by hand"),
    ("pixel-unencodable", _Q, "the redacted image could not be encoded again", _BUG),
    # De-identification and encoding (ProcessingError).
    ("processing-failed", _Q, "de-identifying the parsed instance failed", _BUG),
    ("encode-failed", _Q, "the de-identified instance could not be encoded", _SOURCE),
    ("internal-error", _Q, "an unexpected error with this input (the run went on)", _BUG),
    ("input-error", _Q, "the input could not be processed", _SOURCE),
    # What stops a run (the report counts what is on disk; docs/vault.md, "When the database fails").
    ("vault-busy", _U, "the vault database stayed locked by another connection", _RUN_AGAIN),
    ("vault-unreachable", _U, "the connection to the vault database was lost", _RUN_AGAIN),
    ("vault-full", _U, "the vault database, or the disk under it, is full", _RUN_AGAIN),
    ("vault-broken", _U, "the vault database failed", _RUN_AGAIN),
    ("seal-failed", _U, "the originals of a group of outputs could not be sealed", _RUN_AGAIN),
    ("output-unwritable", _U, "the output or the run directory could not be written (space, permissions)",
     _RUN_AGAIN),
    ("worker-died", _U, "a worker process ended without answering (killed, out of memory)", _RUN_AGAIN),
    ("output-not-placed", _U, "an output's group could not be committed", _RUN_AGAIN),
)

#: Every reason code a run reports, by code.
REASONS: dict[str, Reason] = {code: Reason(code, *rest) for code, *rest in _TABLE}


def reason(code: str, outcome: str = _Q) -> Reason:
    """The table's entry for ``code``; a code not in it (a newer version's) gets the general advice."""
    found = REASONS.get(code)
    if found is not None:
        return found
    return Reason(code, outcome, "see docs/security.md, 'Reason codes'",
                  "the original is in the quarantine with its .reason.json, which holds the hint")

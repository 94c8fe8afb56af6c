"""The sanitize stage (content disarm and reconstruction): one Dataset in, a rebuilt one or a verdict out.

architecture.md decision 5: every file dicomcloak writes is rebuilt from elements
that parse and validate; hostile input is quarantined with a reason code and
never crashes the process. The stage is pure: the reader (with its limits)
comes before it, the writer (zero preamble, fresh File Meta, no trailing
bytes) after it.

Reason codes of a quarantine verdict (``docs/security.md``):
``preamble-executable``, ``encapsulated-document``, ``waveform-present``,
``icon-present``, ``overlay-present``, ``charset-unknown``, ``uid-invalid``,
``pixel-description-invalid``, ``pixel-length-mismatch``, ``pixel-bomb``
(:class:`~dicomcloak.errors.UnsafeContentError`); ``sequence-too-deep``,
``too-many-elements``, ``memory-exhausted``
(:class:`~dicomcloak.errors.ReadLimitError`); ``sanitize-failed``
(:class:`~dicomcloak.errors.MalformedError`), and the reader's own codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from dicomcloak.engine import markers
from dicomcloak.engine.outcome import Change
from dicomcloak.engine.quiet import quiet_pydicom
from dicomcloak.errors import InputError, MalformedError, ReadLimitError, UnsafeContentError
from dicomcloak.policy.cdr import Disposition, SanitizeSettings
from dicomcloak.policy.model import Policy
from dicomcloak.raw import new_dataset
from dicomcloak.sanitize.preamble import PreambleKind, classify_preamble
from dicomcloak.sanitize.values import validator
from dicomcloak.sanitize.walk import Walk, copy_level, sanitize_level

__all__ = ["ENCAPSULATED_DOCUMENT_CLASSES", "Sanitized", "Verdict", "sanitize_dataset"]

#: Encapsulated PDF, CDA, STL, OBJ, MTL Storage (PS3.4 B.5): the document is the instance.
ENCAPSULATED_DOCUMENT_CLASSES = frozenset(f"1.2.840.10008.5.1.4.1.1.104.{n}" for n in range(1, 6))
_SOP_CLASS, _SOP_INSTANCE = 0x00080016, 0x00080018
_DOCUMENT = 0x00420011
_WAVEFORMS = 0x54000100
_DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Verdict:
    """The facts of an accepted instance (a quarantine is an :class:`UnsafeContentError` instead).

    Attributes
    ----------
    preamble:
        What the input's preamble held (the output's is always zeros).
    removed:
        How many elements were removed.
    """

    preamble: PreambleKind
    removed: int

    @property
    def accepted(self) -> bool:
        """Always True: a refused instance raises instead of returning a verdict."""
        return True


@dataclass(frozen=True)
class Sanitized:
    """A sanitized instance: the rebuilt dataset, what was removed, and the verdict's facts.

    ``changes`` are ``Change(path, "X", "sanitize:<reason>")`` whose paths
    address elements of the *input* dataset (items are never removed, so
    indices hold); ``dataset`` has fresh File Meta Information.
    """

    dataset: Dataset
    changes: tuple[Change, ...]
    verdict: Verdict


def sanitize_dataset(
    dataset: Dataset, settings: SanitizeSettings, policy: Policy | None = None, *, moot: bool = False
) -> Sanitized:
    """Rebuild ``dataset`` from its valid elements, or refuse it; ``dataset`` is not modified.

    Parameters
    ----------
    dataset:
        A dataset as :func:`dicomcloak.io.read_dataset` returns it (raw elements).
    settings:
        Limits and content choices (usually ``policy.sanitize``).
    policy:
        The de-identification policy whose private-element rules are enforced
        (the Basic Profile's when None: every private element removed).
    moot:
        De-identification with ``policy`` follows: elements it removes are left
        to it (no decoding happens for them either), see ``docs/security.md``.

    Raises
    ------
    UnsafeContentError, ReadLimitError, MalformedError
        The quarantine verdict, with its reason code; nothing else escapes.
    """
    quiet_pydicom()
    try:
        return _sanitize(dataset, settings, policy or _DEFAULT_POLICY, moot)
    except InputError:
        raise
    except RecursionError:
        raise ReadLimitError(
            "sequences are nested deeper than the interpreter allows", reference="sequence-too-deep"
        ) from None
    except MemoryError:
        raise ReadLimitError("sanitizing exhausted memory", reference="memory-exhausted") from None
    except Exception as exc:  # noqa: BLE001 - the stage's border: only typed errors escape
        raise MalformedError(
            f"the sanitizer could not process the instance ({type(exc).__name__})",
            reference="sanitize-failed",
            hint="the file is malformed",
        ) from None


def _sanitize(dataset: Dataset, settings: SanitizeSettings, policy: Policy, moot: bool) -> Sanitized:
    preamble = classify_preamble(getattr(dataset, "preamble", None))
    if preamble.executable:
        raise UnsafeContentError(
            f"the file preamble holds an executable ({preamble.value})",
            reference="preamble-executable",
            hint="a DICOM/executable polyglot (CVE-2019-11687): treat the source as compromised",
        )
    elements: dict[Any, Any] = dataset._dict  # type: ignore[assignment]  # noqa: SLF001 - raw storage
    _check_uids(elements)
    walk = Walk(settings, policy, moot, validator(False, False))
    removed = _content(elements, settings, walk)
    source = dataset
    if removed:
        gone = set(removed)
        source = copy_level(dataset, {tag: elem for tag, elem in elements.items() if int(tag) not in gone})
    level = sanitize_level(source, (), 0, walk)
    kept = dict((level if level is not None else source)._dict)  # noqa: SLF001
    out = new_dataset(kept, *_encoding(dataset), dataset.original_character_set)  # type: ignore[arg-type]
    if moot:
        out.__dict__["file_meta"] = dataset.file_meta  # de-identification builds the fresh one
    else:
        out.file_meta = markers.file_meta(dataset, out)
    walk.changes.sort(key=lambda change: change.path)
    return Sanitized(out, tuple(walk.changes), Verdict(preamble, len(walk.changes)))


def _encoding(dataset: Dataset) -> tuple[bool, bool]:
    implicit, little = dataset.original_encoding
    if implicit is None or little is None:
        syntax = dataset.file_meta.TransferSyntaxUID
        return bool(syntax.is_implicit_VR), bool(syntax.is_little_endian)
    return bool(implicit), bool(little)


def _uid_bytes(elements: dict[Any, Any], tag: int) -> bytes:
    """A UID element's bytes, raw or (when a caller already decoded it) re-encoded."""
    value = elements[tag].value if tag in elements else None
    if isinstance(value, str):
        return value.encode("ascii", "replace")
    return value if isinstance(value, bytes) else b""


def _check_uids(elements: dict[Any, Any]) -> None:
    """SOP Class and Instance UID must be valid: they name the output and its File Meta."""
    check = validator(False, False)["UI"]
    for tag in (_SOP_CLASS, _SOP_INSTANCE):
        value = _uid_bytes(elements, tag)
        if not value.strip(b"\x00 ") or not check(value):
            raise UnsafeContentError(
                f"the UID ({tag >> 16:04X},{tag & 0xFFFF:04X}) is missing or not a valid UID",
                reference="uid-invalid",
                hint="UIDs are digits and dots only (PS3.5 9.1)",
            )


def _content(elements: dict[Any, Any], settings: SanitizeSettings, walk: Walk) -> list[int]:
    """Apply the content choices to top-level content; returns the tags removed."""
    removed: list[int] = []
    sop_class = _uid_bytes(elements, _SOP_CLASS).strip(b"\x00 ").decode("ascii")
    if sop_class in ENCAPSULATED_DOCUMENT_CLASSES or _DOCUMENT in elements:
        choice = settings.encapsulated_documents
        removed += _dispose(choice, [_DOCUMENT], elements, "encapsulated-document", walk)
    if _WAVEFORMS in elements and settings.waveforms is not Disposition.KEEP:
        removed += _dispose(settings.waveforms, [_WAVEFORMS], elements, "waveform-present", walk)
    if settings.overlays is not Disposition.KEEP:
        overlays = [tag for tag in elements if 0x6000 <= tag >> 16 <= 0x601E and not (tag >> 16) % 2]
        if overlays:
            removed += _dispose(settings.overlays, overlays, elements, "overlay-present", walk)
    return removed


def _dispose(
    choice: Disposition, tags: list[int], elements: dict[Any, Any], reason: str, walk: Walk
) -> list[int]:
    if choice is Disposition.KEEP:
        return []
    if choice is Disposition.QUARANTINE:
        raise UnsafeContentError(
            f"the instance holds content the policy quarantines ({reason})",
            reference=reason,
            hint="change the [sanitize] choice in the site policy to keep or remove it",
        )
    present = sorted(int(tag) for tag in tags if tag in elements)
    for tag in present:
        walk.drop((tag,), reason.removesuffix("-present"))
    return present

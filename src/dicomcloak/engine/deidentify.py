"""Apply a Policy to one pydicom Dataset, recursively, and return an Outcome (PS3.15 E.1.1).

The engine builds a *new* dataset; the input's values are never modified
(pydicom may cache the decoded form of sequences it had to read). Elements the
policy keeps unchanged are carried over as pydicom ``RawDataElement`` objects,
so their bytes are copied, not decoded and re-encoded: this is what makes
de-identification faster than a plain pydicom round trip. Pixel data is never
decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from dicomcloak.engine import identity, markers
from dicomcloak.engine.actions import ElementContext, apply_action, resolve
from dicomcloak.engine.identifying import build_cleaner
from dicomcloak.engine.outcome import Change, Outcome, TagPath, format_path
from dicomcloak.engine.quiet import quiet_pydicom
from dicomcloak.engine.textclean import TextCleaner
from dicomcloak.engine.uidmap import Replaced
from dicomcloak.engine.values import element_vr
from dicomcloak.errors import DicomcloakError, ProcessingError
from dicomcloak.keys.pseudonyms import Pseudonymizer
from dicomcloak.policy.model import Policy
from dicomcloak.raw import new_dataset, read_items
from dicomcloak.standard.table import Action

__all__ = ["DUMMY_CODE_VALUE", "DUMMY_CODING_SCHEME", "Walk", "deidentify"]

#: The dummy code of a D on an identifying code sequence (the dummy text of every D on text).
DUMMY_CODE_VALUE = "ANONYMIZED"
DUMMY_CODING_SCHEME = "99DICOMCLOAK"

Element = DataElement | RawDataElement


@dataclass
class Walk:
    """State of one de-identification: inputs, per-instance facts, and the change log."""

    source: Dataset
    policy: Policy
    pseudonymizer: Pseudonymizer
    identity: identity.Identity
    encoding: tuple[bool, bool]
    charset: Any
    changes: list[Change] = field(default_factory=list)
    #: Every element given UIDs (U) or keyed pseudonyms (P): the vault's map, decoded on demand.
    replaced: list[Replaced] = field(default_factory=list)
    current: TagPath = ()
    _cleaner: TextCleaner | None = None

    def cleaner(self) -> TextCleaner:
        """The instance's text cleaner, built on first use (only C on free text needs it)."""
        if self._cleaner is None:
            self._cleaner = build_cleaner(self.source, self.policy, self.charset)
        return self._cleaner


def deidentify(dataset: Dataset, policy: Policy, pseudonymizer: Pseudonymizer) -> Outcome:
    """De-identify ``dataset`` under ``policy``, with keyed values from ``pseudonymizer``.

    Raises
    ------
    ProcessingError
        When an element cannot be decoded or processed; the message names the
        tag path and the exception type, never a value.
    """
    quiet_pydicom()
    walk = _start(dataset, policy, pseudonymizer)
    try:
        out = _process(dataset, (), walk)
        identity.apply_age_rules(out, walk.changes)
        markers.add_markers(out, walk.policy, walk.changes, walk.encoding)
        out.file_meta = markers.file_meta(dataset, out)
    except DicomcloakError:
        raise
    except Exception as exc:  # noqa: BLE001 - any pydicom failure becomes a typed error
        where = format_path(walk.current) or "(top level)"
        raise ProcessingError(
            f"cannot de-identify element {where} ({type(exc).__name__})",
            reference="element-undecodable",
            hint="the file is malformed at that element",
        ) from None
    walk.changes.sort(key=lambda change: change.path)
    return Outcome(out, tuple(walk.changes), walk.identity.patient_pseudonym, tuple(walk.replaced))


def _start(dataset: Dataset, policy: Policy, pseudonymizer: Pseudonymizer) -> Walk:
    try:
        ident = identity.identify(dataset, pseudonymizer)
    except Exception as exc:  # noqa: BLE001
        raise ProcessingError(
            f"cannot read the patient and study identity ({type(exc).__name__})",
            reference="identity-undecodable",
        ) from None
    return Walk(dataset, policy, pseudonymizer, ident, _encoding(dataset), dataset.original_character_set)


def _encoding(dataset: Dataset) -> tuple[bool, bool]:
    implicit, little = dataset.original_encoding
    if implicit is not None and little is not None:
        return implicit, little
    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None:
        return False, True
    return bool(syntax.is_implicit_VR), bool(syntax.is_little_endian)


def _process(source: Dataset, path: TagPath, walk: Walk) -> Dataset:
    """Process one dataset level (the top level or one sequence item)."""
    out = new_dataset({}, walk.encoding[0], walk.encoding[1], walk.charset)
    creators: dict[int, str] = {}
    kept_blocks: set[int] = set()
    # Direct storage: Dataset.__setitem__ costs ~14 us per element and does nothing
    # these elements need (they are copies or fresh elements with tag and VR set).
    out_elements = out._dict  # noqa: SLF001
    elements = source._dict  # noqa: SLF001 - pydicom 3.0 storage; elements() re-checks each tag
    plain, plain_vr = walk.policy.plain_keeps, walk.policy.plain_keep_vr
    removes, remove_source = walk.policy.plain_removes, walk.policy.plain_remove_source
    for tag in sorted(elements, key=int):  # int keys: BaseTag's Python-level __lt__ is slow
        elem = elements[tag]
        number = int(tag)  # plain int keys: BaseTag's __eq__ is Python-level and slow in dicts
        vr = plain[number] if number in plain else plain_vr(number)
        if vr is not None and (vr == elem.VR or elem.VR is None):
            # Fast path: a public element the policy keeps as it is, whatever its value.
            out_elements[tag] = _matching(elem, source, walk)
            continue
        walk.current = (*path, tag)
        removed = removes[number] if number in removes else remove_source(number)
        if removed is not None and elem.VR != "UN":  # UN: _process_element decodes it to learn its VR
            # Fast path: a public element the policy removes, whatever its VR and value.
            walk.changes.append(Change((*path, number), "X", removed))
            continue
        private = (tag >> 16) % 2 == 1
        if private and 0x0010 <= (tag & 0xFFFF) <= 0x00FF:
            creators[_block(tag)] = _creator_value(source, elem, walk)
            continue
        creator = creators.get(_block(tag)) if private and (tag & 0xFFFF) >= 0x1000 else None
        result = _process_element(source, elem, creator, path, walk)
        if result is not None:
            out_elements[tag] = _matching(result, source, walk)
            if private:
                kept_blocks.add(_block(tag))
    _keep_creators(source, out, creators, kept_blocks, path, walk)
    if not path:
        _drop_emptied_overlays(source, out, walk)
    return out


def _drop_emptied_overlays(source: Dataset, out: Dataset, walk: Walk) -> None:
    """Remove a whole overlay group when its Overlay Data was removed (PS3.3 C.9.2).

    Rows, Columns, Type, Origin and Bits Allocated of an overlay plane whose
    data is gone would describe an invalid plane, so the group goes entirely.
    """
    elements = out._dict  # noqa: SLF001 - see _process
    for group in range(0x6000, 0x6020, 2):
        data_tag = (group << 16) | 0x3000
        if data_tag in source._dict and data_tag not in elements:  # noqa: SLF001
            for tag in [t for t in elements if t >> 16 == group]:
                del elements[tag]
                walk.changes.append(Change((int(tag),), "X", "default:overlay-group"))


def _matching(elem: Element, source: Dataset, walk: Walk) -> Element:
    """Raw bytes are copied only when encoded like the output; otherwise decode them.

    A sequence item may have been encoded differently from its dataset (e.g.
    implicit VR items inside an explicit VR file); such raw elements are
    converted so the writer re-encodes them.
    """
    implicit, little = walk.encoding
    if isinstance(elem, RawDataElement) and (
        elem.is_little_endian != little or (elem.VR is None and not implicit)
    ):
        return convert_raw_data_element(elem, encoding=walk.charset, ds=source)
    return elem


def _block(tag: int) -> int:
    """Identify a private block: group and block number (PS3.5 7.8.1)."""
    element = tag & 0xFFFF
    number = element if element <= 0x00FF else element >> 8
    return (tag & 0xFFFF0000) | number


def _creator_value(source: Dataset, elem: Element, walk: Walk) -> str:
    value = _decode(elem, walk, source)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value[0] if isinstance(value, MultiValue) and value else value or "").strip()


def _keep_creators(
    source: Dataset, out: Dataset, creators: dict[int, str], kept: set[int], path: TagPath, walk: Walk
) -> None:
    """Keep a private creator element only when an element of its block was kept (PS3.5 7.8.1)."""
    for block in creators:
        tag = (block & 0xFFFF0000) | (block & 0xFF)
        if block in kept:
            out[tag] = source.get_item(tag)
        else:
            walk.changes.append(Change((*path, tag), "X", "default:private-creator"))


def _process_element(
    source: Dataset, elem: Element, creator: str | None, path: TagPath, walk: Walk
) -> Element | None:
    tag = int(elem.tag)
    vr = element_vr(elem)
    if vr == "UN" and isinstance(elem, RawDataElement) and not (tag >> 16) % 2:
        vr = _real_vr(source, tag)
    rule = walk.policy.rule(tag, vr, creator)
    if rule.action is Action.K and vr not in _NEEDS_CONTEXT:
        return elem  # kept as it is, bytes copied by the encoder
    if rule.action is Action.X:
        walk.changes.append(Change((*path, tag), "X", rule.source))
        return None
    ctx = ElementContext(source, elem, vr, (*path, tag), rule, walk)
    action = resolve(ctx)
    if action is Action.X:
        ctx.record("X")
        return None
    if vr == "SQ":
        return _sequence(ctx, action)
    return apply_action(ctx, action)


# K still needs work for these: UIDs may be replaced, sequences are cleaned recursively.
_NEEDS_CONTEXT = frozenset({"UI", "SQ"})


def _real_vr(source: Dataset, tag: int) -> str:
    # pydicom resolves UN-encoded public elements to their dictionary VR on conversion.
    return str(source[tag].VR)


def _sequence(ctx: ElementContext, action: Action) -> DataElement:
    """Z empties a sequence; every other kept action cleans its items recursively (E.1.1 K on SQ).

    D on a code sequence that identifies a person (Person Identification
    Code Sequence, PS3.3 Table 10-1) gives one dummy code item: its items hold
    only the Code Sequence Macro, whose attributes the table does not list,
    so cleaning them would keep a staff or patient code as it is.
    """
    if action is Action.Z:
        ctx.record("Z")
        return DataElement(ctx.tag, "SQ", Sequence())
    if action is Action.D and ctx.tag in _IDENTITY_CODE_SEQUENCES:
        ctx.record("D")
        return DataElement(ctx.tag, "SQ", Sequence([_dummy_code()]))
    items = _items(ctx)
    processed = [_process(item, (*ctx.path, index), ctx.walk) for index, item in enumerate(items)]
    ctx.walk.current = ctx.path
    return DataElement(ctx.tag, "SQ", Sequence(processed))


#: Code sequences whose codes identify a person: D replaces their items with one dummy code.
_IDENTITY_CODE_SEQUENCES = frozenset({0x00401101})  # Person Identification Code Sequence


def _dummy_code() -> Dataset:
    """A Code Sequence Macro item that names nobody (PS3.3 8.8; "99" marks a private scheme, PS3.16 8)."""
    item = Dataset()
    item.CodeValue = DUMMY_CODE_VALUE
    item.CodingSchemeDesignator = DUMMY_CODING_SCHEME
    item.CodeMeaning = DUMMY_CODE_VALUE
    return item


def _items(ctx: ElementContext) -> list[Dataset]:
    """A sequence's items, opened by the fast reader when it can (the input is not modified)."""
    elem = ctx.elem
    if isinstance(elem, RawDataElement) and elem.length != _UNDEFINED and isinstance(elem.value, bytes):
        implicit, little = elem.is_implicit_VR, elem.is_little_endian
        items = read_items(elem.value, implicit, little, ctx.source.original_character_set)
        if items is not None:
            return items
    return list(ctx.source[ctx.tag].value or [])


_UNDEFINED = 0xFFFFFFFF


def _decode(elem: Element, walk: Walk, source: Dataset) -> Any:
    if isinstance(elem, RawDataElement):
        return convert_raw_data_element(elem, encoding=walk.charset, ds=source).value
    return elem.value

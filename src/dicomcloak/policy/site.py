"""Site policy files (TOML): options, per-tag/private/VR overrides and safe-list changes -> Policy.

The format is documented with an example in docs/policy.md. Every problem is
a :class:`~dicomcloak.errors.ConfigError` whose reference names the kind of
mistake (``policy-bad-tag``, ``policy-bad-action``, ``policy-unknown-key``...)
and whose message names the offending key; a policy file holds no PHI.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.valuerep import VR

from dicomcloak.errors import ConfigError
from dicomcloak.policy.cdr import Disposition, SanitizeSettings
from dicomcloak.policy.model import Policy, PrivateKey, SiteOverrides, default_safe_private
from dicomcloak.raw.limits import LIMIT_NAMES, ReadLimits
from dicomcloak.standard.safe_private import normalize_creator
from dicomcloak.standard.table import Action, Option

__all__ = ["SitePolicy", "build_policy", "load_policy_file", "parse_option", "parse_policy", "parse_sanitize"]

_SECTIONS = frozenset({"policy", "tags", "private", "vr", "safe_private", "sanitize", "pixels"})
# [pixels] is validated by dicomcloak.pixels.settings (a layer above policy), not here.
_OWN_SECTIONS = _SECTIONS - {"pixels"}
_SANITIZE_KEYS = frozenset({"encapsulated_documents", "waveforms", "icons", "overlays", "limits"})
_POLICY_KEYS = frozenset({"options", "unknown_public", "keep_reference_sequences", "strict_table"})
_SAFE_KEYS = frozenset({"add", "remove"})
_UNKNOWN_PUBLIC = (Action.X, Action.K)
_VRS = frozenset(name for name in VR.__members__ if len(name) == 2)
_TAG_RE = re.compile(r"^\(?\s*([0-9A-Fa-f]{2}(?:[0-9A-Fa-f]{2}|xx))\s*,?\s*([0-9A-Fa-f]{4})\s*\)?$")
_PRIVATE_ELEMENT_RE = re.compile(r"^(?:[0-9A-Fa-f]{2}|xx)?([0-9A-Fa-f]{2})$")


@dataclass(frozen=True)
class SitePolicy:
    """What one policy file says, validated; :func:`build_policy` turns it into a Policy."""

    options: frozenset[Option] = frozenset()
    unknown_public: Action | None = None
    keep_reference_sequences: bool | None = None
    strict_table: bool = False
    overrides: SiteOverrides = field(default_factory=SiteOverrides)
    safe_private_add: frozenset[PrivateKey] = frozenset()
    safe_private_remove: frozenset[PrivateKey] = frozenset()
    sanitize: SanitizeSettings = field(default_factory=SanitizeSettings)


def _error(reference: str, message: str, hint: str) -> ConfigError:
    return ConfigError(message, reference=reference, hint=hint)


def parse_option(value: object, where: str = "option") -> Option:
    """Return the :class:`Option` named ``value`` (its kebab-case name), or raise ConfigError."""
    try:
        return Option(str(value).strip().lower())
    except ValueError:
        names = ", ".join(opt.value for opt in Option)
        raise _error(
            "policy-bad-option", f"{where}: unknown option {str(value)!r}", f"use one of: {names}"
        ) from None


def _action(value: object, where: str) -> Action:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return Action(value.strip().upper())
    except ValueError:
        codes = ", ".join(action.value for action in Action)
        raise _error(
            "policy-bad-action", f"{where}: {value!r} is not an action", f"use one of: {codes}"
        ) from None


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _error("policy-bad-value", f"{where} must be a table", f"write it as a [{where}] section")
    return value


def _check_keys(found: Iterable[str], allowed: frozenset[str], where: str) -> None:
    for key in found:
        if key not in allowed:
            raise _error(
                "policy-unknown-key",
                f"{where}: unknown key {key!r}",
                f"allowed keys: {', '.join(sorted(allowed))}",
            )


def _group_values(group_text: str, key: str) -> list[int]:
    if group_text[2:].lower() != "xx":
        return [int(group_text, 16)]
    base = int(group_text[:2], 16) << 8
    if base not in (0x5000, 0x6000):
        raise _error(
            "policy-bad-tag",
            f"[tags]: {key!r} uses xx outside groups 50xx/60xx",
            "only the repeating groups 50xx and 60xx may be written with xx",
        )
    return [base + n for n in range(0, 0x20, 2)]  # PS3.5 7.6: even xx, 00 to 1E


def _tags_for(key: str) -> list[int]:
    match = _TAG_RE.match(key.strip())
    if match is not None:
        element = int(match.group(2), 16)
        return [group << 16 | element for group in _group_values(match.group(1), key)]
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key.strip()):
        tag = tag_for_keyword(key.strip())
        if tag is None:
            raise _error(
                "policy-unknown-keyword",
                f"[tags]: {key!r} is not a DICOM keyword",
                'use the PS3.6 keyword (e.g. StationName) or the tag as "(gggg,eeee)"',
            )
        return [tag]
    raise _error(
        "policy-bad-tag",
        f"[tags]: {key!r} is neither a tag nor a keyword",
        'write tags as "(gggg,eeee)" in hexadecimal, or use a keyword',
    )


def _parse_tags(section: Mapping[str, Any]) -> dict[int, Action]:
    tags: dict[int, Action] = {}
    for key, value in section.items():
        action = _action(value, f"[tags] {key!r}")
        for tag in _tags_for(key):
            if tags.get(tag, action) is not action:
                raise _error(
                    "policy-duplicate-tag",
                    f"[tags]: {key!r} names tag ({tag >> 16:04X},{tag & 0xFFFF:04X}) "
                    "already given another action",
                    "keep one entry per tag",
                )
            tags[tag] = action
    return tags


def parse_private_key(text: str, where: str = "[private]") -> PrivateKey:
    """Parse ``"gggg,CREATOR,ee"`` (odd group, creator, element low byte in hex)."""
    parts = text.split(",")
    hint = 'write "gggg,PRIVATE CREATOR,ee": odd group and element low byte in hexadecimal'
    if len(parts) < 3:
        raise _error("policy-bad-private-key", f"{where}: {text!r} is not gggg,CREATOR,ee", hint)
    group_text, element_text = parts[0].strip(), parts[-1].strip()
    creator = normalize_creator(",".join(parts[1:-1]))
    element = _PRIVATE_ELEMENT_RE.match(element_text)
    if not re.fullmatch(r"[0-9A-Fa-f]{4}", group_text) or element is None or not creator:
        raise _error("policy-bad-private-key", f"{where}: {text!r} is not gggg,CREATOR,ee", hint)
    group = int(group_text, 16)
    if group % 2 == 0 or group < 0x0009:
        raise _error(
            "policy-bad-private-key",
            f"{where}: {text!r} is not in a private group",
            "private groups are odd, from 0009 (PS3.5 7.8)",
        )
    return (group, creator, int(element.group(1), 16))


def _parse_private(section: Mapping[str, Any]) -> dict[PrivateKey, Action]:
    return {parse_private_key(key): _action(value, f"[private] {key!r}") for key, value in section.items()}


def _parse_vrs(section: Mapping[str, Any]) -> dict[str, Action]:
    vrs: dict[str, Action] = {}
    for key, value in section.items():
        if key.strip().upper() not in _VRS:
            raise _error(
                "policy-bad-vr",
                f"[vr]: {key!r} is not a value representation",
                "use a two-letter VR from PS3.5 6.2, e.g. UN, LO, PN",
            )
        vrs[key.strip().upper()] = _action(value, f"[vr] {key!r}")
    return vrs


def _string_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _error(
            "policy-bad-value", f"{where} must be a list of strings", f'write {where} = ["...", ...]'
        )
    return value


def _parse_safe(section: Mapping[str, Any]) -> tuple[frozenset[PrivateKey], frozenset[PrivateKey]]:
    _check_keys(section, _SAFE_KEYS, "[safe_private]")
    add = _string_list(section.get("add", []), "[safe_private] add")
    remove = _string_list(section.get("remove", []), "[safe_private] remove")
    return (
        frozenset(parse_private_key(key, "[safe_private] add") for key in add),
        frozenset(parse_private_key(key, "[safe_private] remove") for key in remove),
    )


def _parse_unknown_public(value: object) -> Action:
    action = _action(value, "[policy] unknown_public")
    if action not in _UNKNOWN_PUBLIC:
        raise _error(
            "policy-bad-action",
            f"[policy] unknown_public: {value!r} is not allowed",
            'use "X" (remove, the default) or "K" (keep)',
        )
    return action


def _parse_policy_section(section: Mapping[str, Any]) -> dict[str, Any]:
    _check_keys(section, _POLICY_KEYS, "[policy]")
    parsed: dict[str, Any] = {}
    options = _string_list(section.get("options", []), "[policy] options")
    parsed["options"] = frozenset(parse_option(name, "[policy] options") for name in options)
    if "unknown_public" in section:
        parsed["unknown_public"] = _parse_unknown_public(section["unknown_public"])
    for key in ("keep_reference_sequences", "strict_table"):
        if key in section:
            parsed[key] = _boolean(section[key], key)
    return parsed


def _boolean(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        hint = f"write {key} = true or {key} = false"
        raise _error("policy-bad-value", f"[policy] {key} must be true or false", hint)
    return value


def _disposition(value: object, where: str) -> Disposition:
    try:
        return Disposition(str(value).strip().lower())
    except ValueError:
        names = ", ".join(choice.value for choice in Disposition)
        hint = f"use one of: {names}"
        raise _error("policy-bad-value", f"{where}: {value!r} is not a choice", hint) from None


def _parse_limits(section: Mapping[str, Any]) -> ReadLimits:
    _check_keys(section, frozenset(LIMIT_NAMES), "[sanitize.limits]")
    for key, value in section.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _error(
                "policy-bad-value",
                f"[sanitize.limits] {key} must be a positive integer",
                f"write {key} = {getattr(ReadLimits(), key)} (the default)",
            )
    return ReadLimits(**section)


def parse_sanitize(section: Mapping[str, Any]) -> SanitizeSettings:
    """Validate the ``[sanitize]`` section: content choices and ``[sanitize.limits]``."""
    _check_keys(section, _SANITIZE_KEYS, "[sanitize]")
    choices = {
        key: _disposition(value, f"[sanitize] {key}") for key, value in section.items() if key != "limits"
    }
    limits = _parse_limits(_table(section.get("limits", {}), "sanitize.limits"))
    return SanitizeSettings(limits=limits, **choices)


def parse_policy(document: Mapping[str, Any]) -> SitePolicy:
    """Validate a parsed policy document (the TOML file's content)."""
    _check_keys(document, _SECTIONS, "policy file")
    sections = {name: _table(document.get(name, {}), name) for name in _OWN_SECTIONS}
    add, remove = _parse_safe(sections["safe_private"])
    overrides = SiteOverrides(
        tags=MappingProxyType(_parse_tags(sections["tags"])),
        private=MappingProxyType(_parse_private(sections["private"])),
        vrs=MappingProxyType(_parse_vrs(sections["vr"])),
    )
    return SitePolicy(
        overrides=overrides,
        safe_private_add=add,
        safe_private_remove=remove,
        sanitize=parse_sanitize(sections["sanitize"]),
        **_parse_policy_section(sections["policy"]),
    )


def load_policy_file(path: Path) -> SitePolicy:
    """Read and validate a TOML site policy file."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise _error(
            "policy-file-unreadable",
            f"cannot read policy file {path}: {exc.strerror}",
            "check the path and its permissions",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise _error(
            "policy-file-invalid",
            f"policy file {path} is not valid TOML: {exc}",
            "see docs/policy.md for the format",
        ) from None
    return parse_policy(document)


def build_policy(
    options: Iterable[Option | str] = (), policy_file: Path | None = None, *, strict_table: bool = False
) -> Policy:
    """Build the frozen Policy from command-line options and an optional site policy file.

    The file's options are merged with ``options``; its overrides win over the
    table (docs/policy.md). ``strict_table`` (``--strict-table``) or the file's
    ``[policy] strict_table = true`` follows Table E.1-1 exactly, without the
    beyond-table list. Raises ConfigError (e.g. ``options-conflict`` when both
    Retain Longitudinal Temporal Information options are in force).
    """
    chosen = {parse_option(opt) for opt in options}
    site = load_policy_file(policy_file) if policy_file is not None else SitePolicy()
    safe = (default_safe_private() | site.safe_private_add) - site.safe_private_remove
    return Policy(
        options=frozenset(chosen | site.options),
        overrides=site.overrides,
        safe_private=frozenset(safe),
        unknown_public=site.unknown_public or Action.X,
        keep_reference_sequences=(
            True if site.keep_reference_sequences is None else site.keep_reference_sequences
        ),
        sanitize=site.sanitize,
        strict_table=strict_table or site.strict_table,
    )

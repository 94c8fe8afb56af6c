"""Pixel settings: the mode per modality and SOP class, padding, fill, frames sampled, verify, templates.

Parsed from the ``[pixels]`` section of the site policy TOML (docs/pixels.md,
"Settings"); every problem is a :class:`~dicomcloak.errors.ConfigError` whose
message names the key, as in :mod:`dicomcloak.policy.site`. The built-in
per-modality defaults live in :mod:`dicomcloak.pixels.risk`; the values here
override them.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dicomcloak.errors import ConfigError
from dicomcloak.pixels.model import PixelMode
from dicomcloak.pixels.templates import DeviceTemplate, parse_templates

__all__ = [
    "PixelSettings", "load_pixel_settings", "parse_pixels", "resolve_pixel_settings", "settings_fingerprint",
]

_KEYS = frozenset(
    {"mode", "backend", "padding", "padding_vertical", "fill", "frames", "verify", "verify_score",
     "verify_whole_frame", "threads",
     "modality", "sop_class", "templates"}
)


@dataclass(frozen=True)
class PixelSettings:
    """What the pixel stage does; frozen, passed down (STYLE.md habit 5).

    ``mode`` is ``deid --pixels``: ``auto`` resolves per instance
    (:func:`dicomcloak.pixels.risk.assess`), any other value applies to every
    instance with Pixel Data. ``modality`` and ``sop_class`` map a Modality
    (0008,0060) or SOP Class UID to the mode ``auto`` uses for it, at risk or
    not. ``padding`` widens each box sideways by that fraction of its height,
    ``padding_vertical`` up and down; ``fill`` is the constant written (``None``:
    the image's black). ``frames`` is how many frames of a multi-frame image are
    read by OCR on each pass; ``verify`` runs the second pass; text the verifying
    pass reads with at least ``verify_score`` confidence counts as remaining; on
    a frame the first pass read, it reads only around what was blanked unless
    ``verify_whole_frame``. ``threads`` is the OCR library's threads per process
    (0: every core; the batch gives each of several workers its share).
    """

    mode: PixelMode = PixelMode.AUTO
    backend: str = "rapidocr"
    padding: float = 0.5
    padding_vertical: float = 0.15
    fill: int | None = None
    frames: int = 8
    verify: bool = True
    verify_score: float = 0.6
    verify_whole_frame: bool = False
    threads: int = 0
    # Plain dicts behind a read-only type: the settings are pickled to every worker process.
    modality: Mapping[str, PixelMode] = field(default_factory=dict)
    sop_class: Mapping[str, PixelMode] = field(default_factory=dict)
    templates: tuple[DeviceTemplate, ...] = ()


def _error(message: str, hint: str, reference: str = "policy-bad-value") -> ConfigError:
    return ConfigError(message, reference=reference, hint=hint)


def _mode(value: object, where: str) -> PixelMode:
    try:
        return PixelMode(str(value).strip().lower())
    except ValueError:
        names = ", ".join(mode.value for mode in PixelMode)
        raise _error(f"[pixels] {where}: {value!r} is not a pixel mode", f"use one of: {names}") from None


def _number(value: object, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _error(f"[pixels] {where} must be a number from {low} to {high}", f"write {where} = {low}")
    return float(value)


def _integer(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _error(f"[pixels] {where} must be an integer from {low} to {high}", f"write {where} = {low}")
    return value


def _boolean(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _error(f"[pixels] {where} must be true or false", f"write {where} = true")
    return value


def _modes(value: object, where: str, upper: bool) -> Mapping[str, PixelMode]:
    if not isinstance(value, dict):
        raise _error(f"[pixels.{where}] must be a table", f'write [pixels.{where}] with KEY = "mode" lines')
    return {(key.strip().upper() if upper else key.strip()): _mode(mode, f"{where} {key!r}")
            for key, mode in value.items()}


def _backend(value: object) -> str:
    from dicomcloak.pixels.ocr import BACKENDS

    if value not in BACKENDS:
        names = ", ".join(sorted(BACKENDS))
        raise _error(f"[pixels] backend: {value!r} is not an OCR back-end", f"use one of: {names}")
    return str(value)


def _fill(value: object) -> int | None:
    if value == "black":
        return None
    return _integer(value, "fill", 0, 65535)


_PARSERS: dict[str, Any] = {
    "mode": lambda v: _mode(v, "mode"),
    "backend": _backend,
    "padding": lambda v: _number(v, "padding", 0.0, 4.0),
    "padding_vertical": lambda v: _number(v, "padding_vertical", 0.0, 2.0),
    "fill": _fill,
    "frames": lambda v: _integer(v, "frames", 2, 256),
    "verify": lambda v: _boolean(v, "verify"),
    "verify_score": lambda v: _number(v, "verify_score", 0.0, 1.0),
    "verify_whole_frame": lambda v: _boolean(v, "verify_whole_frame"),
    "threads": lambda v: _integer(v, "threads", 0, 256),
    "modality": lambda v: _modes(v, "modality", upper=True),
    "sop_class": lambda v: _modes(v, "sop_class", upper=False),
    "templates": parse_templates,
}


def parse_pixels(section: Mapping[str, Any]) -> PixelSettings:
    """Validate the ``[pixels]`` section of a site policy (already parsed TOML)."""
    for key in section:
        if key not in _KEYS:
            raise _error(
                f"[pixels]: unknown key {key!r}", f"allowed keys: {', '.join(sorted(_KEYS))}",
                "policy-unknown-key",
            )
    return PixelSettings(**{key: _PARSERS[key](value) for key, value in section.items()})


def load_pixel_settings(path: Path | None) -> PixelSettings:
    """The ``[pixels]`` section of the site policy file at ``path`` (defaults when None or absent)."""
    if path is None:
        return PixelSettings()
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        raise _error(
            f"cannot read the [pixels] section of policy file {path}",
            "check the path, its permissions and its TOML syntax", "policy-file-invalid",
        ) from None
    section = document.get("pixels", {})
    if not isinstance(section, dict):
        raise _error("[pixels] must be a table", "write it as a [pixels] section")
    return parse_pixels(section)


def resolve_pixel_settings(path: Path | None, mode: PixelMode | None = None) -> PixelSettings:
    """The pixel stage's settings for a run: the policy file's ``[pixels]``, ``mode`` winning over its mode.

    When the stage runs, its OCR back-end is checked now (docs/pixels.md,
    "Dependencies"): a run stops before its first file, not at its first image at risk.
    """
    settings = load_pixel_settings(path)
    settings = settings if mode is None else replace(settings, mode=mode)
    if settings.mode is not PixelMode.OFF:
        from dicomcloak.pixels.ocr import ensure_available  # NumPy: only when the stage runs

        ensure_available(settings.backend)
    return settings


def settings_fingerprint(settings: PixelSettings) -> str:
    """SHA-256 (hex) of everything in ``settings``: two runs into one output must agree on their pixels.

    The run directory records it beside the policy's fingerprint, so that a
    later run with another ``--pixels`` or ``[pixels]`` section is refused
    before it mixes two kinds of output in one tree.
    """
    document = asdict(settings)  # nested dataclasses (templates) as dicts, enums by value
    del document["threads"]  # how fast, not what: another machine may run the same output
    canonical = json.dumps(document, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

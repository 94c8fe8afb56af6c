"""Device templates: regions known to carry burned-in text, keyed by manufacturer, model and image size.

CTP's DicomPixelAnonymizer script is the model: a device whose screen layout is
known gets its text band blanked before OCR runs, so a name the OCR misreads is
still removed. The packaged list (``pixels/data/templates.toml``) names the
measurement each entry comes from; sites add theirs as ``[[pixels.templates]]``
in the policy file (docs/pixels.md, "Device templates"). A template region is
always redacted, whatever the mode, and counts as PHI (rule ``template:NAME``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from pydicom.dataset import Dataset

from dicomcloak.errors import ConfigError
from dicomcloak.pixels.model import Rect, TextBox

__all__ = ["DeviceTemplate", "matching", "packaged_templates", "parse_templates", "template_boxes"]

_KEYS = frozenset({"name", "manufacturer", "model", "rows", "columns", "regions", "source"})


@dataclass(frozen=True)
class DeviceTemplate:
    """Regions to blank on images of one device and size; ``manufacturer``/``model`` are regexes."""

    name: str
    manufacturer: re.Pattern[str]
    model: re.Pattern[str]
    rows: int
    columns: int
    regions: tuple[Rect, ...]
    source: str = ""

    def matches(self, ds: Dataset) -> bool:
        """Whether ``ds`` comes from this device (regexes searched, case-insensitive) at this size."""
        return (
            int(ds.get("Rows", 0) or 0) == self.rows
            and int(ds.get("Columns", 0) or 0) == self.columns
            and self.manufacturer.search(str(ds.get("Manufacturer", "") or "")) is not None
            and self.model.search(str(ds.get("ManufacturerModelName", "") or "")) is not None
        )


def _error(where: str, message: str, hint: str) -> ConfigError:
    return ConfigError(f"[[pixels.templates]] {where}: {message}", reference="pixels-bad-template", hint=hint)


def _pattern(value: object, where: str) -> re.Pattern[str]:
    try:
        return re.compile(str(value), re.IGNORECASE)
    except re.error:
        raise _error(where, f"{value!r} is not a regular expression", "write a Python regex") from None


def _region(value: object, where: str, rows: int, columns: int) -> Rect:
    hint = "write each region as [top, left, bottom, right] in pixels, inside the image"
    if not isinstance(value, list) or len(value) != 4 or not all(isinstance(v, int) for v in value):
        raise _error(where, "a region is not four integers", hint)
    rect = Rect(*value)
    if not (0 <= rect.top < rect.bottom <= rows and 0 <= rect.left < rect.right <= columns):
        raise _error(where, f"region {value} lies outside a {rows}x{columns} image", hint)
    return rect


def _size(entry: Mapping[str, Any], key: str, where: str) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _error(where, f"{key} must be a positive integer", f"write {key} = 512")
    return value


def _template(entry: object, index: int) -> DeviceTemplate:
    where = f"#{index + 1}"
    if not isinstance(entry, dict):
        raise _error(where, "is not a table", "write [[pixels.templates]] entries")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise _error(where, f"unknown key {unknown[0]!r}", f"allowed keys: {', '.join(sorted(_KEYS))}")
    rows, columns = _size(entry, "rows", where), _size(entry, "columns", where)
    regions = entry.get("regions")
    if not isinstance(regions, list) or not regions:
        raise _error(where, "regions is missing", "write regions = [[top, left, bottom, right], ...]")
    return DeviceTemplate(
        name=str(entry.get("name", where)),
        manufacturer=_pattern(entry.get("manufacturer", ""), where),
        model=_pattern(entry.get("model", ""), where),
        rows=rows,
        columns=columns,
        regions=tuple(_region(region, where, rows, columns) for region in regions),
        source=str(entry.get("source", "")),
    )


def parse_templates(value: object) -> tuple[DeviceTemplate, ...]:
    """Validate a list of template tables (``[[pixels.templates]]`` or the packaged file's)."""
    if not isinstance(value, list):
        raise _error("", "must be an array of tables", "write [[pixels.templates]] entries")
    return tuple(_template(entry, index) for index, entry in enumerate(value))


@cache
def packaged_templates() -> tuple[DeviceTemplate, ...]:
    """The templates shipped in ``dicomcloak/pixels/data/templates.toml``."""
    text = files("dicomcloak.pixels").joinpath("data/templates.toml").read_text(encoding="utf-8")
    return parse_templates(tomllib.loads(text).get("templates", []))


def matching(ds: Dataset, templates: Iterable[DeviceTemplate]) -> list[DeviceTemplate]:
    """The templates (site first, then packaged) that apply to ``ds``."""
    return [template for template in templates if template.matches(ds)]


def template_boxes(ds: Dataset, site: Sequence[DeviceTemplate]) -> list[TextBox]:
    """Boxes for every region of every matching template (site templates and the packaged ones)."""
    return [
        TextBox(rect=region, text=None, score=1.0, source=f"template:{template.name}")
        for template in matching(ds, (*site, *packaged_templates()))
        for region in template.regions
    ]

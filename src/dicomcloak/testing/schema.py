"""A small JSON Schema checker for the project's own schemas (report.json), without a new dependency.

``jsonschema`` is not among dicomcloak's dependencies, and the report's
schema (``dicomcloak/batch/data/report.schema.json``, docs/reports.md) uses a
small part of draft 2020-12 only: ``type``, ``required``, ``properties``,
``additionalProperties``, ``items``, ``enum``, ``const``, ``pattern``,
``minimum``, ``minLength`` and local ``$ref``. :func:`problems` checks exactly
those and refuses a schema that uses any other keyword, so a schema change
that this checker would silently ignore fails its test instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["KEYWORDS", "problems"]

#: The keywords checked; the annotations (``$schema``, ``$id``, ``title``, ``description``,
#: ``$defs``) are read or skipped.
KEYWORDS = frozenset({
    "type", "required", "properties", "additionalProperties", "items", "enum", "const", "pattern", "minimum",
    "minLength", "$ref",
})
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "$defs"})
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
    "boolean": (bool,), "null": (type(None),),
}


def problems(document: Any, schema: Mapping[str, Any]) -> list[str]:
    """Every place where ``document`` breaks ``schema``, as ``"<json path>: what"``; empty when valid."""
    return list(_check(document, schema, schema, "$"))


def _check(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], where: str) -> Iterator[str]:
    unknown = set(schema) - KEYWORDS - _ANNOTATIONS
    if unknown:
        raise ValueError(f"{where}: schema keywords this checker does not know: {sorted(unknown)}")
    if "$ref" in schema:
        yield from _check(value, _resolve(root, schema["$ref"]), root, where)
    if "type" in schema and not _is_type(value, schema["type"]):
        yield f"{where}: not of type {schema['type']}"
        return
    if "const" in schema and value != schema["const"]:
        yield f"{where}: not {schema['const']!r}"
    if "enum" in schema and value not in schema["enum"]:
        yield f"{where}: not one of {schema['enum']}"
    yield from _scalar(value, schema, where)
    if isinstance(value, dict):
        yield from _object(value, schema, root, where)
    if isinstance(value, list) and "items" in schema:
        for number, item in enumerate(value):
            yield from _check(item, schema["items"], root, f"{where}[{number}]")


def _scalar(value: Any, schema: Mapping[str, Any], where: str) -> Iterator[str]:
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield f"{where}: does not match {schema['pattern']}"
        if len(value) < schema.get("minLength", 0):
            yield f"{where}: shorter than {schema['minLength']}"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and "minimum" in schema and value < schema["minimum"]:
        yield f"{where}: below {schema['minimum']}"


def _object(
    value: dict[str, Any], schema: Mapping[str, Any], root: Mapping[str, Any], where: str
) -> Iterator[str]:
    for key in schema.get("required", ()):
        if key not in value:
            yield f"{where}: {key} missing"
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            yield from _check(item, properties[key], root, f"{where}.{key}")
        elif extra is False:
            yield f"{where}: {key} not allowed"
        elif isinstance(extra, Mapping):
            yield from _check(item, extra, root, f"{where}.{key}")


def _is_type(value: Any, expected: str | list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else expected
    if isinstance(value, bool):
        return "boolean" in names
    return any(isinstance(value, _TYPES[name]) for name in names)


def _resolve(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are checked: {ref}")
    found: Any = root
    for part in ref[2:].split("/"):
        found = found[part]
    return found  # type: ignore[no-any-return]

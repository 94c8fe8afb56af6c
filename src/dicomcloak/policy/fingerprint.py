"""A policy's fingerprint: SHA-256 of everything that decides what an output contains.

``deid`` records it with each run and refuses to add to an output tree made
with another policy (``output-made-differently``, README "Re-runs are safe").
It is taken from what *defines* the policy (the packaged standard data, the
options, the site overrides, the safe-private list, the untabled-attribute
rules and the sanitize content choices), not from the rules it derives for
every attribute: deriving those walks the whole table and cost a run's
start-up ~40 ms, more than the rest of the run's bookkeeping together.
Reading limits are left out: they decide which inputs are quarantined, not
what an output holds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import cache
from importlib import resources

from dicomcloak.policy.model import Policy

__all__ = ["fingerprint"]

#: The packaged data the rules are made of (``dicomcloak/standard/data``).
_DATA_FILES = (
    "EDITION",
    "ps3.15-table-e1-1.csv",
    "beyond-table.csv",
    "cid-7050-deidentification-method.csv",
    "iod_types.json",
    "safe_private.csv",
)


def fingerprint(policy: Policy) -> str:
    """SHA-256 (hex) of the policy's definition; equal policies always give equal fingerprints.

    Two policies that differ in any option, override, safe-private entry,
    untabled rule, strict-table setting or sanitize content choice get
    different fingerprints; so do two versions of the packaged standard data.
    """
    document = {"data": _data_digest(), "policy": _definition(policy)}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode("utf-8")).hexdigest()


def _definition(policy: Policy) -> dict[str, object]:
    overrides = policy.overrides
    content = policy.sanitize
    names = [f.name for f in dataclasses.fields(content) if f.name != "limits"]
    choices = {name: str(getattr(content, name)) for name in names}
    return {
        "options": sorted(option.value for option in policy.options),
        "tags": sorted((tag, str(action)) for tag, action in overrides.tags.items()),
        "private": sorted((list(key), str(action)) for key, action in overrides.private.items()),
        "vrs": sorted((vr, str(action)) for vr, action in overrides.vrs.items()),
        "safe_private": sorted(list(key) for key in policy.safe_private),
        "unknown_public": str(policy.unknown_public),
        "keep_reference_sequences": policy.keep_reference_sequences,
        "strict_table": policy.strict_table,
        "sanitize": choices,
    }


@cache
def _data_digest() -> str:
    """SHA-256 over the packaged standard data files, in a fixed order (read once per process)."""
    digest = hashlib.sha256()
    data = resources.files("dicomcloak.standard").joinpath("data")
    for name in _DATA_FILES:
        content = data.joinpath(name).read_bytes()
        digest.update(name.encode("ascii") + b"\x00" + len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()

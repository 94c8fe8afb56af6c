"""The public surface of ``dicomcloak`` is locked: changing it is a deliberate, reviewed act (httpx style)."""

from __future__ import annotations

import types

import dicomcloak

PUBLIC = [
    "Action",
    "Change",
    "Deidentifier",
    "DicomcloakError",
    "Option",
    "Outcome",
    "Policy",
    "ProjectKey",
    "Reidentifier",
    "Sealer",
    "__version__",
]


def test_all_is_locked() -> None:
    assert dicomcloak.__all__ == PUBLIC


def test_all_imports_are_exported() -> None:
    included_private_members = ["__version__"]
    exported = sorted(
        name
        for name, value in vars(dicomcloak).items()
        if (not name.startswith("_") or name in included_private_members)
        and not isinstance(value, types.ModuleType)
    )
    assert sorted(dicomcloak.__all__) == exported


def test_exported_members_come_from_dicomcloak() -> None:
    for name in dicomcloak.__all__:
        member = getattr(dicomcloak, name)
        if name != "__version__":
            assert member.__module__.startswith("dicomcloak."), name

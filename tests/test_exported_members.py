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
    """Every public name resolves (they are imported lazily), and nothing else public is in the namespace."""
    for name in dicomcloak.__all__:
        getattr(dicomcloak, name)
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


def test_importing_the_command_line_loads_neither_pydicom_nor_numpy() -> None:
    """The CLI package sets up the process (OpenBLAS threads) before NumPy loads: the names are lazy."""
    import subprocess
    import sys

    code = "import sys, dicomcloak.cli; print(sorted({'pydicom', 'numpy'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

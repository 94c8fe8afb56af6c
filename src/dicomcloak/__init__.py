"""dicomcloak: DICOM de-identification per PS3.15 Annex E, keyed and re-identifiable by the owner only.

The public names are imported on first use (PEP 562), so ``import dicomcloak.cli`` can set up the
process (thread counts of numerical libraries) before pydicom and NumPy are loaded.
"""

import typing as _typing
from importlib import import_module as _import_module

if _typing.TYPE_CHECKING:
    from dicomcloak.api import Deidentifier, Reidentifier, Sealer
    from dicomcloak.engine.outcome import Change, Outcome
    from dicomcloak.errors import DicomcloakError
    from dicomcloak.keys import ProjectKey
    from dicomcloak.policy.model import Policy
    from dicomcloak.standard.table import Action, Option

__all__ = [
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

__version__ = "0.1.0"

_HOMES = {
    "Action": "dicomcloak.standard.table",
    "Change": "dicomcloak.engine.outcome",
    "Deidentifier": "dicomcloak.api",
    "DicomcloakError": "dicomcloak.errors",
    "Option": "dicomcloak.standard.table",
    "Outcome": "dicomcloak.engine.outcome",
    "Policy": "dicomcloak.policy.model",
    "ProjectKey": "dicomcloak.keys",
    "Reidentifier": "dicomcloak.api",
    "Sealer": "dicomcloak.api",
}


def __getattr__(name: str) -> _typing.Any:
    """Import a public name from its module the first time it is asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'dicomcloak' has no attribute {name!r}")
    value = getattr(_import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

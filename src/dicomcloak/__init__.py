"""dicomcloak: DICOM de-identification per PS3.15 Annex E, keyed and re-identifiable by the owner only."""

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

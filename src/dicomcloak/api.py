"""The Deidentifier façade: the one object batch, network and Python users call."""

from __future__ import annotations

from pydicom.dataset import Dataset

from dicomcloak.engine.deidentify import deidentify
from dicomcloak.engine.outcome import Outcome
from dicomcloak.keys import ProjectKey, Pseudonymizer
from dicomcloak.policy.model import Policy

__all__ = ["Deidentifier"]


class Deidentifier:
    """De-identify datasets under one policy, one key and one pseudonym domain.

    Parameters
    ----------
    policy:
        What to do with each attribute (:class:`dicomcloak.policy.Policy`).
    key:
        The project key; pseudonyms and UIDs are keyed by it.
    domain:
        The pseudonym domain (one per recipient).

    Examples
    --------
    >>> deid = Deidentifier(Policy(), ProjectKey.generate(ephemeral=True))
    >>> outcome = deid.deidentify(dataset)        # doctest: +SKIP
    >>> outcome.dataset.PatientIdentityRemoved    # doctest: +SKIP
    'YES'
    """

    def __init__(self, policy: Policy, key: ProjectKey, domain: str = "default") -> None:
        self.policy = policy
        self.pseudonymizer = Pseudonymizer(key, domain)

    def deidentify(self, dataset: Dataset) -> Outcome:
        """Return the de-identified copy of ``dataset``; ``dataset`` is not changed."""
        return deidentify(dataset, self.policy, self.pseudonymizer)

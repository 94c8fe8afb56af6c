"""The Deidentifier façade: the one object batch, network and Python users call."""

from __future__ import annotations

from pydicom.dataset import Dataset

from dicomcloak.engine.deidentify import deidentify
from dicomcloak.engine.outcome import Outcome
from dicomcloak.keys import ProjectKey, Pseudonymizer
from dicomcloak.policy.model import Policy
from dicomcloak.sanitize import Sanitized, sanitize_dataset

__all__ = ["Deidentifier"]


class Deidentifier:
    """Sanitize, then de-identify, datasets under one policy, one key and one pseudonym domain.

    Parameters
    ----------
    policy:
        What to do with each attribute (:class:`dicomcloak.policy.Policy`);
        ``policy.sanitize`` holds the sanitize stage's limits and choices.
    key:
        The project key; pseudonyms and UIDs are keyed by it.
    domain:
        The pseudonym domain (one per recipient).
    sanitize:
        Run the sanitize (CDR) stage first (DESIGN.md decision 5). Turn it off
        only for datasets that were already sanitized.

    Examples
    --------
    >>> deid = Deidentifier(Policy(), ProjectKey.generate(ephemeral=True))
    >>> outcome = deid.deidentify(dataset)        # doctest: +SKIP
    >>> outcome.dataset.PatientIdentityRemoved    # doctest: +SKIP
    'YES'
    """

    def __init__(
        self, policy: Policy, key: ProjectKey, domain: str = "default", *, sanitize: bool = True
    ) -> None:
        self.policy = policy
        self.pseudonymizer = Pseudonymizer(key, domain)
        self.sanitize_first = sanitize

    def sanitize(self, dataset: Dataset, *, then_deidentify: bool = True) -> Sanitized:
        """Run the sanitize stage alone; ``dataset`` is not changed.

        With ``then_deidentify`` (the default) elements this policy removes are
        left for :meth:`deidentify_sanitized` to remove, see ``docs/security.md``.

        Raises
        ------
        UnsafeContentError, ReadLimitError, MalformedError
            The instance is quarantined; the reference is the reason code.
        """
        return sanitize_dataset(dataset, self.policy.sanitize, self.policy, moot=then_deidentify)

    def deidentify(self, dataset: Dataset) -> Outcome:
        """Return the sanitized, de-identified copy of ``dataset``; ``dataset`` is not changed.

        The Outcome's changes include the sanitize stage's (source ``sanitize:<reason>``).
        """
        if not self.sanitize_first:
            return deidentify(dataset, self.policy, self.pseudonymizer)
        return self.deidentify_sanitized(self.sanitize(dataset))

    def deidentify_sanitized(self, sanitized: Sanitized) -> Outcome:
        """De-identify the result of :meth:`sanitize`; the Outcome carries both stages' changes.

        Paths of both stages address the input dataset: the sanitizer never
        removes or reorders sequence items.
        """
        outcome = deidentify(sanitized.dataset, self.policy, self.pseudonymizer)
        if not sanitized.changes:
            return outcome
        changes = tuple(sorted((*sanitized.changes, *outcome.changes), key=lambda change: change.path))
        return Outcome(outcome.dataset, changes, outcome.patient_pseudonym)

"""Helpers for the sanitize tests: run the stage on bytes, as the batch worker does."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from dicomcloak.errors import InputError
from dicomcloak.io import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.policy import Policy
from dicomcloak.sanitize import Sanitized, sanitize_dataset


@dataclass
class Result:
    """What the stage made of one input: the output bytes, or the quarantine error."""

    output: bytes | None
    sanitized: Sanitized | None
    error: InputError | None

    @property
    def verdict(self) -> str:
        """"" when accepted, else the reason code."""
        return self.error.reference if self.error is not None else ""


def run_stage(data: bytes, policy: Policy | None = None) -> Result:
    """Read with the policy's limits, sanitize (alone), encode; any non-InputError fails the test."""
    policy = policy or Policy()
    try:
        sanitized = sanitize_dataset(read_dataset(data, policy.sanitize.limits), policy.sanitize, policy)
        return Result(encode_dataset(sanitized.dataset), sanitized, None)
    except InputError as error:
        return Result(None, None, error)


def sanitize(ds: Dataset, policy: Policy | None = None) -> Sanitized:
    """The stage on a dataset, alone."""
    policy = policy or Policy()
    return sanitize_dataset(ds, policy.sanitize, policy)

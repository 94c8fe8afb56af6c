"""Leak check of a de-identified tree against its original (``dicomcloak verify``, docs/verify.md)."""

from dicomcloak.verify.outputs import Finding
from dicomcloak.verify.report import SCHEMA_VERSION, VerifyReport
from dicomcloak.verify.trees import verify_trees

__all__ = ["SCHEMA_VERSION", "Finding", "VerifyReport", "verify_trees"]

"""Leak check of a de-identified tree against its original (``dicomcloak verify``)."""

from dicomcloak.verify.report import Leak, VerifyReport
from dicomcloak.verify.trees import verify_trees

__all__ = ["Leak", "VerifyReport", "verify_trees"]

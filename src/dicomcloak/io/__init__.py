"""The edges of the pipeline: read inputs with limits, write outputs atomically, quarantine."""

from __future__ import annotations

from dicomcloak.io.inputs import InputItem, Refused, Skipped, WalkEntry, count_inputs, iter_inputs
from dicomcloak.io.layout import mirror_relpath, pseudonymous_relpath, safe_part, safe_relpath
from dicomcloak.io.quarantine import quarantine, reason_path
from dicomcloak.io.reader import ReadLimits, read_dataset, read_path
from dicomcloak.io.writer import copy_atomic, encode_dataset, write_atomic, write_dataset_atomic

__all__ = [
    "InputItem",
    "ReadLimits",
    "Refused",
    "Skipped",
    "WalkEntry",
    "copy_atomic",
    "count_inputs",
    "encode_dataset",
    "iter_inputs",
    "mirror_relpath",
    "pseudonymous_relpath",
    "quarantine",
    "read_dataset",
    "read_path",
    "reason_path",
    "safe_part",
    "safe_relpath",
    "write_atomic",
    "write_dataset_atomic",
]

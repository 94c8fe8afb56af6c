"""Test and benchmark support: a reproducible synthetic PHI corpus and a leak checker.

Adapted from dicomcloak's shared evaluation harness (``shared/eval``), so that a
clone of the project can measure itself without the shared directory. The
submodules are imported on first use, so ``python -m dicomcloak.testing.corpus``
and ``python -m dicomcloak.testing.leakcheck`` run without import warnings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dicomcloak.testing.corpus import build_corpus
    from dicomcloak.testing.leakcheck import evaluate

__all__ = ["build_corpus", "evaluate"]

_LAZY = {"build_corpus": "dicomcloak.testing.corpus", "evaluate": "dicomcloak.testing.leakcheck"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

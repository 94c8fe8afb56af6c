"""What a killed run leaves behind, and its removal when the next run starts.

A run killed with ``kill -9`` (or by the kernel's out-of-memory killer, or a
power cut) cannot tidy up: the temporary files its processes were writing stay
in the output, run and quarantine trees (some are complete de-identified
copies whose originals were not sealed yet), and its process pool's claim
directory stays in shared memory. Each of them is named by the process that
made it (:mod:`dicomcloak.io.staging`), so the next run on this host removes
exactly those whose process is gone (:func:`remove_debris`), and never what a
run still alive, on this host or another sharing the trees, is writing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dicomcloak.batch.rundir import run_tree
from dicomcloak.io.staging import CLAIMS_PREFIX, Tree, owner, remove_stale

__all__ = ["new_claims_dir", "remove_debris", "tidy_trees"]

_SHARED_MEMORY = Path("/dev/shm")  # a private mkdtemp directory (mode 0700) is made inside it


def new_claims_dir(run_dir: Path) -> Path:
    """A new claim directory (mode 0700) for a process pool, named ``.dicomcloak-claims.<owner>.<random>``.

    In shared memory when there is some, else in the run directory: a claim is
    one file created with O_EXCL; on a journaling disk each creation can wait
    for the journal commits of the outputs being synced, on tmpfs it never
    does. The directory lives for one run only; a killed run's is removed by
    the next (:func:`remove_debris`).
    """
    return Path(tempfile.mkdtemp(prefix=f"{CLAIMS_PREFIX}{owner()}.", dir=_claims_parent(run_dir)))


def _claims_parent(run_dir: Path) -> Path:
    if _SHARED_MEMORY.is_dir() and os.access(_SHARED_MEMORY, os.W_OK | os.X_OK):
        return _SHARED_MEMORY
    return run_dir


def _trees(out_dir: Path, run_dir: Path, quarantine_dir: Path) -> tuple[Tree, ...]:
    return (Tree(out_dir), run_tree(run_dir), Tree(quarantine_dir, private=True))


def remove_debris(out_dir: Path, run_dir: Path, quarantine_dir: Path) -> int:
    """Remove what killed runs of this host left: the trees' temporary files, claim directories.

    Only entries named by processes that are gone: a run still writing into
    the same trees keeps its own. Returns how many entries were removed.
    """
    removed = sum(tree.remove_stale() for tree in _trees(out_dir, run_dir, quarantine_dir))
    for parent in dict.fromkeys((_SHARED_MEMORY, run_dir)):
        removed += remove_stale(parent, CLAIMS_PREFIX, "")
    return removed


def tidy_trees(out_dir: Path, run_dir: Path, quarantine_dir: Path) -> None:
    """At the end of a run: remove the trees' staging directories where they are empty.

    So a finished run leaves nothing but outputs in the output tree. One that
    another run still uses is not empty, and stays.
    """
    for tree in _trees(out_dir, run_dir, quarantine_dir):
        tree.tidy()

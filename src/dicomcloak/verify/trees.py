"""``verify_trees``: search a de-identified tree for the identifying values of its original tree.

Two phases, each over independent files and so run on ``jobs`` processes
(:mod:`dicomcloak.verify.parallel`):

1. every original is read once and reduced to an
   :class:`~dicomcloak.verify.originals.OriginalRecord`: the values the policy
   changes (names and their parts, IDs, dates in seven written forms, times,
   other text, instance UIDs) and a digest of each element;
2. every output is matched to its original (by key, else by content,
   :mod:`dicomcloak.verify.check`) and its elements are searched where the
   policy did not keep them (:mod:`dicomcloak.verify.outputs`).

The report names files, element paths and kinds of value; never a value.
"""

from __future__ import annotations

from pathlib import Path

from dicomcloak.engine.quiet import quiet_pydicom
from dicomcloak.errors import UsageError
from dicomcloak.io.inputs import InputItem
from dicomcloak.io.reader import ReadLimits
from dicomcloak.keys import ProjectKey
from dicomcloak.policy.model import Policy
from dicomcloak.verify.check import OutputResult, Shared, check_bytes, check_dataset
from dicomcloak.verify.kinds import DummyValues
from dicomcloak.verify.originals import OriginalRecord, collect
from dicomcloak.verify.parallel import run_tasks, state
from dicomcloak.verify.reading import list_tree, read_item
from dicomcloak.verify.report import VerifyReport

__all__ = ["verify_trees"]

_LIMITS = ReadLimits()
_UNREADABLE = OutputResult((), "none", "unreadable")


def _collect_one(task: tuple[int, InputItem]) -> OriginalRecord | None:
    quiet_pydicom()  # also in a worker started by spawn, which does not inherit the setting
    policy, dummies, limits = state()
    index, item = task
    read = read_item(item, limits)
    if read.dataset is None:
        return None
    return collect(read.dataset, item.relpath, index, policy, dummies)


def _check_one(item: InputItem) -> OutputResult:
    quiet_pydicom()
    shared, limits = state()
    read = read_item(item, limits)
    if read.dataset is not None:
        return check_dataset(item.relpath, read.dataset, shared)
    if read.data is not None:
        return check_bytes(item.relpath, read.data, shared)
    return _UNREADABLE


def _read_originals(
    items: list[InputItem], policy: Policy, dummies: DummyValues, limits: ReadLimits, jobs: int
) -> dict[int, OriginalRecord]:
    records = run_tasks(_collect_one, list(enumerate(items)), (policy, dummies, limits), jobs)
    found = {record.index: record for record in records if record is not None}
    if not found:
        raise UsageError(
            "ORIGINAL holds no DICOM file that could be read", reference="verify-original-empty",
            hint="give the tree that was passed to 'dicomcloak deid'",
        )
    return found


def _report(
    originals: int, unreadable: int, outputs: list[InputItem], results: list[OutputResult], skipped: int
) -> VerifyReport:
    matches = {item.relpath: result.match for item, result in zip(outputs, results, strict=True)}
    statuses = [result.status for result in results]
    hows = list(matches.values())
    return VerifyReport(
        originals=originals, outputs=len(results) - statuses.count("unreadable"),
        findings=tuple(sorted(finding for result in results for finding in result.findings)),
        unreadable_originals=unreadable, unparsed_outputs=statuses.count("unparsed"),
        unreadable_outputs=statuses.count("unreadable"), matched_by_key=hows.count("key"),
        matched_by_content=hows.count("content"), skipped_outputs=skipped,
        matches=matches,
    )


def verify_trees(
    original: Path,
    output: Path,
    policy: Policy,
    key: ProjectKey | None = None,
    domain: str = "default",
    limits: ReadLimits = _LIMITS,
    jobs: int = 1,
) -> VerifyReport:
    """Search ``output`` for identifying values of the instances under ``original``.

    Parameters
    ----------
    original, output:
        The original tree (a file, directory or zip archive) and the de-identified one made from it.
    policy:
        The policy the output was made with; it defines what is identifying and what is kept.
    key, domain:
        The project key and pseudonym domain the output was made with; when given,
        outputs are matched to their originals by pseudonymous SOP Instance UID,
        else (and for UIDs several originals share) by content.
    limits:
        Reading limits for both trees.
    jobs:
        Worker processes (1: all work in this process).

    Raises
    ------
    UsageError
        ``verify-original-missing``, ``verify-original-empty``, ``verify-output-missing``,
        ``verify-output-empty``: there is nothing to compare.
    """
    quiet_pydicom()  # pydicom's reading validation quotes invalid values: never (architecture.md decision 7)
    originals, outputs = list_tree(original, "original"), list_tree(output, "output")
    dummies = DummyValues(policy)
    records = _read_originals(originals.items, policy, dummies, limits, jobs)
    shared = Shared.build(policy, dummies, records, key, domain)
    if key is None:
        shared.postings()  # built before the workers start, so they share it
    results = run_tasks(_check_one, outputs.items, (shared, limits), jobs)
    unreadable = len(originals.items) - len(records)
    return _report(len(records), unreadable, outputs.items, results, outputs.skipped)

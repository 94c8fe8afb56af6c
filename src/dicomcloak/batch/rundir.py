"""The run directory: one folder per run, a pointer to the latest, and the refusal of mixed outputs.

::

    RUN_DIR/
      runs/<UTC time>-<id>/
        run.json        written first: the command, the output, what the run was made with
        report.json     written last: the summary, every input not written (by index), the changes
        events.jsonl    deid and sanitize: one sanitize verdict per input
      latest -> runs/<UTC time>-<id>     the last finished run (where the file system has symbolic links)
      latest.json       the same pointer as a file: {"run": "runs/<id>", "report": "runs/<id>/report.json"}
      quarantine/       shared by every run (an input is quarantined at the same place each time)
      .dicomcloak-tmp/  temporary files while they are written (io.staging); a crashed run's are removed

The run directory holds originals (the quarantine) and is private: every
directory made in it is mode 0700, whatever the umask, and every file 0600.

A run never overwrites an earlier run's report. Before it writes anything, a
run looks up the latest earlier run into the same output (``run.json``, or the
``report.json`` a run directory held before run folders existed) and refuses
(``output-made-differently``, exit 2) if that run was made with another
command, key, pseudonym domain, layout, options or policy: one output tree
mixing two keys' pseudonyms, or de-identified and re-identified files, is
worse than no output. The same command again is allowed (outputs are
deterministic, so it rewrites the same files). Nothing here holds a secret:
the key appears by its public id, the policy by a SHA-256 fingerprint.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicomcloak.errors import OutputError, UsageError
from dicomcloak.io.staging import Tree, makedirs_private, temp_name
from dicomcloak.io.writer import write_atomic
from dicomcloak.policy.model import Policy

__all__ = [
    "EVENTS_NAME",
    "LATEST_NAME",
    "LATEST_SCHEMA",
    "REPORT_NAME",
    "RUNS_NAME",
    "RUN_RECORD_NAME",
    "RUN_SCHEMA",
    "RunFolder",
    "begin_run",
    "check_made_alike",
    "finish_run",
    "policy_fingerprint",
    "run_tree",
]

RUNS_NAME = "runs"
REPORT_NAME = "report.json"
EVENTS_NAME = "events.jsonl"
RUN_RECORD_NAME = "run.json"
LATEST_NAME = "latest"
LATEST_SCHEMA = "dicomcloak/latest-run/1"
RUN_SCHEMA = "dicomcloak/run/1"

#: The facts compared between runs into one output, in the order a refusal names them.
_FACTS = {
    "command": "by 'dicomcloak {was}' (this run: 'dicomcloak {now}')",
    "key_id": "with another key (key id {was}; this run's: {now})",
    "domain": "for the pseudonym domain {was!r} (this run: {now!r})",
    "layout": "with the {was} layout (this run: {now})",
    "options": "with the options {was} (this run: {now})",
    "policy_sha256": "with another policy (fingerprint {was:.12}; this run's: {now:.12})",
    "pixels_sha256": "with other pixel settings (--pixels, [pixels]; fingerprint {was:.12}; now {now:.12})",
}


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run inside its run directory."""

    run_dir: Path
    run_id: str

    @property
    def path(self) -> Path:
        """``RUN_DIR/runs/<run id>``."""
        return self.run_dir / RUNS_NAME / self.run_id

    @property
    def report(self) -> Path:
        """This run's ``report.json``."""
        return self.path / REPORT_NAME

    @property
    def events(self) -> Path:
        """This run's ``events.jsonl``."""
        return self.path / EVENTS_NAME

    @property
    def record(self) -> Path:
        """This run's ``run.json``: what it was made with, written before any output."""
        return self.path / RUN_RECORD_NAME


def begin_run(run_dir: Path, output: Path, made_with: dict[str, Any]) -> RunFolder:
    """Create this run's folder and its ``run.json`` (after :func:`check_made_alike`, before any output).

    Raises
    ------
    OutputError
        ``output-unwritable``: the run directory cannot be written.
    """
    folder = RunFolder(run_dir, _new_run_id())
    try:
        makedirs_private(folder.path)
    except OSError as error:
        raise OutputError(
            f"cannot create a run folder in the run directory {run_dir}: {error.strerror}",
            hint="choose a writable --run-dir (it holds the reports and the quarantine)",
        ) from None
    record = {"schema": RUN_SCHEMA, "run_id": folder.run_id, "output": str(output), "made_with": made_with}
    write_atomic(folder.record, _encode(record), tree=run_tree(run_dir))
    return folder


def finish_run(folder: RunFolder, report: bytes) -> None:
    """Write the run's report, then point ``latest`` and ``latest.json`` at the run."""
    tree = run_tree(folder.run_dir)
    write_atomic(folder.report, report, tree=tree)
    relative = f"{RUNS_NAME}/{folder.run_id}"
    pointer = {"schema": LATEST_SCHEMA, "run": relative, "report": f"{relative}/{REPORT_NAME}"}
    write_atomic(folder.run_dir / f"{LATEST_NAME}.json", _encode(pointer), tree=tree)
    _link_latest(tree, relative)


def run_tree(run_dir: Path) -> Tree:
    """The run directory as a private tree: its temporary files in ``RUN_DIR/.dicomcloak-tmp``."""
    return Tree(run_dir, private=True)


def check_made_alike(output: Path, made_with: dict[str, Any], places: Sequence[Path]) -> None:
    """Refuse if the latest earlier run into ``output`` recorded in any of ``places`` was made differently.

    ``places`` are the run directory and any other where earlier runs into
    ``output`` may have left their record (the default ``OUT.run`` when
    ``--run-dir`` chose another). Facts missing from either side (records
    of older versions) are not compared. A run that never finished counts:
    it may have written outputs before it stopped.

    Raises
    ------
    UsageError
        ``output-made-differently``, naming the earlier run's report.
    """
    for place in dict.fromkeys(places):
        found = _latest_record(place, str(output))
        if found is None:
            continue
        where, earlier = found
        for fact, words in _FACTS.items():
            if fact in earlier and fact in made_with and earlier[fact] != made_with[fact]:
                raise _made_differently(output, where, words.format(was=earlier[fact], now=made_with[fact]))


def policy_fingerprint(policy: Policy) -> str:
    """SHA-256 of what decides an output's content (:func:`dicomcloak.policy.fingerprint.fingerprint`)."""
    from dicomcloak.policy.fingerprint import fingerprint

    return fingerprint(policy)


def _made_differently(output: Path, report: str, what: str) -> UsageError:
    return UsageError(
        f"the output {output} was made {what}; see {report}",
        reference="output-made-differently",
        hint="write to a new --out, or repeat that run's --key, --domain, --layout, --option, --policy, "
        "--pixels and --strict-table (an --ephemeral-key output cannot be added to)",
    )


def _latest_record(place: Path, output: str) -> tuple[str, dict[str, Any]] | None:
    """The newest run into ``output`` in ``place``: its report (run.json if it never finished), its facts."""
    for folder in _run_folders(place):
        record = _read_json(folder / RUN_RECORD_NAME)
        made_with = record.get("made_with")
        if record.get("output") == output and isinstance(made_with, dict):
            report = folder / REPORT_NAME
            if report.exists():
                return str(report), made_with
            return f"{folder / RUN_RECORD_NAME} (a run that did not finish)", made_with
    summary = _read_json(place / REPORT_NAME).get("summary")  # a run directory older than run folders
    if isinstance(summary, dict) and summary.get("output") == output:
        return str(place / REPORT_NAME), _legacy_facts(summary)
    return None


def _run_folders(place: Path) -> Iterator[Path]:
    """Run folders, newest first (their names start with the UTC time)."""
    try:
        names = sorted(os.listdir(place / RUNS_NAME), reverse=True)
    except OSError:
        return
    yield from (place / RUNS_NAME / name for name in names if not name.startswith("."))


def _legacy_facts(summary: dict[str, Any]) -> dict[str, Any]:
    """The facts a ``report.json`` summary of an older version holds."""
    if "reid" in str(summary.get("schema", "")):
        return {"command": "reid"}
    if summary.get("command") == "sanitize":
        return {"command": "sanitize"}
    facts: dict[str, Any] = {"command": "deid"}
    facts.update((key, summary[key]) for key in ("key_id", "domain", "layout", "options") if key in summary)
    return facts


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or an empty one if it is missing, unreadable or not an object."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _link_latest(tree: Tree, relative: str) -> None:
    """Replace ``RUN_DIR/latest`` by a relative symbolic link, atomically; ``latest.json`` is the fallback.

    The link is made in the staging directory (it exists: ``latest.json``
    was just written through it) and renamed into place; a relative link's
    target is read relative to where it ends up. Some file systems (FAT, some
    network shares) have no symbolic links: there the link is simply not made.
    """
    temporary = tree.staging / temp_name()
    try:
        os.symlink(relative, temporary)
        os.replace(temporary, tree.root / LATEST_NAME)
    except OSError:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)


def _new_run_id() -> str:
    """``<UTC time>-<random>``: sorts by start time, unique across concurrent runs."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(3)}"


def _encode(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")

"""What runs inside each Dask worker process for ``deid --dask``: its contexts, built once, closed once.

The client ships a :class:`Recipe` once per run (scattered to the workers):
the run's :class:`~dicomcloak.batch.worker.WorkerSettings` *without their
secrets*, and where the key material lies. Each worker process reads the key
file (and the sealer key) itself, from a path every node sees (shared storage
or a secret mounted on every node), and checks it holds the key the client
used (its key id, never the key): the project key never crosses the
scheduler or the network (docs/cluster.md, "Keys").

A worker process builds one :class:`~dicomcloak.batch.worker.WorkerContext`
per thread that runs a chunk of the run (a context is not thread-safe), and
keeps them in a module-level registry keyed by the run's opaque id, so every
later chunk reuses them. Before its first context exists, the process leaves a
*marker* named by a random token in the run's shared directory, holding its
Dask address: during the run the client compares the markers' addresses with
the scheduler's workers, at the end the markers with the workers that closed,
so a worker that died with uncommitted outputs, even before answering a single
chunk, is never missed (:mod:`dicomcloak.batch.placement`: the run then stops,
``worker-died``). At the end the client calls :func:`close_run` on every
worker: each context commits its last group (and seals it) and reports what it
could not place. A run that stops early leaves a *stop file* in the shared
directory: chunks not yet started then return at once, on every worker.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomcloak.batch.pool import _picklable  # an error that does not pickle: its type name only
from dicomcloak.batch.worker import FileResult, WorkerContext, WorkerSettings, build_context, process_chunk
from dicomcloak.errors import DicomcloakError, KeyError_, OutputError, UsageError
from dicomcloak.io.writer import forget_made_dirs

if TYPE_CHECKING:
    from dicomcloak.batch.run import Task
    from dicomcloak.keys import Keyring

__all__ = [
    "Chunk", "Closed", "KeyFiles", "Recipe", "close_run", "marker", "markers", "run_chunk", "stop_file",
]


@dataclass(frozen=True)
class KeyFiles:
    """Where each worker reads the key material itself, and the ids it must find there (never a secret).

    ``key``: the project key file (its wrapping keys from ``DICOMCLOAK_WRAPPING_KEYS``
    when the worker's environment sets it, as on the client); ``wrapping_key_id``:
    the current wrapping key the vault's data keys are wrapped with (None: no vault);
    ``sealer_key`` and ``sealer_fingerprint``: the key that signs embedded seals.
    """

    key: Path
    key_id: str
    wrapping_key_id: str | None = None
    sealer_key: Path | None = None
    sealer_fingerprint: str | None = None


@dataclass(frozen=True)
class Recipe:
    """One run, as shipped to the workers: settings without secrets, the key files, the shared directory.

    ``fields`` are the :class:`WorkerSettings` fields but ``key``; its seal
    settings, if any, carry neither the key ring nor the sealer key.
    ``shared`` holds ``claims/`` and ``workers/`` (the markers), on storage
    every worker sees. ``version``: dicomcloak's on the client; a worker
    with another one would write other bytes, and refuses.
    """

    run: str
    fields: Mapping[str, Any]
    keys: KeyFiles
    shared: Path
    version: str


@dataclass(frozen=True)
class Chunk:
    """Some inputs for one task. Its ``repr`` counts them only: Dask logs a failed task's arguments
    (``Compute Failed``, distributed/worker.py), and an input's path may name its patient."""

    tasks: list[Task]

    def __repr__(self) -> str:
        return f"Chunk({len(self.tasks)} inputs)"


@dataclass(frozen=True)
class Closed:
    """How a worker process closed its contexts of a run: its token, what it could not place, its error."""

    token: str
    unplaced: dict[int, int]
    error: BaseException | None = None


@dataclass
class _Run:
    """A worker process's state for one run: its settings (with the keys it read) and its contexts."""

    token: str
    settings: WorkerSettings
    shared: Path
    contexts: dict[int, WorkerContext] = field(default_factory=dict)  # by thread


_RUNS: dict[str, _Run] = {}
_LOCK = threading.Lock()  # guards _RUNS and each run's contexts


def run_chunk(recipe: Recipe, chunk: Chunk) -> list[FileResult]:
    """Process one chunk with this thread's context of the run (built on first use); nothing once stopped."""
    if stop_file(recipe.shared).exists():
        return []
    try:
        return process_chunk(chunk.tasks, _context(recipe))
    except OSError as error:  # its message may name an input: Dask logs it, and sends it to the client
        raise OutputError(
            f"cannot write: {error.strerror or type(error).__name__}",
            hint="check free space and permissions of the output and run directories",
        ) from None


def stop_file(shared: Path) -> Path:
    """The file whose presence stops a run: chunks not yet started return nothing, on every worker
    (one that joins the cluster later too: the run's shared directory is what they all see)."""
    return shared / "stopped"


def marker(shared: Path, token: str) -> Path:
    """A worker process's marker, named by its token; it holds the worker's Dask address."""
    return shared / "workers" / token


def markers(shared: Path) -> dict[str, str]:
    """Every marker of the run: token -> address of the worker process that left it."""
    return {token: marker(shared, token).read_text("utf-8") for token in os.listdir(shared / "workers")}


async def close_run(run: str) -> Closed | None:
    """Close this process's contexts of ``run`` off the worker's event loop; None if it had none."""
    return await asyncio.to_thread(_close, run)


def _close(run: str) -> Closed | None:
    """Commit each context's last group (and seal it); the first error is returned, never raised."""
    with _LOCK:
        state = _RUNS.pop(run, None)
    return None if state is None else _closed(state)


def _closed(state: _Run) -> Closed:
    unplaced: dict[int, int] = {}
    error: BaseException | None = None
    for ctx in state.contexts.values():
        try:
            ctx.close()
        except Exception as raised:  # noqa: BLE001 - every context gets to commit; the client raises it
            error = error or _picklable(raised)
        finally:
            unplaced.update(ctx.writer.unplaced)
    return Closed(state.token, unplaced, error)


def _context(recipe: Recipe) -> WorkerContext:
    """This thread's context of the run, built on first use (with the run's state in this process)."""
    with _LOCK:
        state = _RUNS.get(recipe.run)
        if state is None:
            _reap()
            state = _RUNS[recipe.run] = _start(recipe)
        thread = threading.get_ident()
        ctx = state.contexts.get(thread)
        if ctx is None:
            ctx = state.contexts[thread] = build_context(state.settings)
    return ctx


def _reap() -> None:
    """Close the runs whose client is gone (killed: its shared directory was removed by a later run).

    Their last groups commit, sealed as ever; without this a long-lived worker
    would hold their contexts, vault connections and temporary files forever.
    Called with the lock held, as a new run starts here.
    """
    for run, state in list(_RUNS.items()):
        if not state.shared.exists():
            del _RUNS[run]
            _closed(state)


def _start(recipe: Recipe) -> _Run:
    """Check the version, read the keys, leave this process's marker: the run's state here."""
    from dicomcloak import __version__

    if recipe.version != __version__:
        raise UsageError(
            f"this Dask worker runs dicomcloak {__version__}, the client {recipe.version}",
            reference="dask-version-mismatch",
            hint="install the same dicomcloak version on every worker (outputs must not depend on the node)",
        )
    settings = _settings(recipe)
    forget_made_dirs()  # this process may have written an earlier run's tree, since deleted
    token = uuid.uuid4().hex
    fd = os.open(marker(recipe.shared, token), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, _address().encode())
    finally:
        os.close(fd)
    return _Run(token, settings, recipe.shared)


def _settings(recipe: Recipe) -> WorkerSettings:
    """The run's settings with the key material this worker read and checked itself."""
    ring = _keyring(recipe.keys)
    fields = dict(recipe.fields)
    seal = fields.get("seal")
    if seal is not None:
        sealer = _sealer_key(recipe.keys) if seal.recipients else None
        fields["seal"] = replace(seal, keyring=ring if seal.vault_url else None, sealer_key=sealer)
    fields["workers"] = _threads()
    return WorkerSettings(key=ring.project, **fields)


def _keyring(keys: KeyFiles) -> Keyring:
    """The key ring of the key file (wrapping keys from this worker's environment if set), checked."""
    from dicomcloak.batch.keyfiles import resolve_keyring

    found = resolve_keyring(keys.key, os.environ)
    assert found is not None  # a path is given: resolve_keyring returns a ring or raises
    ring = found[0]
    if ring.project.key_id != keys.key_id:
        raise _mismatch("key file", keys.key, ring.project.key_id, keys.key_id)
    if keys.wrapping_key_id is not None and ring.current.key_id != keys.wrapping_key_id:
        raise _mismatch("current wrapping key of", keys.key, ring.current.key_id, keys.wrapping_key_id)
    return ring


def _sealer_key(keys: KeyFiles) -> bytes:
    """The sealer key's PEM, read here and checked against the client's fingerprint."""
    from dicomcloak.batch.keyfiles import read_sealer_key
    from dicomcloak.keys.sealing import load_sealer_key

    if keys.sealer_key is None:
        raise UsageError("embedded seals need a sealer key", reference="sealer-key-required")
    pem = read_sealer_key(keys.sealer_key)
    found = load_sealer_key(pem, str(keys.sealer_key)).fingerprint.hex()[:16]
    if found != keys.sealer_fingerprint:
        raise _mismatch("sealer key", keys.sealer_key, found, keys.sealer_fingerprint or "")
    return pem


def _mismatch(what: str, path: Path, found: str, expected: str) -> DicomcloakError:
    """The key a worker read is not the client's: ids only (they name keys without revealing them)."""
    return KeyError_(
        f"the {what} {path} on this Dask worker is {found}, the client's {expected}",
        reference="dask-key-mismatch",
        hint="every worker must see the same key files at the same paths as the client (docs/cluster.md)",
    )


def _address() -> str:
    """This Dask worker's address, as the scheduler names it ("" outside a worker)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return ""


def _threads() -> int:
    """The threads of this Dask worker: the pixel stage shares the cores among them."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError):
        return 1

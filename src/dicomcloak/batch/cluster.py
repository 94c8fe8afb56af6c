"""``deid --dask``: the per-instance work on an existing Dask distributed cluster (docs/cluster.md).

architecture.md decision 8: keyed determinism means workers share nothing but
the vault, so a cluster runs the very same per-instance step as the local pool
(:func:`dicomcloak.batch.worker.process_chunk`), in chunks, each Dask worker
process with contexts it builds once per run (:mod:`dicomcloak.batch.cluster_worker`).
What that needs from the cluster, checked or documented here:

* inputs, the output, the quarantine and the run directory on storage every
  worker sees, at the same paths: the run's claims (which input wrote an
  instance first, :mod:`dicomcloak.batch.claims`) and the workers' markers
  live in a private directory inside the run directory;
* a vault every worker reaches: PostgreSQL, never SQLite (``dask-needs-shared-vault``);
* a project key *file* every worker reads itself (``dask-needs-key-file``):
  only its path and key id are sent, never the key (:class:`KeyFiles`).

The scheduler sees opaque task keys (``dicomcloak-<run id>-<n>``), never an
input path; input paths (which may name patients) travel in the task
arguments, and results (codes, pseudonymous paths, and with the pixel stage
the report's thumbnails) come back through it: use TLS (``tls://``).

The run keeps the local pool's accounting (:mod:`dicomcloak.batch.placement`):
at the end every worker commits its last group and reports what it could not
place; a worker that left a marker but did not close died with outputs
unknown, and the run stops (``worker-died``) without a report, as with the pool.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from dicomcloak.batch.claims import make_claims
from dicomcloak.batch.cluster_worker import (
    Chunk,
    Closed,
    KeyFiles,
    Recipe,
    close_run,
    markers,
    run_chunk,
    stop_file,
)
from dicomcloak.batch.resume import seed_claims
from dicomcloak.batch.worker import FileResult, SealSettings, WorkerSettings
from dicomcloak.errors import DicomcloakError, OutputError, UsageError
from dicomcloak.io.staging import CLAIMS_PREFIX, owner

if TYPE_CHECKING:
    from distributed import Client, Future

    from dicomcloak.batch.placement import Placement
    from dicomcloak.batch.run import Observer, RunSettings, Task

__all__ = ["KeyFiles", "check_cluster", "cluster_results", "key_files", "plaintext"]

_WORKERS_TIMEOUT = 60.0  # seconds to wait for a first worker
_WIND_DOWN_TIMEOUT = 600.0  # seconds the chunks in flight get to finish once a run stops
_CHUNK_MIN, _CHUNK_MAX = 8, 64  # inputs per task: few round trips, no long tail
_LIVENESS_INTERVAL = 1.0  # seconds between checks that no worker holding outputs of the run has left


def check_cluster(worker: WorkerSettings) -> None:
    """Refuse what a cluster cannot share: a throwaway key, a SQLite vault or audit database.

    Raises
    ------
    UsageError
        ``dask-needs-key-file``, ``dask-needs-shared-vault``.
    """
    if worker.key.ephemeral:
        raise UsageError(
            "--dask needs a project key file, not --ephemeral-key",
            reference="dask-needs-key-file",
            hint="every worker reads the key file itself: pass --key FILE on storage (or a secret) every "
            "node sees",
        )
    seal = worker.seal
    if seal is None or seal.vault_url is None:
        return  # embedded seals need no database the workers share
    for what, url in (("--vault", seal.vault_url), ("--audit", seal.audit_url)):
        if url is not None and _backend(url) != "postgresql":
            raise UsageError(
                f"--dask needs a vault every worker reaches; {what} names a {_backend(url)} database",
                reference="dask-needs-shared-vault",
                hint="use a PostgreSQL vault: --vault postgresql+pg8000://USER@HOST/DB (docs/cluster.md)",
            )


def _backend(url: str) -> str:
    """The database a SQLAlchemy URL names (``postgresql+pg8000://`` -> ``postgresql``), nothing else."""
    return url.split(":", 1)[0].split("+", 1)[0].lower() or "unnamed"


def key_files(worker: WorkerSettings, key: Path, sealer_key: Path | None = None) -> KeyFiles:
    """What the workers are told about the keys: the files' absolute paths and the ids they must find."""
    seal = worker.seal
    wrapping = seal.keyring.current.key_id if seal is not None and seal.keyring is not None else None
    fingerprint = None
    if seal is not None and seal.sealer_key is not None:
        from dicomcloak.keys.sealing import load_sealer_key

        fingerprint = load_sealer_key(seal.sealer_key, "--sealer-key").fingerprint.hex()[:16]
    sealer = sealer_key.resolve() if sealer_key is not None and fingerprint is not None else None
    return KeyFiles(key.resolve(), worker.key.key_id, wrapping, sealer, fingerprint)


def plaintext(address: str) -> bool:
    """Whether results would cross a network unencrypted: not ``tls://``, and not this host."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    local = parts.hostname in ("localhost", "127.0.0.1", "::1") or parts.scheme == "inproc"
    return parts.scheme != "tls" and not local


def cluster_results(
    tasks: list[Task], settings: RunSettings, observer: Observer | None, placement: Placement
) -> Iterator[FileResult]:
    """Run ``tasks`` on the cluster at ``settings.scheduler``; yield each input's result as it comes.

    What each worker could not place is noted in ``placement`` as it closes.

    Raises
    ------
    UsageError
        The refusals of :func:`check_cluster`; ``dask-unreachable`` (no scheduler answers).
    OutputError
        ``dask-no-workers``; ``worker-died`` (a worker stopped with outputs unknown).
    DicomcloakError
        The error that stopped a worker (``vault-busy`` ...), with its type and reference.
    """
    check_cluster(settings.worker)
    if settings.key_files is None or settings.scheduler is None:
        raise UsageError("a cluster run needs the key file's path", reference="dask-needs-key-file")
    if not tasks:
        if observer is not None:
            observer.start(0)
        return
    _prepare_vault(settings.worker.seal)
    client = _connect(settings.scheduler)
    shared = _shared_dir(settings.run_dir)
    seed_claims(make_claims(shared / "claims"), settings.seeds)  # a resumed job's (batch.resume)
    try:
        recipe = _recipe(settings.worker, settings.key_files, shared)
        yield from _run(client, recipe, tasks, observer, placement)
    finally:
        client.close()  # type: ignore[no-untyped-call]
        shutil.rmtree(shared, ignore_errors=True)


def _prepare_vault(seal: SealSettings | None) -> None:
    """Open the vault once here, before any worker does: its tables are created (and its project key
    checked) by one process. PostgreSQL's ``CREATE TABLE`` is not safe against a concurrent one (a
    unique violation in its catalogue); the local pool does its first file before forking likewise."""
    if seal is None or seal.vault_url is None or seal.keyring is None:
        return
    from dicomcloak.vault import Vault

    wait = {} if seal.vault_wait is None else {"wait": seal.vault_wait}
    Vault.open(seal.vault_url, seal.keyring, audit_url=seal.audit_url, **wait).close()


def _connect(address: str) -> Client:
    """A client of the scheduler (TLS and credentials from Dask's configuration), once a worker is there."""
    from distributed import Client

    try:
        # The connection timeout is Dask's (distributed.comm.timeouts.connect).
        client = Client(address, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError):
        raise UsageError(
            f"cannot reach the Dask scheduler at {address}",
            reference="dask-unreachable",
            hint="check the address and, for tls://, Dask's distributed.comm.tls configuration",
        ) from None
    try:
        client.wait_for_workers(1, timeout=_WORKERS_TIMEOUT)
    except TimeoutError:
        client.close()  # type: ignore[no-untyped-call]
        raise OutputError(
            f"the Dask scheduler at {address} has no worker", reference="dask-no-workers",
            hint="start workers (dask worker ADDRESS) and run again",
        ) from None
    return client


def _shared_dir(run_dir: Path) -> Path:
    """The run's private directory in the run directory: ``claims/`` and the workers' markers.

    Named as a claim directory, so a killed run's is removed by the next run on
    this host (:mod:`dicomcloak.batch.debris`).
    """
    shared = Path(tempfile.mkdtemp(prefix=f"{CLAIMS_PREFIX}{owner()}.", dir=run_dir))
    for name in ("claims", "workers"):
        (shared / name).mkdir(mode=0o700)
    return shared


def _recipe(worker: WorkerSettings, keys: KeyFiles, shared: Path) -> Recipe:
    """The run as shipped: every setting but the secrets, the claims in the shared directory."""
    from dicomcloak import __version__

    shipped = {spec.name: getattr(worker, spec.name) for spec in fields(worker) if spec.name != "key"}
    shipped["claims_dir"] = shared / "claims"
    if worker.seal is not None:
        shipped["seal"] = replace(worker.seal, keyring=None, sealer_key=None)
    return Recipe(uuid.uuid4().hex, shipped, keys, shared, __version__)


def _run(
    client: Client, recipe: Recipe, tasks: list[Task], observer: Observer | None, placement: Placement
) -> Iterator[FileResult]:
    from distributed import as_completed

    shipped = client.scatter(recipe, broadcast=True, hash=False)  # type: ignore[no-untyped-call]
    size = _chunk_size(len(tasks), sum(client.nthreads().values()))  # type: ignore[no-untyped-call]
    futures = [
        client.submit(run_chunk, shipped, Chunk(tasks[start : start + size]),
                      key=f"dicomcloak-{recipe.run}-{n}", pure=False)
        for n, start in enumerate(range(0, len(tasks), size))
    ]
    if observer is not None:
        observer.start(len(tasks))
    done: set[str] = set()
    checked = time.monotonic()
    try:
        for future in as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
            results = _result(future)
            done.add(future.key)
            yield from results
            if time.monotonic() - checked > _LIVENESS_INTERVAL:
                _check_alive(client, recipe)
                checked = time.monotonic()
    except DicomcloakError:
        yield from _wind_down(client, recipe, futures, done, placement)  # results of chunks in flight
        raise
    except BaseException:  # interrupted (Ctrl-C, the caller stopped reading): stop at once, close nothing
        with suppress(Exception):
            _abandon(client, recipe, futures)
        raise
    error = _close(client, recipe, placement)
    if error is not None:
        raise error


def _chunk_size(tasks: int, threads: int) -> int:
    """Inputs per task: some eight tasks per worker thread, within 8 to 64 inputs."""
    return max(_CHUNK_MIN, min(_CHUNK_MAX, tasks // max(1, threads * 8)))


def _result(future: Future[list[FileResult]]) -> list[FileResult]:
    """A chunk's results; its error raised typed, a worker lost for good as ``worker-died``."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker:
        raise _died() from None


def _check_alive(client: Client, recipe: Recipe) -> None:
    """Stop the run as soon as a worker that holds outputs of it has left the cluster (``worker-died``).

    Markers are read before the scheduler is asked: a worker leaves its
    marker only once registered, so a marker's worker missing from the answer is gone.
    """
    left = markers(recipe.shared)
    alive = set(client.scheduler_info()["workers"])
    if set(left.values()) - alive:
        raise _died()


def _died() -> OutputError:
    return OutputError(
        "a Dask worker stopped during the run",
        reference="worker-died",
        hint="the outputs of its last group may be missing; check the worker's memory and logs; run again",
    )


def _wind_down(
    client: Client, recipe: Recipe, futures: list[Future[list[FileResult]]], done: set[str],
    placement: Placement,
) -> list[FileResult]:
    """After an error: chunks not started return nothing, those in flight finish; every worker closes.

    Returns the results of the chunks that finished meanwhile (their outputs may
    be on disk). The error that stopped the run wins over any of the close.
    """
    from distributed import wait

    stop_file(recipe.shared).touch()  # seen by every worker, one that joins later too
    with suppress(Exception):
        wait(futures, timeout=_WIND_DOWN_TIMEOUT)  # type: ignore[no-untyped-call]
    late = [f for f in futures if f.key not in done and f.status == "finished"]
    client.cancel([f for f in futures if f.status != "finished"])  # type: ignore[no-untyped-call]
    leftovers = [result for f in late for result in _quiet(f)]
    _close(client, recipe, placement)
    return leftovers


def _abandon(client: Client, recipe: Recipe, futures: list[Future[list[FileResult]]]) -> None:
    """Stop the run without waiting: chunks in flight finish on their workers, whose contexts are closed
    (last groups committed, sealed) by the workers' next run, once this run's shared directory is gone."""
    stop_file(recipe.shared).touch()
    client.cancel(futures)  # type: ignore[no-untyped-call]


def _quiet(future: Future[list[FileResult]]) -> list[FileResult]:
    try:
        return future.result()
    except Exception:  # noqa: BLE001 - the run's own error is being raised
        return []


def _close(client: Client, recipe: Recipe, placement: Placement) -> DicomcloakError | BaseException | None:
    """Close the run on every worker; note what each could not place; the first error (or a lost worker)."""
    answers: dict[str, Any] = client.run(close_run, recipe.run, on_error="return")
    closed = [answer for answer in answers.values() if isinstance(answer, Closed)]
    for answer in closed:
        placement.unplaced.update(answer.unplaced)
    errors = [answer.error for answer in closed if answer.error is not None]
    if set(markers(recipe.shared)) - {answer.token for answer in closed}:
        placement.complete = False  # a worker's last group is unknown: no report can count it
        return errors[0] if errors else _died()
    return errors[0] if errors else None

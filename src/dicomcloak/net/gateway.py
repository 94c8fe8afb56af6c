"""The gateway's core: each received instance through its route, durably spooled, then forwarded (issue 15).

:class:`Gateway` is the :class:`~dicomcloak.net.sink.StoreSink` the listener
hands every C-STORE to (docs/gateway.md). A route runs the same per-instance
path as the batch commands, never a copy of it (architecture.md, "The flow of
one instance"):

* **de-identifying**: :func:`dicomcloak.batch.worker.process_item` with a
  context per thread (:class:`~dicomcloak.batch.worker.WorkerContext` is not
  thread-safe; pynetdicom runs each association on its own thread), so a
  pool of ``limits.workers`` contexts per route, each used by one thread at a
  time. Its writer commits each output at once (``commit_each``): the file
  synced and renamed into ``outbound``, its vault record sealed before the
  rename, and the directories synced, before the sender is answered success
  (architecture.md decision 6). Claims live in the spool and record content
  digests, so idempotence and UID conflicts survive restarts.
* **re-identifying**: :func:`dicomcloak.batch.reidentify.restore_data` with a
  :class:`~dicomcloak.api.Reidentifier` per thread, written to
  ``outbound/<sha256 of the restored SOP Instance UID>.dcm`` (no original in
  a file name); every failure to open the originals fails closed (0x0110).

Answers (:mod:`dicomcloak.net.sink`): written or an identical re-send:
success; quarantined: 0xC101 with the reason code; sealing, output, store or
disk failures: 0x0110 (nothing half-written, the sender keeps its copy and may
resend); the route's spool over its limits: 0xA700 without processing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from dicomcloak.errors import DicomcloakError, InputError, ProcessingError
from dicomcloak.io.inputs import InputItem
from dicomcloak.net.config import DeidRoute, GatewayConfig, ReidRoute, Route
from dicomcloak.net.events import GatewayAudit
from dicomcloak.net.forward import Forwarder
from dicomcloak.net.sink import (
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    REFUSED_QUARANTINED,
    SUCCESS,
    StoreAnswer,
)
from dicomcloak.net.spool import RouteSpool, SpoolClaims, SpoolLock, fsync_directory
from dicomcloak.net.status import RouteCounters, StatusWriter, previous_counts

if TYPE_CHECKING:
    from dicomcloak.api import Reidentifier
    from dicomcloak.batch.worker import WorkerContext, WorkerSettings
    from dicomcloak.keys import ProjectKey
    from dicomcloak.policy.model import Policy

__all__ = ["Gateway"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class _Pool(Generic[_T]):
    """Objects that are not thread-safe, each lent to one thread at a time."""

    def __init__(self, items: list[_T]) -> None:
        self.items = items
        self._free: queue.SimpleQueue[_T] = queue.SimpleQueue()
        for item in items:
            self._free.put(item)

    @contextmanager
    def lend(self) -> Iterator[_T]:
        item = self._free.get()
        try:
            yield item
        finally:
            self._free.put(item)


class _Route:
    """One route at run time: its spool, counters, forwarder, and the pool that processes its instances."""

    def __init__(self, config: Route, spool: RouteSpool, counters: RouteCounters, quarantine: Path) -> None:
        self.config = config
        self.spool = spool
        self.counters = counters
        self.quarantine = quarantine
        self.forwarder: Forwarder | None = None
        self.index = itertools.count()  # unique per received instance: the worker's input index
        self.contexts: _Pool[WorkerContext] | None = None
        self.reidentifiers: _Pool[Reidentifier] | None = None
        self.policy: Policy | None = None


class Gateway:
    """Routes, spool, forwarders, audit and status of one ``gateway.toml`` (a :class:`StoreSink`)."""

    def __init__(self, config: GatewayConfig, key: ProjectKey) -> None:
        self.config = config
        self.key = key
        self.status_file = config.status_file or config.spool / "status.json"
        self._routes: dict[str, _Route] = {}
        self._audit: GatewayAudit | None = None
        self._status: StatusWriter | None = None
        self._lock = threading.Condition()
        self._accepting = False
        self._in_flight = 0
        self._started = ""
        self._spool_lock = SpoolLock(config.spool)

    # -- life cycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare the spool, build every route's pool (a bad key or policy stops here), start the threads."""
        config = self.config
        self._spool_lock.acquire()
        try:
            self._audit = GatewayAudit(config.audit)
        except BaseException:
            self._spool_lock.release()
            raise
        carried = previous_counts(self.status_file)
        try:
            for name, route in config.routes.items():
                spool = RouteSpool(config.spool, name)
                released = spool.prepare()
                if released:
                    _log.info("route %s: %d claims of unfinished instances released", name, released)
                counts = carried.get(name, {})
                counters = RouteCounters(
                    counts.get("forwarded", 0), counts.get("failed", 0), counts.get("quarantined", 0)
                )
                runtime = _Route(route, spool, counters, config.quarantine / name)
                self._build(runtime)
                runtime.forwarder = Forwarder(
                    name, route.destination, spool, counters, self._audit,
                    calling_ae=self._calling_ae(name), forwarding=config.forward, limits=config.limits,
                )
                self._routes[name] = runtime
        except BaseException:
            self._close_routes()
            self._audit.close()
            self._audit = None
            self._spool_lock.release()
            raise
        self._started = _now()
        for runtime in self._routes.values():
            assert runtime.forwarder is not None
            runtime.forwarder.start()
        self._status = StatusWriter(self.status_file, self.status)
        self._status.start()
        with self._lock:
            self._accepting = True
        self._audit.append("gateway-start", routes=sorted(self._routes), pid=os.getpid())

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully: no new stores, in-flight stores finish, forwarders finish their association."""
        with self._lock:
            self._accepting = False
            if not self._lock.wait_for(lambda: self._in_flight == 0, timeout):
                _log.warning("stopping with %d stores still in flight", self._in_flight)
        for runtime in self._routes.values():
            if runtime.forwarder is not None:
                runtime.forwarder.stop(timeout)
        self._close_routes()
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self._audit is not None:
            queued = {name: r.spool.usage().files for name, r in self._routes.items()}
            self._audit.append("gateway-stop", queued=queued)
            self._audit.close()
            self._audit = None
        self._spool_lock.release()

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- the StoreSink protocol --------------------------------------------------------------------------

    def accepting(self, route: str) -> bool:
        """False when stopping, for an unknown route, or when its outbound spool is over a limit."""
        runtime = self._routes.get(route)
        if runtime is None or not self._accepting:
            return False
        usage, limits = runtime.spool.usage(), self.config.limits
        return usage.files < limits.spool_max_files and usage.bytes < limits.spool_max_bytes

    def store(self, route: str, encoded: bytes, caller: str) -> StoreAnswer:
        """Process one received instance through ``route``; answer only once its result is durable."""
        runtime = self._routes.get(route)
        if runtime is None:
            return StoreAnswer(PROCESSING_FAILURE, "unknown-route")
        with self._lock:
            if not self.accepting(route):
                return StoreAnswer(OUT_OF_RESOURCES, "spool-full" if self._accepting else "stopping")
            self._in_flight += 1
        try:
            if isinstance(runtime.config, DeidRoute):
                answer, facts = self._deidentify(runtime, encoded)
            else:
                answer, facts = self._reidentify(runtime, encoded)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._lock.notify_all()
        self._record(runtime, answer, caller, facts)
        return self._audited(answer)

    def _audited(self, answer: StoreAnswer) -> StoreAnswer:
        """``answer`` once its audit event is committed (group commit with concurrent stores).

        An acknowledged instance is in the audit trail even after a ``kill -9``;
        an audit log that cannot be written fails the store (the sender keeps
        its copy; a re-send is answered as a duplicate).
        """
        if self._audit is None:
            return answer
        try:
            self._audit.flush()
        except Exception as error:  # noqa: BLE001 - typed at the audit's edge or not, the store fails
            _log.warning("audit not written: %s", getattr(error, "reference", type(error).__name__))
            return StoreAnswer(PROCESSING_FAILURE, "audit-unwritable")
        return answer

    def audit(self, action: str, **facts: object) -> None:
        """Append an event to the audit log (codes, AE titles, addresses, pseudonyms; no PHI)."""
        if self._audit is not None:
            self._audit.append(action, **facts)

    def status(self) -> dict[str, Any]:
        """Per route: queued, queued_bytes and the counters; the process id, start and update times."""
        routes = {}
        for name, runtime in self._routes.items():
            usage = runtime.spool.usage()
            routes[name] = {"queued": usage.files, "queued_bytes": usage.bytes, **runtime.counters.snapshot()}
        return {"pid": os.getpid(), "started": self._started, "updated": _now(), "routes": routes}

    @property
    def audit_log(self) -> GatewayAudit | None:
        """The audit writer while running (tests flush it)."""
        return self._audit

    # -- routes ------------------------------------------------------------------------------------------

    def _build(self, runtime: _Route) -> None:
        """The route's pool: a worker context (de-identify) or a re-identifier (re-identify) per thread."""
        from dicomcloak.net.routes import build_reidentifier, route_policy

        workers = self.config.limits.workers or os.cpu_count() or 1
        route = runtime.config
        runtime.policy = route_policy(route)
        if isinstance(route, DeidRoute):
            settings = self._worker_settings(route, runtime, workers)
            runtime.contexts = _Pool([self._context(settings, runtime) for _ in range(workers)])
        else:
            assert isinstance(route, ReidRoute)
            items = [build_reidentifier(route, self.key, self.config.key_file) for _ in range(workers)]
            runtime.reidentifiers = _Pool(items)

    def _worker_settings(self, route: DeidRoute, runtime: _Route, workers: int) -> WorkerSettings:
        """As ``deid`` builds them, in the gateway's mode: claims with digests, outputs durable at once."""
        from dicomcloak.batch.worker import WorkerSettings
        from dicomcloak.net.routes import route_pixel_settings, route_seal_settings

        assert runtime.policy is not None
        return WorkerSettings(
            runtime.policy, self.key, route.domain, runtime.spool.outbound, runtime.quarantine,
            claims_dir=runtime.spool.claims,
            seal=route_seal_settings(route, self.key, self.config.key_file),
            pixels=route_pixel_settings(route),
            workers=workers,
            claim_digests=True, commit_each=True, private_output=True,
        )

    @staticmethod
    def _context(settings: WorkerSettings, runtime: _Route) -> WorkerContext:
        """A worker context whose claims are given back when its instance never completes (SpoolClaims)."""
        from dicomcloak.batch.worker import build_context

        context = build_context(settings)
        context.claims = SpoolClaims(runtime.spool.claims)
        return context

    def _close_routes(self) -> None:
        from dicomcloak.net.routes import close_reidentifier

        for runtime in self._routes.values():
            if runtime.contexts is not None:
                for context in runtime.contexts.items:
                    try:
                        context.close()
                    except DicomcloakError as error:
                        _log.warning("route closing: %s", error.reference)
                runtime.contexts = None
            if runtime.reidentifiers is not None:
                for reidentifier in runtime.reidentifiers.items:
                    close_reidentifier(reidentifier)
                runtime.reidentifiers = None

    def _calling_ae(self, route: str) -> str:
        """The AE title the gateway calls out with: its listener's for this route, else ``DICOMCLOAK``."""
        return next((item.ae_title for item in self.config.listeners if item.route == route), "DICOMCLOAK")

    # -- one instance ------------------------------------------------------------------------------------

    def _received(self, runtime: _Route, encoded: bytes) -> tuple[Path, InputItem]:
        path = runtime.spool.receive(encoded)
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")  # the quarantine's folder: received that day
        return path, InputItem(runtime.spool.incoming, day, path.name, None, path)

    def _deidentify(self, runtime: _Route, encoded: bytes) -> tuple[StoreAnswer, dict[str, Any]]:
        from dicomcloak.batch.worker import Status, process_item

        assert runtime.contexts is not None
        path, item = self._received(runtime, encoded)
        try:
            with runtime.contexts.lend() as context:
                result = process_item(item, context, next(runtime.index))
                if result.status is Status.WRITTEN:
                    self._sync(runtime.spool.outbound, result.out_relpath)
        except (DicomcloakError, OSError) as error:
            SpoolClaims.release(path)
            return StoreAnswer(PROCESSING_FAILURE, _reference(error)), {}
        finally:
            runtime.spool.discard_received(path)
        sop = Path(result.out_relpath).stem if result.out_relpath else ""
        if result.status is Status.WRITTEN:
            runtime.spool.added(result.bytes_out)
            assert runtime.forwarder is not None
            runtime.forwarder.wake()
            return StoreAnswer(SUCCESS), {"sop": sop}
        if result.status is Status.DUPLICATE:
            runtime.counters.add("duplicates")
            return StoreAnswer(SUCCESS, "duplicate-instance"), {"sop": sop}
        runtime.counters.add("quarantined")
        return StoreAnswer(REFUSED_QUARANTINED, result.reason), {}

    def _reidentify(self, runtime: _Route, encoded: bytes) -> tuple[StoreAnswer, dict[str, Any]]:
        from dicomcloak.batch.reidentify import restore_data
        from dicomcloak.io.quarantine import quarantine
        from dicomcloak.io.reader import read_input
        from dicomcloak.io.writer import write_atomic

        assert runtime.reidentifiers is not None and runtime.policy is not None
        policy = runtime.policy
        limits = policy.sanitize.limits
        path, item = self._received(runtime, encoded)
        try:
            try:
                with runtime.reidentifiers.lend() as reidentifier:
                    parts, result = restore_data(read_input(item, limits), reidentifier, policy)
            except InputError as error:
                quarantine(item, error, runtime.quarantine, max_bytes=limits.max_quarantine_bytes)
                runtime.counters.add("quarantined")
                return StoreAnswer(REFUSED_QUARANTINED, error.reference), {}
            except (DicomcloakError, OSError) as error:  # SealError among them: fail closed
                return StoreAnswer(PROCESSING_FAILURE, _reference(error)), {}
            except Exception as error:  # noqa: BLE001 - one hostile input must not stop the gateway
                wrapped = ProcessingError(f"unexpected {type(error).__name__}", reference="internal-error")
                quarantine(item, wrapped, runtime.quarantine, max_bytes=limits.max_quarantine_bytes)
                runtime.counters.add("quarantined")
                return StoreAnswer(REFUSED_QUARANTINED, wrapped.reference), {}
            name = hashlib.sha256(str(result.dataset.SOPInstanceUID).encode("ascii", "replace")).hexdigest()
            target = runtime.spool.outbound / f"{name}.dcm"
            waiting = runtime.spool.size_of(target)  # the same instance, received again before it left
            try:
                write_atomic(target, parts, tree=runtime.spool.tree)
            except DicomcloakError as error:
                return StoreAnswer(PROCESSING_FAILURE, _reference(error)), {}
        finally:
            runtime.spool.discard_received(path)
        runtime.spool.added(sum(map(len, parts)), replacing=waiting)
        assert runtime.forwarder is not None
        runtime.forwarder.wake()
        return StoreAnswer(SUCCESS), {"mode": result.mode}

    @staticmethod
    def _sync(outbound: Path, relpath: str) -> None:
        """Make the rename into ``outbound`` durable: sync the file's directory and each new parent."""
        directory = (outbound / relpath).parent
        while True:
            fsync_directory(directory)
            if directory == outbound:
                return
            directory = directory.parent

    def _record(self, runtime: _Route, answer: StoreAnswer, caller: str, facts: dict[str, Any]) -> None:
        """Audit one store (and its quarantine or failure): codes, the caller, pseudonyms only."""
        name = runtime.config.name
        base = {"route": name, "caller": caller, "status": f"0x{answer.status:04X}", **facts}
        if answer.reason:
            base["reason"] = answer.reason
        self.audit("store", **base)
        if answer.status == REFUSED_QUARANTINED:
            self.audit("quarantine", route=name, caller=caller, reason=answer.reason)
        elif answer.status == PROCESSING_FAILURE:
            _log.warning("route %s: processing failure %s", name, answer.reason)


def _reference(error: DicomcloakError | OSError) -> str:
    """The reason code of a failure: our reference, else the OS error's type (no path, no value)."""
    if isinstance(error, DicomcloakError):
        return error.reference
    return f"os-{type(error).__name__}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


"""The gateway's audit trail: its events in the hash-chained audit log (docs/gateway.md, "Audit events").

Every start and stop, stored instance, quarantine and forwarding is an event
of :class:`dicomcloak.audit.AuditLog` (architecture.md decision 7: codes,
AE titles, addresses, counts and pseudonyms; never an original value, and for
re-identifying routes never the restored UIDs). Appending one event is one
database transaction (a commit, a sync of the journal): per instance that
would cost more than the instance itself, so events are queued and a
background thread appends whatever has queued in one transaction, a fraction
of a second later. :meth:`GatewayAudit.flush` waits until everything appended
so far is committed; :meth:`GatewayAudit.close` flushes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dicomcloak.audit import AuditLog
from dicomcloak.audit.db import make_engine
from dicomcloak.net.stores import make_sqlite_parent

__all__ = ["GatewayAudit"]


class GatewayAudit:
    """A thread-safe, batching writer of gateway events into the audit log at ``url``."""

    def __init__(self, url: str, *, interval: float = 0.2) -> None:
        make_sqlite_parent(url)
        self._engine = make_engine(url)
        self.log = AuditLog(self._engine)
        self._interval = interval
        self._queue: list[tuple[str, dict[str, Any]]] = []
        self._condition = threading.Condition()
        self._written = 0  # events committed
        self._queued = 0  # events appended
        self._closed = False
        self._flushing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dicomcloak-audit", daemon=True)
        self._thread.start()

    def append(self, action: str, **facts: Any) -> None:
        """Queue an event; it is committed within ``interval`` seconds (codes and pseudonyms only)."""
        with self._condition:
            self._queue.append((action, facts))
            self._queued += 1
            self._condition.notify_all()

    def flush(self) -> None:
        """Wait until every event appended so far is committed; raise the writer's failure, if any."""
        with self._condition:
            target = self._queued
            self._flushing = True
            self._condition.notify_all()
            while self._written < target and self._error is None:
                self._condition.wait(0.5)
            if self._error is not None:
                raise self._error

    def close(self) -> None:
        """Flush, stop the writer thread and release the database."""
        try:
            self.flush()
        finally:
            with self._condition:
                self._closed = True
                self._condition.notify_all()
            self._thread.join()
            self._engine.dispose()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._closed:
                    self._condition.wait()
                if not self._queue and self._closed:
                    return
                # Let a burst of stores gather into one transaction, unless someone waits for it.
                deadline = time.monotonic() + self._interval
                while not self._closed and not self._flushing and (left := deadline - time.monotonic()) > 0:
                    self._condition.wait(left)
                self._flushing = False
                batch, self._queue = self._queue, []
            try:
                with self._engine.begin() as conn:
                    for action, facts in batch:
                        self.log.append_in(conn, action, facts)
            except BaseException as error:  # noqa: BLE001 - handed to the next flush, never lost silently
                with self._condition:
                    self._error = error
                    self._condition.notify_all()
                return
            with self._condition:
                self._written += len(batch)
                self._condition.notify_all()

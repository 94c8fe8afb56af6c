"""Draining a route's spool to its destination by C-STORE (PS3.4 Annex B; docs/gateway.md, "Forwarding").

One thread per route. It sends the oldest pending files, up to
``forward.per_association`` per association, each in a presentation context
made from its own SOP Class and Transfer Syntax (the file is sent as written,
never re-encoded). A file leaves the spool only once the destination answered
success or a warning (PS3.4 B.2.3: 0xB000, 0xB006, 0xB007), its removal synced.

* **Refused** (0xA7xx, out of resources) or no association (the destination
  down, rejected, the connection lost): the file stays; retried after a
  back-off that doubles from ``retry_initial`` to ``retry_max``, with jitter so
  restarted gateways do not call in step.
* **Error** (0xCxxx, 0xA9xx and other failures): retried :data:`MAX_ATTEMPTS`
  times, then moved to ``failed/`` and audited with the status.

**In doubt.** A file is in doubt from the moment it is sent until it is
removed: a crash (``kill -9``, power) or a lost association in between leaves
the destination holding it, perhaps, and the spool too. The spool notes the
file being sent (:meth:`~dicomcloak.net.spool.RouteSpool.sending`); before
sending again the forwarder asks the destination by C-FIND (Study Root, IMAGE
level, its SOP Instance UID): found, it is removed as delivered
(``confirmed_in_doubt``); not found, it is sent; a destination that cannot
answer C-FIND gets it again (``resent_in_doubt``, audited): DIMSE has no
exactly-once delivery, and a second C-STORE of the same SOP Instance is the
same instance to an archive (PS3.4 B.4.1).

The thread sleeps until :meth:`Forwarder.wake` (a store spooled something) or
its back-off ends; it never polls. At stop it finishes the current association;
the rest waits in the spool for the next start.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from dicomcloak.net.config import Forwarding, Limits, Peer
from dicomcloak.net.quiet import quiet_pynetdicom
from dicomcloak.net.tcp import no_delay
from dicomcloak.net.tls import client_context

if TYPE_CHECKING:
    from pynetdicom.association import Association

    from dicomcloak.net.events import GatewayAudit
    from dicomcloak.net.spool import RouteSpool
    from dicomcloak.net.status import RouteCounters

__all__ = ["MAX_ATTEMPTS", "Forwarder", "is_success"]

#: Times a file the destination answers with an error status is sent before it is moved to ``failed/``.
MAX_ATTEMPTS = 3
_WARNINGS = frozenset({0xB000, 0xB006, 0xB007})
#: The keys of an in-doubt file's C-FIND: the Study Root hierarchy down to the instance (PS3.4 C.6.2).
_PENDING = frozenset({0xFF00, 0xFF01})
_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
_MAX_CONTEXTS = 128  # presentation contexts in one association request (PS3.8 9.3.2.2: odd IDs 1-255)
_log = logging.getLogger(__name__)


def is_success(status: int) -> bool:
    """Success or one of C-STORE's warnings (coercion, elements discarded, data set mismatch): delivered."""
    return status == 0x0000 or status in _WARNINGS


def _is_refusal(status: int) -> bool:
    """Out of resources (PS3.4 Table B.2-1): the destination asks to be called again later."""
    return 0xA700 <= status <= 0xA7FF


def _closed(assoc: Association, raw: socket.socket | None, timeout: float) -> None:
    """Wait for the association's thread to end, then make sure its socket is closed.

    pynetdicom 3.0 shuts a socket down and closes it in one step, and skips the
    close when the shutdown fails (the peer closed the connection first): that
    socket would stay open until the collector finds it.
    """
    assoc.join(timeout)
    if raw is not None:
        raw.close()


class Forwarder:
    """Sends one route's spool to its destination on a thread of its own."""

    def __init__(
        self,
        route: str,
        destination: Peer,
        spool: RouteSpool,
        counters: RouteCounters,
        audit: GatewayAudit,
        *,
        calling_ae: str,
        forwarding: Forwarding,
        limits: Limits,
    ) -> None:
        self.route = route
        self.destination = destination
        self._spool = spool
        self._counters = counters
        self._audit = audit
        self._calling_ae = calling_ae
        self._forwarding = forwarding
        self._limits = limits
        self._condition = threading.Condition()
        self._work = True  # look at the spool at start: a restart delivers what was left
        self._stopping = False
        self._attempts: dict[Path, int] = {}
        self._tls = None if destination.tls is None else client_context(destination.tls)
        self._thread = threading.Thread(target=self._run, name=f"dicomcloak-forward-{route}", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def wake(self) -> None:
        """Something was spooled: look at the spool now (unless backing off)."""
        with self._condition:
            self._work = True
            self._condition.notify_all()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the current association, then stop (the rest stays in the spool)."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.0
        while True:
            with self._condition:
                if self._stopping:
                    return
                self._work = False
            try:
                settled = self._settle_in_doubt()
            except Exception as error:  # noqa: BLE001 - a bug or an unwritable audit must not end the thread
                _log.warning("settling on route %s failed: %s", self.route, type(error).__name__)
                settled = False
            if not settled:
                delay = self._next_delay(delay)
                self._sleep(delay * random.uniform(0.5, 1.0), wakeable=False)  # jitter, not a secret
                continue
            files = self._spool.pending(self._forwarding.per_association)
            if not files:
                self._sleep(None, wakeable=True)
                continue
            try:
                delivered = self._send(files)
            except Exception as error:  # noqa: BLE001 - a bug must not end the thread; the files stay
                _log.warning("forwarding on route %s failed: %s", self.route, type(error).__name__)
                self._counters.destination(False, "internal-error")
                delivered = False
            if delivered:
                delay = 0.0
                continue
            delay = self._next_delay(delay)
            self._sleep(delay * random.uniform(0.5, 1.0), wakeable=False)  # jitter, not a secret

    def _settle_in_doubt(self) -> bool:
        """Settle the file a crash or a lost association left in doubt; False: the destination is down."""
        path = self._spool.in_doubt()
        if path is None:
            return True
        if not self._reachable():
            self._counters.destination(False, "association-failed")
            return False
        held = self._destination_holds(path)
        if held:
            self._spool.remove(path)
            self._counters.add("forwarded")
            self._counters.add("confirmed_in_doubt")
            self._audit.append("forward-confirmed", route=self.route, destination=self.destination.ae_title)
        elif held is None:
            self._counters.add("resent_in_doubt")
            self._audit.append("forward-in-doubt", route=self.route, destination=self.destination.ae_title)
        if held is not False:
            self._audit.flush()  # rare, and the trail of a possible second delivery must survive a crash
        self._spool.settled()
        return True

    def _destination_holds(self, path: Path) -> bool | None:
        """Whether the destination holds the instance in ``path`` (C-FIND, IMAGE level); None: cannot say."""
        from pydicom import dcmread
        from pydicom.dataset import Dataset

        from dicomcloak.errors import DicomcloakError
        from dicomcloak.net.remote import FIND_MODELS, remote_find

        try:
            header = dcmread(path, stop_before_pixels=True, specific_tags=list(_KEYS))
        except Exception:  # noqa: BLE001 - unreadable: sent again, where the send path will judge it
            return None
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "IMAGE"
        for keyword in _KEYS:
            setattr(identifier, keyword, header.get(keyword, ""))
        wanted = str(identifier.SOPInstanceUID)
        try:
            study_root = FIND_MODELS[1]
            answers = remote_find(
                self.destination, self._calling_ae, identifier, study_root, self._limits.dimse_timeout
            )
            found = [answer for status, answer in answers if answer is not None and status in _PENDING]
        except (DicomcloakError, OSError, RuntimeError, ValueError):
            return None  # no C-FIND there (storescp), or it failed: the destination cannot say
        return any(str(answer.get("SOPInstanceUID", "")) == wanted for answer in found)

    def _next_delay(self, delay: float) -> float:
        if delay <= 0:
            return self._forwarding.retry_initial
        return min(delay * 2, self._forwarding.retry_max)

    def _sleep(self, timeout: float | None, *, wakeable: bool) -> None:
        """Wait for stop, ``timeout`` seconds, or (``wakeable``) a wake-up."""
        with self._condition:
            self._condition.wait_for(lambda: self._stopping or (wakeable and self._work), timeout)

    def _send(self, files: list[Path]) -> bool:
        """One association; True when every file of it was delivered (no back-off needed)."""
        from pydicom.filereader import read_file_meta_info
        from pynetdicom import AE

        quiet_pynetdicom()

        metas: list[tuple[Path, str, str]] = []
        for path in files:
            try:
                meta = read_file_meta_info(path)
                metas.append((path, str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)))
            except Exception:  # noqa: BLE001 - not a file we can send (damaged on disk): failed, kept aside
                self._failed(path, "unreadable-spool-file")
        if not metas:
            return True
        ae = AE(ae_title=self._calling_ae)
        ae.acse_timeout = self._limits.acse_timeout
        ae.dimse_timeout = self._limits.dimse_timeout
        ae.network_timeout = self._limits.network_timeout
        ae.maximum_pdu_size = self._limits.max_pdu
        pairs = list(dict.fromkeys((sop, syntax) for _, sop, syntax in metas))[:_MAX_CONTEXTS]
        for sop, syntax in pairs:
            ae.add_requested_context(sop, syntax)
        peer = self.destination
        if self._counters.destination_up is not True and not self._reachable():
            self._counters.destination(False, "association-failed")
            return False
        tls_args = None if self._tls is None else (self._tls, peer.host)
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, tls_args=tls_args)
        raw = getattr(getattr(assoc.dul, "socket", None), "socket", None)
        if raw is not None:
            no_delay(raw)
        try:
            if not assoc.is_established:
                reason = "association-rejected" if assoc.is_rejected else "association-failed"
                self._counters.destination(False, reason)
                return False
            self._counters.destination(True)
            sent, clean = self._send_files(assoc, metas)
        finally:
            if assoc.is_established:
                assoc.release()
            _closed(assoc, raw, self._limits.network_timeout)
        if sent:
            self._audit.append("forward", route=self.route, count=sent, destination=peer.ae_title)
            self._audit.flush()  # one commit per association, off the C-STORE path: survives a crash
        return clean

    def _reachable(self) -> bool:
        """Whether the destination accepts TCP connections, tried while it is believed down.

        pynetdicom leaves the socket of a refused connection open until the
        collector finds it; a destination that is down would leak one per retry.
        """
        peer = self.destination
        try:
            with socket.create_connection((peer.host, peer.port), timeout=self._limits.acse_timeout):
                return True
        except OSError:
            return False

    def _send_files(self, assoc: Association, metas: list[tuple[Path, str, str]]) -> tuple[int, bool]:
        """Send each file; (files delivered, whether nothing needs a retry)."""
        sent = 0
        for path, _, _ in metas:
            self._spool.sending(path)  # in doubt until removed, or refused
            try:
                answer = assoc.send_c_store(path)
            except ValueError:  # no accepted presentation context for its SOP Class and Transfer Syntax
                self._spool.settled()
                self._error(path, "no-presentation-context")
                continue
            except (OSError, RuntimeError):
                self._counters.destination(False, "association-lost")
                return sent, False
            status = getattr(answer, "Status", None)
            if status is None:  # aborted, timed out, or an invalid answer: the association is gone
                self._counters.destination(False, "association-lost")
                return sent, False
            if is_success(int(status)):
                self._attempts.pop(path, None)
                self._spool.remove(path)
                self._spool.settled()
                self._counters.add("forwarded")
                sent += 1
                continue
            self._spool.settled()  # answered, not stored: not in doubt
            if _is_refusal(int(status)):
                self._counters.destination(True, f"status-0x{int(status):04X}")
                return sent, False
            self._error(path, f"status-0x{int(status):04X}")
        return sent, not any(path in self._attempts for path, _, _ in metas)

    def _error(self, path: Path, reason: str) -> None:
        """An error answer: counted against the file; moved to ``failed/`` after :data:`MAX_ATTEMPTS`."""
        self._counters.destination(True, reason)
        attempts = self._attempts.get(path, 0) + 1
        if attempts < MAX_ATTEMPTS:
            self._attempts[path] = attempts
            return
        self._attempts.pop(path, None)
        self._failed(path, reason)

    def _failed(self, path: Path, reason: str) -> None:
        try:
            self._spool.fail(path)
        except OSError:
            return  # gone meanwhile
        self._counters.add("failed")
        self._counters.destination(self._counters.destination_up is True, reason)
        self._audit.append(
            "forward-failed", route=self.route, destination=self.destination.ae_title, status=reason
        )

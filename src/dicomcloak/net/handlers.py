"""The pynetdicom event handlers of one listener: admission, C-ECHO, C-STORE, and the audit of each.

Admission happens on ``EVT_REQUESTED``, the one moment between the arrival of
the A-ASSOCIATE-RQ and pynetdicom's own negotiation: an A-ASSOCIATE-RJ sent
there stops the negotiation (``Association.run_reactor`` checks
``is_rejected``), so a refused caller never reaches a presentation context,
let alone a DIMSE message. pynetdicom swallows exceptions raised by
notification handlers, which would let the association go on: the handler
therefore refuses on any error of its own, and every DIMSE handler checks
again that its association was admitted (fail closed twice).

Every event goes to the sink's audit log and to the ``dicomcloak.net``
logger as reason codes, AE titles and addresses: never an element value.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from dicomcloak.net.config import Listener
from dicomcloak.net.security import AssociationRequest, Decision, Gate, Identity, Refusal
from dicomcloak.net.sink import OUT_OF_RESOURCES, PROCESSING_FAILURE, StoreAnswer, StoreSink

if TYPE_CHECKING:
    from pynetdicom.association import Association
    from pynetdicom.events import Event

__all__ = ["NOT_AUTHORIZED", "NO_STORAGE", "Door", "EventHandler", "report"]

#: ``(event, handler)`` as ``AE.start_server(evt_handlers=...)`` takes it.
EventHandler = tuple[Any, Callable[..., Any]]

NOT_AUTHORIZED = 0x0124  # Refused: Not authorized (PS3.7 C.4.2.1.4, general status)
NO_STORAGE = 0x0122  # Refused: SOP Class not supported (PS3.7 C.4.2.1.4): this listener stores nothing

_LOG = logging.getLogger("dicomcloak.net")
_GATE_ERROR = Refusal(0x02, 0x01, 0x01, "gate-error")  # transient, service user, no reason given


def report(sink: StoreSink, action: str, **facts: object) -> None:
    """One event to the audit log and to the structured log (``extra={"facts": ...}``)."""
    _LOG.info(action, extra={"facts": facts})
    sink.audit(action, **facts)


class Door:
    """Admits associations to one listener and serves what the admitted ones ask."""

    def __init__(self, listener: Listener, sink: StoreSink, gate: Gate) -> None:
        self.listener = listener
        self._sink = sink
        self._gate = gate
        self._admitted: weakref.WeakSet[Association] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._in_flight = 0
        self.draining = False  # set on shutdown: new C-STOREs answer 0xA700, in-flight ones finish

    @property
    def in_flight(self) -> int:
        """C-STOREs being processed now."""
        with self._lock:
            return self._in_flight

    def admitted(self, assoc: Association) -> bool:
        """Whether the gate let ``assoc`` in."""
        return assoc in self._admitted

    def handlers(self) -> list[EventHandler]:
        """``evt_handlers`` for ``AE.start_server``."""
        from pynetdicom import evt

        return [
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_USER_ID, self.on_user_id),
            (evt.EVT_ACCEPTED, self.on_accepted),
            (evt.EVT_ABORTED, self.on_aborted),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
        ]

    def _facts(self, assoc: Association, **more: object) -> dict[str, object]:
        primitive = assoc.requestor.primitive
        calling = primitive.calling_ae_title if primitive is not None else ""
        called = primitive.called_ae_title if primitive is not None else ""
        address = assoc.requestor.address_info.address if assoc.requestor.address_info else ""
        return {
            "listener": self.listener.name,
            "calling_ae": calling.strip(),
            "called_ae": called.strip(),
            "address": address,
            **more,
        }

    def on_requested(self, event: Event) -> None:
        """Decide on the A-ASSOCIATE-RQ before pynetdicom negotiates it (see the module docstring)."""
        assoc = event.assoc
        try:
            decision = self._gate.admit(_request_of(assoc))
        except Exception as error:  # noqa: BLE001 - fail closed, reported by type only
            _LOG.error("gate-error", extra={"facts": {"error": type(error).__name__}})
            decision = Decision(_GATE_ERROR)
        if decision.refusal is None:
            self._admitted.add(assoc)
            if decision.user:
                report(self._sink, "association-authenticated", **self._facts(assoc, user=decision.user))
            return
        self._refuse(assoc, decision)

    def _refuse(self, assoc: Association, decision: Decision) -> None:
        refusal = decision.refusal
        assert refusal is not None
        facts = self._facts(
            assoc,
            reason=refusal.reason,
            result=refusal.result,
            source=refusal.source,
            diagnostic=refusal.diagnostic,
        )
        if decision.lockout_started:
            report(self._sink, "address-locked-out", **self._facts(assoc))
        if refusal.reason == "locked-out":
            _LOG.info("association-rejected", extra={"facts": facts})  # audited once, when the lockout began
        else:
            report(self._sink, "association-rejected", **facts)
        if assoc.dul.state_machine.current_state == "Sta3":  # else the peer broke protocol: already aborted
            assoc.acse.send_reject(refusal.result, refusal.source, refusal.diagnostic)
        assoc.kill()  # waits until the A-ASSOCIATE-RJ is out and the transport closed (PS3.8 9.2, Sta13)

    def on_user_id(self, event: Event, *args: object) -> tuple[bool, bytes | None]:
        """PS3.7 D.3.3.7: already verified on EVT_REQUESTED; bound so pynetdicom never accepts by default."""
        return self.admitted(event.assoc), None

    def on_accepted(self, event: Event) -> None:
        """Audit an association once pynetdicom has sent its A-ASSOCIATE-AC."""
        contexts = len(event.assoc.accepted_contexts)
        report(self._sink, "association-accepted", **self._facts(event.assoc, contexts=contexts))

    def on_aborted(self, event: Event) -> None:
        """Audit an abort (by the peer, or by us on idle timeout or shutdown)."""
        report(self._sink, "association-aborted", **self._facts(event.assoc))

    def on_echo(self, event: Event) -> int:
        """C-ECHO (PS3.7 9.1.5): success to an admitted association."""
        return 0x0000 if self.admitted(event.assoc) else NOT_AUTHORIZED

    def on_store(self, event: Event) -> Dataset:
        """C-STORE (PS3.4 B.2.3): answered only once the sink made the instance durable, or refused."""
        assoc = event.assoc
        answer = self._answer(event)
        facts = self._facts(assoc, status=f"0x{answer.status:04X}", reason=answer.reason)
        report(self._sink, "c-store", **facts)
        status = Dataset()
        status.Status = answer.status
        if answer.reason:
            status.ErrorComment = answer.reason[:64]  # LO: a reason code, never a value
        return status

    def _answer(self, event: Event) -> StoreAnswer:
        route = self.listener.route
        if not self.admitted(event.assoc):
            return StoreAnswer(NOT_AUTHORIZED, "not-admitted")
        if route is None:
            return StoreAnswer(NO_STORAGE, "no-route")
        if self.draining:
            return StoreAnswer(OUT_OF_RESOURCES, "stopping")
        if not self._sink.accepting(route):
            return StoreAnswer(OUT_OF_RESOURCES, "spool-full")
        with self._lock:
            self._in_flight += 1
        try:
            encoded = event.encoded_dataset(include_meta=True)
            return self._sink.store(route, encoded, str(self._facts(event.assoc)["calling_ae"]))
        except Exception as error:  # noqa: BLE001 - the sender gets a failure; the type only is logged
            _LOG.error("store-error", extra={"facts": {"error": type(error).__name__}})
            return StoreAnswer(PROCESSING_FAILURE, "internal-error")
        finally:
            with self._lock:
                self._in_flight -= 1

    def guard(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap an extra (Q/R) handler so it refuses associations the gate did not admit.

        pynetdicom answers a handler's exception with the service's failure
        status (PS3.4 C.4: 0xC311, 0xC411, 0xC511, ...).
        """

        def guarded(event: Event, *args: Any) -> Any:
            if not self.admitted(event.assoc):
                raise PermissionError("association not admitted")
            return handler(event, *args)

        return guarded


def _request_of(assoc: Association) -> AssociationRequest:
    """The gate's view of an A-ASSOCIATE-RQ (PS3.8 9.3.2) and of the listener's load."""
    primitive = assoc.requestor.primitive
    item = assoc.requestor.user_identity
    identity = None
    if item is not None:
        kind = int(item.user_identity_type or 0)
        identity = Identity(kind, item.primary_field or b"", item.secondary_field or b"")
    active = sum(1 for other in assoc.ae.active_associations if other.is_acceptor)
    address = assoc.requestor.address_info.address if assoc.requestor.address_info else ""
    calling, called = (primitive.calling_ae_title, primitive.called_ae_title) if primitive else ("", "")
    return AssociationRequest(calling, called, address, identity, active)

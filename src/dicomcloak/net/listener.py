"""The gateway's DIMSE listeners: one pynetdicom AE server per ``[[listener]]`` (docs/gateway.md).

Each listener accepts C-ECHO, and C-STORE into its route; the security of
who may associate lives in :mod:`dicomcloak.net.security` and
:mod:`dicomcloak.net.handlers`, the per-instance work behind the
:class:`~dicomcloak.net.sink.StoreSink`.

Back-pressure is applied twice (issue 15): a new association to a listener
whose route is over its spool limits is refused transiently (A-ASSOCIATE-RJ,
reason 2 "local-limit-exceeded", PS3.8 9.3.4), so a sender backs off before
sending anything; an association already open when the spool fills up gets
0xA700 "Refused: Out of resources" (PS3.4 B.2.3) for each further C-STORE,
which senders treat as "retry later".

TLS handshakes (PS3.15 B.9) run in the association's own thread with the
ACSE timeout, not in pynetdicom's accept loop, where one silent client would
stall every other caller.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import AE
from pynetdicom.transport import ThreadedAssociationServer

from dicomcloak.errors import ConfigError
from dicomcloak.net.config import GatewayConfig, Limits, Listener
from dicomcloak.net.contexts import listener_contexts
from dicomcloak.net.handlers import Door, report
from dicomcloak.net.identity import authenticator_for
from dicomcloak.net.quiet import quiet_pynetdicom
from dicomcloak.net.security import Gate, Lockout
from dicomcloak.net.sink import StoreSink
from dicomcloak.net.tcp import no_delay
from dicomcloak.net.tls import server_context

__all__ = ["ExtraHandlers", "Listeners", "start_listeners"]

#: Handlers a listener binds besides its own (C-FIND, C-MOVE, C-GET from :mod:`dicomcloak.net.qr`).
ExtraHandlers = Callable[[Listener], Sequence[tuple[Any, Callable[..., Any]]]]

_LOG = logging.getLogger("dicomcloak.net")


class _Socket(socket.socket):
    """A connection whose ``shutdown`` never raises (see :class:`~dicomcloak.net.tls.ClosingSSLSocket`)."""

    def shutdown(self, how: int) -> None:
        """Shut down, ignoring a peer that is already gone."""
        with contextlib.suppress(OSError):
            super().shutdown(how)


class _Server(ThreadedAssociationServer):
    """pynetdicom's server, with the TLS handshake moved into the request's thread (module docstring)."""

    ae: _ListenerAE

    def get_request(self) -> tuple[Any, Any]:
        """Accept the connection only; :meth:`process_request_thread` wraps it."""
        accepted, address = self.socket.accept()  # type: ignore[union-attr]
        connection = _Socket(accepted.family, accepted.type, accepted.proto, fileno=accepted.detach())
        no_delay(connection)
        return connection, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Handshake (bounded by the ACSE timeout), then run the association."""
        context = self.ssl_context
        if context is not None:
            request = self._handshake(context, request, client_address)
            if request is None:
                return
        super().process_request_thread(request, client_address)

    def _handshake(self, context: ssl.SSLContext, request: Any, client_address: Any) -> ssl.SSLSocket | None:
        request.settimeout(self.ae.acse_timeout)
        try:
            wrapped = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            reason = getattr(error, "reason", None) or type(error).__name__
            self.ae.door_report("tls-refused", address=str(client_address[0]), reason=str(reason))
            request.close()
            return None
        wrapped.settimeout(None)
        return wrapped


class _ListenerAE(AE):
    """An AE whose servers are :class:`_Server` and who can report TLS refusals."""

    def __init__(self, ae_title: str, door_report: Callable[..., None]) -> None:
        super().__init__(ae_title=ae_title)
        self.door_report = door_report

    def make_server(self, address: Any, *args: Any, **kwargs: Any) -> Any:
        """pynetdicom's server, of our class."""
        kwargs["server_class"] = _Server
        return super().make_server(address, *args, **kwargs)


@dataclass
class _Running:
    listener: Listener
    ae: _ListenerAE
    server: ThreadedAssociationServer
    door: Door


@dataclass
class Listeners:
    """The running listeners: their bound ports (by listener name) and a graceful :meth:`stop`."""

    running: list[_Running] = field(default_factory=list)

    @property
    def ports(self) -> dict[str, int]:
        """The port each listener is bound to (useful with ``port = 0``)."""
        return {r.listener.name: int(r.server.server_address[1]) for r in self.running}

    @property
    def in_flight(self) -> int:
        """C-STOREs being processed now, over all listeners."""
        return sum(r.door.in_flight for r in self.running)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, let in-flight C-STOREs finish (up to ``timeout`` s), then close every association.

        New C-STOREs on open associations answer 0xA700 meanwhile, so no
        sender is cut off in the middle of an instance it was told is safe.
        """
        for running in self.running:
            running.door.draining = True
        # No new connections (pynetdicom closes the socket too); each waits out a 0.5 s poll, so all at once.
        closing = [threading.Thread(target=running.server.shutdown) for running in self.running]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join()
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        for running in self.running:
            for assoc in running.ae.active_associations:
                assoc.abort()
        self.running.clear()


def start_listeners(
    config: GatewayConfig, sink: StoreSink, extra_handlers: ExtraHandlers | None = None
) -> Listeners:
    """Start one server per ``config.listeners`` entry (non-blocking); stop them with the handle's ``stop``.

    ``extra_handlers(listener)`` gives the Q/R handlers of a listener with a
    ``query`` route; each is guarded like the listener's own.
    """
    quiet_pynetdicom()
    lockout = Lockout(config.limits.lockout_failures, config.limits.lockout_seconds)
    started = Listeners()
    try:
        for listener in config.listeners:
            started.running.append(_start_one(listener, config.limits, sink, lockout, extra_handlers))
    except BaseException:
        started.stop(timeout=0)
        raise
    for running in started.running:
        port = int(running.server.server_address[1])
        report(
            sink,
            "listener-started",
            listener=running.listener.name,
            ae_title=running.listener.ae_title,
            port=port,
            tls=running.listener.tls is not None,
        )
    return started


def _start_one(
    listener: Listener, limits: Limits, sink: StoreSink, lockout: Lockout, extra: ExtraHandlers | None
) -> _Running:
    route = listener.route
    gate = Gate(
        listener,
        limits,
        authenticator_for(listener.identity),
        lambda: route is None or sink.accepting(route),
        lockout,
    )
    door = Door(listener, sink, gate)
    ae = _configured_ae(
        listener, limits, lambda action, **facts: report(sink, action, listener=listener.name, **facts)
    )
    handlers = door.handlers()
    if extra is not None and listener.query is not None:
        handlers += [(event, door.guard(handler)) for event, handler in extra(listener)]
    ssl_context = server_context(listener.tls) if listener.tls is not None else None
    try:
        server = ae.start_server(
            (listener.host, listener.port),
            block=False,
            ssl_context=ssl_context,
            evt_handlers=handlers,  # type: ignore[arg-type]
            contexts=listener_contexts(listener),
        )
    except OSError as error:
        raise ConfigError(
            f"listener {listener.name!r} cannot listen on {listener.host}:{listener.port} ({error.strerror})",
            reference="listener-bind-failed",
            hint="another process holds the port, or the address is not this host's: change host or port",
        ) from None
    assert server is not None  # block=False always returns the server
    return _Running(listener, ae, server, door)


def _configured_ae(listener: Listener, limits: Limits, door_report: Callable[..., None]) -> _ListenerAE:
    """An AE with the gateway's limits (PS3.8 D.1 maximum PDU length; ACSE, DIMSE and idle timeouts)."""
    ae = _ListenerAE(listener.ae_title, door_report)
    ae.maximum_associations = limits.max_associations
    ae.maximum_pdu_size = limits.max_pdu
    ae.acse_timeout = limits.acse_timeout
    ae.dimse_timeout = limits.dimse_timeout
    ae.network_timeout = limits.network_timeout
    return ae

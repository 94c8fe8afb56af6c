"""``dicomcloak serve``: run the gateway and its listeners until SIGTERM or SIGINT, then stop gracefully.

Start-up: the gateway (spool, forwarders) first, then the listeners, then a
``{"event": "ready", ...}`` line on stdout with the bound ports, for tests
and for whatever supervises the process. Shutdown on SIGTERM (systemd's
stop) or SIGINT: the listeners stop taking associations and answer further
C-STOREs with 0xA700 while the ones in flight finish (each is durable in the
spool or quarantined before it is answered), then the gateway stops its
forwarders; what they had not sent stays in the spool for the next start.

Logs: one JSON object per line on stderr (the ``dicomcloak.net`` logger and
pynetdicom's warnings), reason codes, AE titles and addresses only
(architecture.md decision 7).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from dicomcloak.net.config import GatewayConfig, Listener
from dicomcloak.net.identity import authenticator_for
from dicomcloak.net.listener import ExtraHandlers, start_listeners
from dicomcloak.net.sink import StoreSink
from dicomcloak.net.tls import server_context

if TYPE_CHECKING:
    from dicomcloak.keys import ProjectKey

__all__ = ["GatewayService", "JsonLines", "check", "run"]


class GatewayService(StoreSink, Protocol):
    """What :func:`run` needs of the gateway (:class:`dicomcloak.net.gateway.Gateway`)."""

    def start(self) -> None:
        """Open the spool and start the forwarders."""

    def stop(self, timeout: float) -> None:
        """Stop the forwarders (work not sent stays in the spool)."""

    def status(self) -> dict[str, Any]:
        """Per-route counts (also written to the status file)."""


GatewayFactory = Callable[[GatewayConfig, "ProjectKey"], GatewayService]


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, event, and the record's ``facts`` (codes, never values)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        facts = getattr(record, "facts", None)
        if isinstance(facts, dict):
            line.update({key: value for key, value in facts.items() if key not in line})
        return json.dumps(line, default=str)


def check(config: GatewayConfig, key: ProjectKey | None = None) -> None:
    """Load every listener's and route's secrets, certificates and policies as :func:`run` would.

    Nothing listens and no database is opened: with ``key``, each route's
    policy file, pixel back-end, sealing certificates and keys, owner key and
    key ring are read and checked (``dicomcloak serve --check``).

    Raises
    ------
    ConfigError, KeyError_
        What :func:`run` would fail on at start.
    """
    for listener in config.listeners:
        authenticator_for(listener.identity)
        if listener.tls is not None:
            server_context(listener.tls)
    if key is not None:
        _check_routes(config, key)


def _check_routes(config: GatewayConfig, key: ProjectKey) -> None:
    from dicomcloak.net.config import DeidRoute
    from dicomcloak.net.routes import (
        build_reidentifier,
        project_keyring,
        route_pixel_settings,
        route_policy,
        route_seal_settings,
    )

    for route in config.routes.values():
        route_policy(route)
        if isinstance(route, DeidRoute):
            route_pixel_settings(route)
            route_seal_settings(route, key, config.key_file)
        elif route.vault is not None:
            project_keyring(key, config.key_file)
        else:
            build_reidentifier(route, key, config.key_file)  # embedded: keys only, no database


def run(config: GatewayConfig, key: ProjectKey, *, gateway_factory: GatewayFactory | None = None) -> int:
    """Serve until SIGTERM or SIGINT; 0 after a graceful stop (see the module docstring)."""
    stop = threading.Event()
    with _json_logs(), _signals(stop):
        gateway = (gateway_factory or _default_gateway)(config, key)
        gateway.start()
        try:
            listeners = start_listeners(config, gateway, _query_handlers(config, gateway, key))
        except BaseException:
            gateway.stop(timeout=config.limits.dimse_timeout)
            raise
        print(json.dumps({"event": "ready", "ports": listeners.ports}), flush=True)
        stop.wait()
        logging.getLogger("dicomcloak.net").info(
            "stopping", extra={"facts": {"in_flight": listeners.in_flight}}
        )
        listeners.stop(timeout=config.limits.dimse_timeout)
        gateway.stop(timeout=config.limits.dimse_timeout)
        logging.getLogger("dicomcloak.net").info("stopped")
    return 0


def _default_gateway(config: GatewayConfig, key: ProjectKey) -> GatewayService:
    from dicomcloak.net.gateway import Gateway  # type: ignore[import-not-found,unused-ignore]

    gateway: GatewayService = Gateway(config, key)
    return gateway


def _query_handlers(config: GatewayConfig, gateway: GatewayService, key: ProjectKey) -> ExtraHandlers | None:
    """C-FIND, C-MOVE and C-GET handlers for each listener with a ``query`` (net.qr), built once per query."""
    if not any(listener.query for listener in config.listeners):
        return None
    from dicomcloak.net.qr import query_handlers
    from dicomcloak.net.routes import build_query_service

    built: dict[tuple[str, str], Any] = {}

    def handlers(listener: Listener) -> Any:
        assert listener.query is not None  # the listener asks only when it has a query
        index = (listener.query, listener.ae_title)
        if index not in built:
            service = build_query_service(config, listener.query, key, listener.ae_title, gateway.audit)
            built[index] = query_handlers(service)
        return built[index]

    return handlers


@contextmanager
def _json_logs() -> Iterator[None]:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    loggers = [logging.getLogger("dicomcloak.net"), logging.getLogger("pynetdicom")]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger, level in zip(loggers, (logging.INFO, logging.WARNING), strict=True):
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


@contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    def on_signal(number: int, frame: FrameType | None) -> None:
        del frame
        logging.getLogger("dicomcloak.net").info(
            "signal", extra={"facts": {"signal": signal.Signals(number).name}}
        )
        stop.set()

    previous = {number: signal.signal(number, on_signal) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)

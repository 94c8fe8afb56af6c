"""DIMSE test support: a directory sink behind a listener, and a pynetdicom client that can be told anything.

:class:`DirectorySink` is a real C-STORE target (it writes each instance it
is given and counts the calls), not a stand-in for a peer: tests of the
listener use it where the gateway would be. :func:`associate` is a real
pynetdicom requestor that can call from another loopback address, with any
AE titles, User Identity item and TLS context.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomcloak.io.writer import write_atomic
from dicomcloak.net.sink import OUT_OF_RESOURCES, SUCCESS, StoreAnswer

if TYPE_CHECKING:
    from pynetdicom.association import Association

__all__ = ["DirectorySink", "associate", "identity_item", "rejection"]


@dataclass
class DirectorySink:
    """Writes each instance to ``root/<n>.dcm``; counts calls; keeps the audit events; can refuse all."""

    root: Path
    accept: bool = True
    stored: int = 0
    events: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def accepting(self, route: str) -> bool:
        """What ``accept`` says (a test sets it to False to fill the 'spool')."""
        return self.accept

    def store(self, route: str, encoded: bytes, caller: str) -> StoreAnswer:
        """Write the Part 10 bytes durably, then answer success."""
        if not self.accept:
            return StoreAnswer(OUT_OF_RESOURCES, "spool-full")
        with self._lock:
            self.stored += 1
            index = self.stored
        write_atomic(self.root / route / f"{index:06d}.dcm", encoded)
        return StoreAnswer(SUCCESS)

    def audit(self, action: str, **facts: object) -> None:
        """Keep the event (the test reads them)."""
        with self._lock:
            self.events.append((action, facts))

    def actions(self, action: str) -> list[dict[str, object]]:
        """The facts of every event named ``action``."""
        with self._lock:
            return [facts for name, facts in self.events if name == action]


def identity_item(kind: int, primary: bytes, secondary: bytes = b"") -> Any:
    """A User Identity Negotiation item (PS3.7 D.3.3.7) as a requestor sends it."""
    from pynetdicom.pdu_primitives import UserIdentityNegotiation

    item = UserIdentityNegotiation()
    item.user_identity_type = kind
    item.primary_field = primary
    if kind == 2:
        item.secondary_field = secondary
    return item


def associate(
    port: int,
    *,
    calling: str = "SENDER",
    called: str = "DICOMCLOAK",
    address: str = "127.0.0.1",
    identity: Any = None,
    tls: ssl.SSLContext | None = None,
    timeout: float = 5.0,
) -> Association:
    """Request an association for Verification and CT Image Storage; the caller checks its state."""
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage, Verification

    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage)
    return ae.associate(
        "127.0.0.1",
        port,
        ae_title=called,
        bind_address=(address, 0),
        ext_neg=[identity] if identity is not None else None,
        tls_args=(tls, "localhost") if tls is not None else None,
    )


def rejection(assoc: Association) -> tuple[int, int, int] | None:
    """The A-ASSOCIATE-RJ's (result, source, diagnostic), or None if the association was not rejected."""
    primitive = assoc.acceptor.primitive
    if not assoc.is_rejected or primitive is None:
        return None
    return (int(primitive.result or 0), int(primitive.result_source or 0), int(primitive.diagnostic or 0))

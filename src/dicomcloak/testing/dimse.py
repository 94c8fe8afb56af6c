"""DIMSE test support: a directory sink behind a listener, and a pynetdicom client that can be told anything.

:class:`DirectorySink` is a real C-STORE target (it writes each instance it
is given and counts the calls), not a stand-in for a peer: tests of the
listener use it where the gateway would be. :func:`associate` is a real
pynetdicom requestor that can call from another loopback address, with any
AE titles, User Identity item and TLS context.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomcloak.io.writer import write_atomic
from dicomcloak.net.sink import OUT_OF_RESOURCES, SUCCESS, StoreAnswer

if TYPE_CHECKING:
    from pynetdicom.association import Association

_VERIFICATION = "1.2.840.10008.1.1"  # PS3.4 A.4
_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"  # PS3.4 B.5

__all__ = ["DirectorySink", "associate", "identity_item", "rejection", "request_only"]


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

    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(_VERIFICATION)
    ae.add_requested_context(_CT_IMAGE_STORAGE)
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


def request_only(
    port: int,
    *,
    calling: str = "SENDER",
    called: str = "DICOMCLOAK",
    address: str = "127.0.0.1",
    identity: Any = None,
    timeout: float = 5.0,
) -> tuple[int, tuple[int, int, int] | None]:
    """Send one A-ASSOCIATE-RQ (pynetdicom's own PDU encoder) over a plain socket and read the answer.

    Returns the answer's PDU type (0x02 accept, 0x03 reject; PS3.8 9.3) and,
    for a reject, its (result, source, diagnostic); an accepted association
    is aborted at once. Many times faster than a full pynetdicom requestor,
    for tests that make a thousand attempts.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(address, 0)) as sock:
        sock.sendall(_request_pdu(calling, called, identity))
        header = _read(sock, 6)
        body = _read(sock, struct.unpack(">I", header[2:6])[0])
        if header[0] == 0x02:
            sock.sendall(bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0]))  # A-ABORT (PS3.8 9.3.8)
        if header[0] == 0x03:
            return 0x03, (body[1], body[2], body[3])
        return header[0], None


def _request_pdu(calling: str, called: str, identity: Any) -> bytes:
    from pydicom.uid import UID
    from pynetdicom import build_context
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import (
        A_ASSOCIATE,
        ImplementationClassUIDNotification,
        MaximumLengthNotification,
    )

    primitive = A_ASSOCIATE()
    primitive.application_context_name = UID("1.2.840.10008.3.1.1.1")
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
    contexts = [build_context(_VERIFICATION), build_context(_CT_IMAGE_STORAGE)]
    for index, context in enumerate(contexts):
        context.context_id = 2 * index + 1
    primitive.presentation_context_definition_list = contexts
    length, implementation = MaximumLengthNotification(), ImplementationClassUIDNotification()
    length.maximum_length_received = 16384
    implementation.implementation_class_uid = UID("1.2.826.0.1.3680043.9.3811.3")
    items: list[Any] = [length, implementation]
    primitive.user_information = items + ([identity] if identity is not None else [])
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return bytes(pdu.encode())


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the listener closed the connection")
        data += chunk
    return data

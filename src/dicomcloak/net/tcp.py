"""Nagle's algorithm off on every DICOM connection the gateway makes or accepts.

pynetdicom leaves it on. A C-STORE is a small request, data PDUs and a small
response: with Nagle on, each waits for the peer's delayed ACK, about 40 ms
per exchange on Linux; the gateway's forwarding measured 22-25 instances/s
that way and about twice that without it (docs/benchmarks.md, "Gateway").
"""

from __future__ import annotations

import socket

__all__ = ["no_delay"]


def no_delay(connection: socket.socket) -> None:
    """Set ``TCP_NODELAY`` on a TCP connection; a socket that is not TCP (or already closed) is left alone."""
    try:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return

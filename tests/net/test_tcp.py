"""TCP_NODELAY on the gateway's connections (net/tcp.py): set on TCP, harmless elsewhere."""

from __future__ import annotations

import socket

from dicomcloak.net.tcp import no_delay


def test_no_delay_is_set_on_a_tcp_connection() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname()) as client:
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        no_delay(client)
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_no_delay_leaves_other_sockets_alone() -> None:
    left, right = socket.socketpair()
    with left, right:
        no_delay(left)  # not TCP: no error
    no_delay(left)  # closed: no error

"""The suite is offline: tests/conftest.py refuses every connection to a host that is not this one."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import NetworkAccessBlocked


def test_reaching_another_host_fails_the_test():
    with pytest.raises(NetworkAccessBlocked, match="offline"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(NetworkAccessBlocked):
        udp.sendto(b"x", ("198.51.100.7", 53))
    udp.close()


def test_loopback_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname(), timeout=1)
    client.close()
    server.close()

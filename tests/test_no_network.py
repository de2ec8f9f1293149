"""The no-network guard of tests/conftest.py: beyond loopback nothing connects, loopback works."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import NetworkBlockedError

#: a private address nothing answers on: a real connect would hang until the timeout
UNROUTABLE = ("10.255.255.1", 9)


@pytest.mark.parametrize(
    "connect",
    [
        lambda: socket.create_connection(UNROUTABLE, timeout=5),
        lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(UNROUTABLE),
        lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect_ex(UNROUTABLE),
        lambda: socket.create_connection(("mmrag-no-such-host.example", 443), timeout=5),
    ],
    ids=["create_connection", "connect", "connect_ex", "host-name"],
)
def test_a_connection_beyond_loopback_is_refused_at_once(no_network: list[str], connect):
    start = time.perf_counter()
    with pytest.raises(NetworkBlockedError, match="only connect to loopback"):
        connect()
    assert time.perf_counter() - start < 0.5  # raised before any packet (or DNS query) left
    assert len(no_network) == 1
    no_network.clear()  # provoked on purpose: do not fail this test at teardown


def _echo_server(family: int, host: str) -> tuple[socket.socket, int]:
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(16).upper())

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_still_works(host: str):
    server, port = _echo_server(socket.AF_INET, "127.0.0.1")
    with server, socket.create_connection((host, port), timeout=5) as client:
        client.sendall(b"ping")
        assert client.recv(16) == b"PING"


def test_ipv6_loopback_and_unix_sockets_still_work(tmp_path: Path):
    if socket.has_ipv6:
        try:
            server, port = _echo_server(socket.AF_INET6, "::1")
        except OSError:
            server = None  # no IPv6 loopback on this machine
        if server is not None:
            with server, socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as client:
                client.connect(("::1", port))
                client.sendall(b"six")
                assert client.recv(16) == b"SIX"
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            assert client.connect_ex(path) == 0


def test_a_test_that_swallows_the_error_still_fails(tmp_path: Path):
    """Code under test that catches every exception cannot hide a connection attempt."""
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_inner.py").write_text(
        "import socket\n\n"
        "def test_swallows():\n"
        "    try:\n"
        f"        socket.create_connection({UNROUTABLE!r}, timeout=5)\n"
        "    except Exception:\n"
        "        pass\n\n"
        "def test_offline():\n"
        "    assert True\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 passed, 1 error" in result.stdout, result.stdout  # the body passed; its teardown failed
    assert "ERROR" in result.stdout and "test_inner.py::test_swallows" in result.stdout
    assert "tried to open non-loopback connection(s) ['10.255.255.1:9']" in result.stdout

"""Shared fixtures. The default run is offline and CPU-only: no test may open a network
connection beyond this machine's loopback (see :func:`no_network`)."""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# ONNX exports of text models go to a per-run cache, not the user's ~/.cache/mmrag; the run
# removes it when it ends (130-220 MB a run: left behind, they once filled the disk CI shares)
if "MMRAG_CACHE" not in os.environ:
    _RUN_CACHE = tempfile.mkdtemp(prefix="mmrag-test-cache-")
    os.environ["MMRAG_CACHE"] = _RUN_CACHE
    atexit.register(shutil.rmtree, _RUN_CACHE, ignore_errors=True)

#: ../shared/eval beside the repository: real PDFs and questions with gold pages.
SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


@pytest.fixture(scope="session")
def shared_eval() -> Path:
    if not (SHARED_EVAL / "docs").is_dir():
        pytest.skip(f"evaluation data not found at {SHARED_EVAL} (clone the project with ../shared beside it)")
    return SHARED_EVAL


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> list[Path]:
    """The demo documents (a PDF manual with chart, table, photo and a scanned page; a PNG)."""
    from ingest.samples import make_samples

    return make_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="session")
def kb_path(tmp_path_factory, samples) -> Path:
    """A knowledge base built once from the samples with the default (real) models.

    Tests may read it and re-ingest unchanged files; tests that change documents build
    their own.
    """
    from rag import KnowledgeBase

    path = tmp_path_factory.mktemp("kb") / "kb"
    with KnowledgeBase.open(path, create=True) as kb:
        reports = kb.ingest(samples, progress=False)
    assert [r.status for r in reports] == ["indexed"] * len(samples), reports
    return path


# ----------------------------------------------------------------------------- no network
class NetworkBlockedError(RuntimeError):
    """A test tried to connect to an address outside this machine's loopback."""


_ORIGINAL_CONNECT = socket.socket.connect
_ORIGINAL_CONNECT_EX = socket.socket.connect_ex
_ORIGINAL_CREATE_CONNECTION = socket.create_connection
#: blocked attempts since the current test started, as "host:port"
_BLOCKED: list[str] = []


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # any other host name: blocked before it is looked up
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _check(family: int, address: object) -> None:
    """Raise :class:`NetworkBlockedError` for an internet address that is not loopback."""
    if family not in (socket.AF_INET, socket.AF_INET6):
        return  # unix sockets (and netlink and friends) stay on this machine
    host, port = (address[0], address[1]) if isinstance(address, tuple) and len(address) >= 2 else (address, None)
    if _is_loopback(host):
        return
    _BLOCKED.append(f"{host}:{port}")
    raise NetworkBlockedError(
        f"tests may only connect to loopback (127.0.0.0/8, ::1, localhost) or unix sockets, got {host}:{port}; "
        "serve what the test needs on 127.0.0.1 (see tests/_live_server.py) or inject a transport"
    )


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check(self.family, address)
    return _ORIGINAL_CONNECT(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check(self.family, address)
    return _ORIGINAL_CONNECT_EX(self, address)


def _guarded_create_connection(address, *args, **kwargs):
    _check(socket.AF_INET, address)  # before the name is resolved: no DNS query leaves either
    return _ORIGINAL_CREATE_CONNECTION(address, *args, **kwargs)


@pytest.fixture(scope="session", autouse=True)
def _network_guard():
    """Patch connections for the whole session, so session fixtures are guarded too."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _guarded_connect)
        mp.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
        mp.setattr(socket, "create_connection", _guarded_create_connection)
        yield


@pytest.fixture(autouse=True)
def no_network(_network_guard) -> list[str]:
    """Fails any test that tries to connect beyond loopback.

    ``socket.socket.connect`` / ``connect_ex`` and ``socket.create_connection`` raise
    :class:`NetworkBlockedError` before connecting (before resolving a host name) for any
    address that is not 127.0.0.0/8, ::1, ``localhost`` or a unix socket. The test fails at
    teardown even when the code under test swallowed that error. The value is the list of
    blocked ``host:port`` attempts; a test that provokes one on purpose clears it.

    Not covered: subprocesses started by tests (they do not inherit the patch), and C
    libraries that open sockets without going through Python's ``socket`` module.
    """
    _BLOCKED.clear()
    yield _BLOCKED
    if _BLOCKED:
        attempts = list(_BLOCKED)
        _BLOCKED.clear()
        pytest.fail(f"the test tried to open non-loopback connection(s) {attempts}; tests must stay offline")

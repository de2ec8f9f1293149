"""Bounds that keep the server answering: request bodies counted as they arrive (chunked or not),
and writers that wait for the write lock without holding the threads that serve reads.

- :class:`BodyLimit` (ASGI middleware): a body above its route's limit is refused with 413, at
  once from its ``Content-Length``, else the moment the counted bytes pass the limit; the
  route never sees the rest.
- :class:`WriteGate`: deletes run on one thread of their own, at most ``max_waiting`` waiting;
  one more is answered 503 with ``Retry-After`` at once. Request threads and the event loop
  stay free for health, searches and reads whatever the writers do.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import HTTPException

__all__ = ["BodyLimit", "BodyTooLarge", "WriteGate"]

T = TypeVar("T")
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body passes its limit (an :class:`HTTPException`, so the
    app's handler answers it as JSON wherever the route was reading)."""

    def __init__(self, limit: int, got: int | None = None) -> None:
        size = f"{got} bytes" if got is not None else f"more than {limit} bytes"
        super().__init__(413, f"request body of {size} exceeds this route's limit of {limit} bytes")


class BodyLimit:
    """ASGI middleware: ``limit_for(method, path)`` bytes of body at most (``None``: no bound)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int | None]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope.get("method", ""), scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send, BodyTooLarge(limit, declared))
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as exc:  # raised where no handler answered it (outside a route)
            if started:
                raise
            await _send_413(send, exc)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else None
    return None


async def _send_413(send: Send, exc: BodyTooLarge) -> None:
    body = json.dumps({"error": exc.detail, "type": "PayloadTooLarge"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class WriteGate:
    """Writes (deletes) on their own single thread, each waiting at most ``wait_s`` for
    ``lock`` (the job queue's write lock), at most ``max_waiting`` of them admitted at a time."""

    def __init__(self, lock: Any, *, max_waiting: int = 8, wait_s: float = 30.0, retry_after_s: int = 5) -> None:
        self._lock = lock
        self._max = max_waiting
        self._wait_s = wait_s
        self._retry_after = retry_after_s
        self._admitted = 0
        self._count_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmrag-write")

    async def run(self, write: Callable[[], T], busy: str) -> T:
        """``write()`` under the write lock, on the writer thread; 503 with ``Retry-After`` when
        ``max_waiting`` writes are already admitted; 409 with ``busy`` when the lock stays held
        for ``wait_s`` seconds from now (the time spent queued behind other writes counts)."""
        with self._count_lock:
            if self._admitted >= self._max:
                raise HTTPException(
                    503,
                    f"{self._admitted} writes are already waiting for the write lock; retry in {self._retry_after} s",
                    headers={"Retry-After": str(self._retry_after)},
                )
            self._admitted += 1
        deadline = time.monotonic() + self._wait_s

        def locked() -> T:
            if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise HTTPException(409, busy, headers={"Retry-After": str(self._retry_after)})
            try:
                return write()
            finally:
                self._lock.release()

        try:
            return await asyncio.wrap_future(self._executor.submit(locked))
        finally:
            with self._count_lock:
                self._admitted -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

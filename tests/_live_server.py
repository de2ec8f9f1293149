"""Run an ASGI app under a real uvicorn server on 127.0.0.1 (a free port) in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["live_server", "wait_ready", "wait_job", "tiny_pdf"]


@contextmanager
def live_server(app: Any, startup_s: float = 60.0) -> Iterator[str]:
    """Yield the base URL of ``app`` served on loopback; stop the server afterwards."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wait_ready(client: Any, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not client.get("/api/health").json()["ready"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not finish loading its models")
        time.sleep(0.1)


def wait_job(client: Any, job_id: str, timeout_s: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} still {job['state']} after {timeout_s} s")
        time.sleep(0.1)


def tiny_pdf(path: Path, lines: list[str]) -> Path:
    """A one-page PDF with a text layer (no OCR needed, quick to ingest)."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    y = 72.0
    for line in lines:
        page.insert_text((72, y), line, fontsize=12)
        y += 20
    doc.save(path)
    doc.close()
    return path

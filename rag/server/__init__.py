"""HTTP API and web page over a knowledge base (FastAPI + uvicorn; ``pip install 'mmrag[web]'``).

::

    mmrag serve --kb kb/                       # http://127.0.0.1:8000/ (page), /docs, /openapi.json
    MMRAG_API_TOKEN=... mmrag serve --kb kb/ --host 0.0.0.0

Without a token the server listens on loopback only and says so; with one, every
``/api`` route but ``/api/health`` needs ``Authorization: Bearer <token>``.
Importing this package does not import FastAPI; :func:`create_app` and :func:`serve` do.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rag.lazy import require
from rag.server._security import TOKEN_ENV, BindPlan, plan_bind, read_token, safe_upload_name

__all__ = ["create_app", "serve", "plan_bind", "read_token", "safe_upload_name", "BindPlan", "TOKEN_ENV"]

log = logging.getLogger("mmrag.server")


def _require_web() -> None:
    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("python_multipart", "python-multipart")):
        require(module, "web", "mmrag serve", package=package)


def create_app(kb: Any, *, token: str | None = None, max_upload_bytes: int | None = None) -> Any:
    """The FastAPI app over an open :class:`rag.KnowledgeBase` (the caller closes it)."""
    _require_web()
    from rag.server.app import DEFAULT_MAX_UPLOAD_BYTES
    from rag.server.app import create_app as _create

    limit = DEFAULT_MAX_UPLOAD_BYTES if max_upload_bytes is None else max_upload_bytes
    return _create(kb, token=token, max_upload_bytes=limit)


def serve(
    kb_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    config: Any = None,
    max_upload_bytes: int | None = None,
    log_level: str = "info",
) -> None:
    """Open (or create) the knowledge base in ``kb_path`` and serve it until interrupted."""
    _require_web()
    import uvicorn

    from rag.kb import KnowledgeBase

    plan = plan_bind(host, port, token)
    log.warning("%s", plan.message)
    if config is not None and (Path(kb_path) / "manifest.json").exists():
        from dataclasses import replace

        # An existing knowledge base keeps its models, store and ingest settings; the config chooses how to ask.
        config = replace(KnowledgeBase.open(kb_path).config, ask=config.ask)
    with KnowledgeBase.open(kb_path, config, create=True) as kb:
        app = create_app(kb, token=token, max_upload_bytes=max_upload_bytes)
        uvicorn.run(app, host=plan.host, port=plan.port, log_level=log_level)

"""The FastAPI application: documents, ingest jobs, search, ask (JSON or server-sent events),
page images and highlighted crops, health and info, and the web page.

Build it with :func:`create_app`; ``mmrag serve`` runs it under uvicorn.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from rag.errors import (
    ConfigError,
    DocumentError,
    DocumentNotFoundError,
    GeneratorError,
    KnowledgeBaseLockedError,
    KnowledgeBaseNotFoundError,
    MmragError,
    QueryError,
)
from rag.conversation import Turn
from rag.json_shapes import route_json
from rag.server._images import crop_png, parse_bbox
from rag.server._service import Service
from rag.server._security import inside, token_matches

__all__ = ["create_app", "SearchRequest", "AskRequest", "ErrorBody", "DEFAULT_MAX_UPLOAD_BYTES"]

log = logging.getLogger("mmrag.server")

STATIC = Path(__file__).with_name("static")
DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024**2
_CHUNK = 1024 * 1024
#: A request body above this many times the per-file limit is refused before it is read.
_BODY_FACTOR = 8


class TurnBody(BaseModel):
    """One earlier turn of the conversation (the ``question`` and ``answer`` of an /api/ask response fit as they are)."""

    question: str = Field(min_length=1, max_length=2000, description="an earlier question")
    answer: str = Field(default="", max_length=20_000, description="the answer it was given")


_HISTORY_DESCRIPTION = (
    "the earlier turns, oldest first; a follow-up that refers back to them (\"what about its default value?\") "
    "is searched for with the earlier turn's subject (the response's \"rewritten\"); at most the last 3 are used"
)


class SearchRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000, description="the question")
    history: list[TurnBody] = Field(default_factory=list, max_length=200, description=_HISTORY_DESCRIPTION)
    top_k: int | None = Field(default=None, ge=1, le=50, description="page hits to return (default from the config)")
    documents: list[str] | None = Field(default=None, max_length=50, description="restrict to these documents (doc id, name or path)")
    page_from: int | None = Field(default=None, ge=1, le=100_000, description="first physical page (1-based)")
    page_to: int | None = Field(default=None, ge=1, le=100_000, description="last physical page (1-based)")


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    top_k: int | None = Field(default=None, ge=1, le=50)
    history: list[TurnBody] = Field(default_factory=list, max_length=200, description=_HISTORY_DESCRIPTION)


def _turns(history: list[TurnBody]) -> list[Turn]:
    return [Turn(t.question, t.answer) for t in history]


class ErrorBody(BaseModel):
    error: str = Field(description="what went wrong, what was expected, and the fix")
    type: str = Field(description="the error kind, e.g. QueryError, HTTPError, ValidationError")


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "a request that cannot be served as given"),
        (401, "missing or wrong bearer token (when the server has one)"),
        (404, "no such document, page, image or job"),
        (409, "a write is in progress"),
        (413, "upload too large"),
    )
}


_STATUS = (
    (QueryError, 400),
    (KnowledgeBaseNotFoundError, 404),
    (DocumentNotFoundError, 404),
    (KnowledgeBaseLockedError, 409),
    (ConfigError, 400),
    (DocumentError, 422),
    (GeneratorError, 502),
)


def _status_for(exc: MmragError) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` with its scripts and styles from the installed ``swagger-ui-bundle``
    (FastAPI's default page loads them from a CDN, which a machine without internet cannot reach)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def create_app(kb: Any, *, token: str | None = None, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> FastAPI:
    """The app over an open :class:`rag.KnowledgeBase`. With ``token``, every ``/api`` route except
    ``/api/health`` needs ``Authorization: Bearer <token>``. The caller closes ``kb``."""
    service = Service(kb, token=token, max_upload_bytes=max_upload_bytes)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(
        title="mmrag",
        version=_version(),
        description="Multimodal RAG over PDFs and images, answers cited to the page and the box.",
        lifespan=lifespan,
        responses=_ERRORS,
        docs_url=None,  # served below from the swagger-ui-bundle package, not a CDN (offline machines)
    )
    app.state.service = service

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if service.token and path.startswith("/api/") and path != "/api/health":
            if not token_matches(request.headers.get("authorization"), service.token):
                return JSONResponse({"error": "missing or wrong bearer token", "type": "Unauthorized"}, 401, headers={"WWW-Authenticate": "Bearer"})
        length = request.headers.get("content-length")
        if request.method == "POST" and path == "/api/documents" and length and length.isdigit():
            if int(length) > service.max_upload_bytes * _BODY_FACTOR + _CHUNK:
                return JSONResponse({"error": f"request body of {length} bytes exceeds the upload limit", "type": "PayloadTooLarge"}, 413)
        return await call_next(request)

    @app.exception_handler(MmragError)
    async def mmrag_error(request: Request, exc: MmragError) -> JSONResponse:
        status = _status_for(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"error": str(exc), "type": type(exc).__name__}, status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:5])
        return JSONResponse({"error": f"invalid request: {problems}", "type": "ValidationError", "detail": jsonable_encoder(exc.errors())}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail), "type": "HTTPError"}, exc.status_code, headers=exc.headers)

    # -- page --------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _mount_docs(app)

    # -- health and info ---------------------------------------------------------------------
    @app.get("/api/health", tags=["server"])
    def health() -> dict[str, Any]:
        """Liveness; ``ready`` turns true once the models are loaded."""
        return {"status": "ok", "ready": service.jobs.ready.is_set(), "error": service.jobs.warm_error}

    @app.get("/api/info", tags=["server"])
    def info() -> dict[str, Any]:
        with service.query_lock:
            data = service.kb.info()
        data.pop("path", None)
        data["server"] = {"auth": bool(service.token), "max_upload_bytes": service.max_upload_bytes, "version": _version()}
        return data

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    # -- documents and jobs -----------------------------------------------------------------------
    @app.get("/api/examples", tags=["documents"])
    def examples(limit: int = Query(4, ge=1, le=20)) -> dict[str, Any]:
        """A few questions about the documents held, made from their figure captions and titles."""
        with service.query_lock:
            return {"examples": service.kb.examples(limit)}

    @app.get("/api/documents", tags=["documents"])
    def documents() -> dict[str, Any]:
        return {"documents": [service.document(r) for r in service.kb.documents()]}

    @app.post("/api/documents", status_code=202, tags=["documents"])
    async def upload(files: list[UploadFile] = File(..., description="PDF or image files")) -> dict[str, Any]:
        """Save the files inside the knowledge base and queue one ingest job for them."""
        if not files:
            raise HTTPException(400, "no files in the upload")
        if len(files) > 100:
            raise HTTPException(400, f"{len(files)} files in one upload; the limit is 100")
        saved = await service.save_uploads(files)
        return service.jobs.submit(saved).to_json()

    @app.delete("/api/documents/{doc}", tags=["documents"])
    def delete(doc: str) -> dict[str, Any]:
        """Remove a document by doc id (or an 8+ character prefix), file name or path."""
        if not service.jobs.write_lock.acquire(timeout=30):
            raise HTTPException(409, "an ingest job is running; retry the delete when it finishes (GET /api/jobs)")
        try:
            removed = service.kb.delete(doc)  # DocumentNotFoundError: 404
        finally:
            service.jobs.write_lock.release()
        for record in removed:
            kept = inside(service.uploads, Path(record.path))
            if kept is not None:
                kept.unlink(missing_ok=True)
        return {"deleted": [{"doc_id": r.doc_id, "name": r.name} for r in removed]}

    @app.get("/api/jobs", tags=["documents"])
    def jobs() -> dict[str, Any]:
        return {"jobs": [j.to_json() for j in service.jobs.jobs()]}

    @app.delete("/api/jobs/{job_id}", tags=["documents"])
    def cancel_job(job_id: str) -> dict[str, Any]:
        """Cancel an ingest job: a queued job never starts; a running one stops at its next page and
        its current file is rolled back. Files it already indexed stay."""
        found = service.jobs.cancel(job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id!r} (jobs are kept while the server runs)")
        return found.to_json()

    @app.get("/api/jobs/{job_id}", tags=["documents"])
    def job(job_id: str) -> dict[str, Any]:
        found = service.jobs.get(job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id!r} (jobs are kept while the server runs)")
        return found.to_json()

    # -- search and ask -----------------------------------------------------------------------------
    @app.post("/api/search", tags=["ask"])
    def search(body: SearchRequest) -> dict[str, Any]:
        pages = None
        if body.page_from is not None or body.page_to is not None:
            lo = body.page_from if body.page_from is not None else 1
            hi = body.page_to if body.page_to is not None else 100_000
            if hi < lo:
                raise HTTPException(400, f"page_to ({hi}) is before page_from ({lo})")
            pages = (lo, hi)
        if body.documents is not None:
            records = service.kb.documents()
            if not any(_matches(d, records) for d in body.documents):
                raise HTTPException(404, f"no document matches {body.documents!r} (see GET /api/documents)")
        with service.query_lock:
            result = service.kb.search(
                body.question, top_k=body.top_k, documents=body.documents, pages=pages, history=_turns(body.history)
            )
        return result.to_json(hit=service.hit)

    @app.post("/api/ask", tags=["ask"])
    def ask(body: AskRequest) -> dict[str, Any]:
        with service.query_lock:
            answer = service.kb.ask(body.question, top_k=body.top_k, history=_turns(body.history))
        return service.answer(answer)

    @app.post(
        "/api/ask/stream",
        tags=["ask"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "events: search, token, answer, error"}},
    )
    def ask_stream(body: AskRequest) -> StreamingResponse:
        """Server-sent events: ``search`` (route and hits), ``token`` (answer text as it is made),
        ``answer`` (final text, citations, hits), or ``error``."""
        from rag.kb import check_question

        check_question(body.question, service.kb.config.ask.max_question_chars)
        return StreamingResponse(_stream(service, body), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    # -- images --------------------------------------------------------------------------------------
    @app.get("/api/images/{doc_id}/{name}", tags=["images"], response_class=Response,
             responses={200: {"content": {"image/webp": {}, "image/png": {}, "image/jpeg": {}}}})
    def image(doc_id: str, name: str) -> Response:
        """A page image or figure crop stored by ingestion (only files inside the knowledge base)."""
        found = inside(service.images, service.images / doc_id / name)
        if found is None:
            raise HTTPException(404, f"no image {doc_id}/{name} in this knowledge base")
        return FileResponse(found, media_type=mimetypes.guess_type(found.name)[0] or "application/octet-stream")

    @app.get("/api/documents/{doc_id}/pages/{page}/image", tags=["images"], response_class=Response,
             responses={200: {"content": {"image/webp": {}, "image/png": {}, "image/jpeg": {}}}})
    def page_image(doc_id: str, page: int) -> Response:
        found = _page_image(service, doc_id, page)
        return FileResponse(found, media_type=mimetypes.guess_type(found.name)[0] or "application/octet-stream")

    @app.get("/api/documents/{doc_id}/pages/{page}/highlight", tags=["images"], response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
    def highlight(
        doc_id: str,
        page: int,
        bbox: str = Query(..., description="x0,y0,x1,y1 in PDF points, origin top-left", max_length=200),
        margin: float = Query(36.0, ge=0, le=2000),
    ) -> Response:
        """A PNG crop of the page around ``bbox`` with the box drawn."""
        box = parse_bbox(bbox)
        found = _page_image(service, doc_id, page)
        record = service.record(doc_id)
        # points -> pixels from the page's own size: an oversized page is rendered below ingest.dpi
        if record.kind == "image":
            return Response(crop_png(found, box, margin), media_type="image/png")
        size = service.kb.page_size(record.doc_id, page)
        png = crop_png(found, box, margin, page_width=size[0] if size else None, scale=service.kb.config.ingest.dpi / 72.0)
        return Response(png, media_type="image/png")

    return app


def _matches(wanted: str, records: list[Any]) -> bool:
    return any(wanted in (r.doc_id, r.name, r.path) or (len(wanted) >= 8 and r.doc_id.startswith(wanted)) for r in records)


def _page_image(service: Service, doc_id: str, page: int) -> Path:
    record = service.record(doc_id)
    if not 1 <= page <= record.pages:
        raise HTTPException(404, f"{record.name} has pages 1..{record.pages}, not {page}")
    for candidate in sorted((service.images / record.doc_id).glob(f"page-{page:04d}.*")):
        found = inside(service.images, candidate)
        if found is not None:
            return found
    raise HTTPException(404, f"no stored image for {record.name} page {page}")


def _stream(service: Service, body: AskRequest) -> Iterator[str]:
    """Run search then ask on a worker thread; relay its events as SSE."""
    events: queue.Queue[tuple[str, Any] | None] = queue.Queue()

    def work() -> None:
        try:
            with service.query_lock:
                history = _turns(body.history)
                result = service.kb.search(body.question, top_k=body.top_k, history=history)
                events.put(("search", {
                    "rewritten": result.rewritten,
                    "route": route_json(result.route),
                    "hits": [service.hit(h) for h in result.hits],
                }))
                answer = service.kb.ask(
                    body.question, top_k=body.top_k, history=history, on_token=lambda t: events.put(("token", {"text": t}))
                )
            events.put(("answer", service.answer(answer)))
        except MmragError as exc:
            events.put(("error", {"error": str(exc), "type": type(exc).__name__}))
        except Exception as exc:  # the stream has started: report in-band, and log the trace
            log.exception("ask stream failed")
            events.put(("error", {"error": f"internal error: {type(exc).__name__}", "type": "InternalError"}))
        finally:
            events.put(None)

    threading.Thread(target=work, name="mmrag-ask", daemon=True).start()
    while (item := events.get()) is not None:
        yield _sse(*item)


def _version() -> str:
    from rag import __version__

    return __version__

"""The FastAPI application: documents, ingest jobs, search, ask (JSON or server-sent events),
page images and highlighted crops, health and info, and the web page.

Build it with :func:`create_app`; ``mmrag serve`` runs it under uvicorn.
"""

from __future__ import annotations

import json
import logging
import math
import mimetypes
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

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
from rag._cli_parser import MAX_PAGE, MAX_TOP_K
from rag.conversation import Turn
from rag.json_shapes import route_json
from rag.server._images import crop_png, parse_bbox
from rag.server._limits import BodyLimit, WriteGate
from rag.server._service import Service
from rag.server._security import inside, token_matches
from rag.server._uploads import UPLOAD_BODY

__all__ = ["create_app", "SearchRequest", "AskRequest", "ErrorBody", "DEFAULT_MAX_UPLOAD_BYTES"]

log = logging.getLogger("mmrag.server")

STATIC = Path(__file__).with_name("static")
DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024**2
_CHUNK = 1024 * 1024
#: An upload body (all its files) above this many times the per-file limit is refused.
_BODY_FACTOR = 8
#: Any other request body: the largest valid one (2,000-character question, 200 turns of history
#: with 20,000-character answers, every character a JSON escape) fits.
_JSON_BODY_LIMIT = 32 * 1024**2
_FASTAPI_BODY_ERROR = "There was an error parsing the body"
#: Echoed input (a validation error's ``input``) is cut to this many characters.
_ECHO_CHARS = 300


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON that always renders: lone surrogates escaped, bytes decoded, NaN and
    infinities as strings, long strings cut, unknown objects as their ``str``."""
    if depth > 20:
        return "..."
    if value is None or isinstance(value, (bool, int)):
        return value if not isinstance(value, int) or value.bit_length() <= 64 else str(value)[:_ECHO_CHARS]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[: _ECHO_CHARS * 4]).decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        text = value if len(value) <= _ECHO_CHARS else value[:_ECHO_CHARS] + "..."
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {str(_plain(k, depth + 1)): _plain(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, depth + 1) for v in list(value)[:100]]
    return _plain(str(value), depth + 1)


class SafeJSONResponse(JSONResponse):
    """A JSON response that renders any content: a value JSON cannot carry (NaN, a lone
    surrogate echoed from the request) is made plain instead of failing as a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        except (ValueError, TypeError, UnicodeEncodeError, RecursionError):
            return json.dumps(_plain(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


#: The allowed range of each bounded number, named in a validation error about it.
_RANGES = {"top_k": f"1..{MAX_TOP_K}", "page_from": f"1..{MAX_PAGE}", "page_to": f"1..{MAX_PAGE}", "page": f"1..{MAX_PAGE}",
           "limit": "1..20", "margin": "0..2000"}


def _range_hint(error: dict[str, Any]) -> str:
    loc = error.get("loc") or ()
    allowed = _RANGES.get(str(loc[-1])) if loc else None
    return f" (allowed: {allowed})" if allowed is not None else ""


def _error(message: str, kind: str, status: int, headers: dict[str, str] | None = None) -> SafeJSONResponse:
    return SafeJSONResponse({"error": _plain(message), "type": kind}, status, headers=headers)


class TurnBody(BaseModel):
    """One earlier turn of the conversation (the ``question`` and ``answer`` of an /api/ask response fit as they are)."""

    question: str = Field(min_length=1, max_length=2000, description="an earlier question")
    answer: str = Field(default="", max_length=20_000, description="the answer it was given")


_HISTORY_DESCRIPTION = (
    "the earlier turns, oldest first; a follow-up that refers back to them (\"what about its default value?\") "
    "is searched for with the earlier turn's subject (the response's \"rewritten\"); at most the last 3 are used"
)


#: A metadata value: bool first, so JSON true stays a boolean (pydantic's smart union keeps exact types).
MetaValue = bool | int | float | str
_WHERE_DESCRIPTION = (
    'only documents whose metadata matches: {"team": "finance", "year": [2024, 2025]} (keys ANDed, a list is any '
    "of its values); a key no document has is a 400 naming the keys there are"
)


class SearchRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000, description="the question")
    history: list[TurnBody] = Field(default_factory=list, max_length=200, description=_HISTORY_DESCRIPTION)
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K, description="page hits to return (default from the config)")
    documents: list[str] | None = Field(default=None, max_length=50, description="restrict to these documents (doc id, name or path)")
    page_from: int | None = Field(default=None, ge=1, le=MAX_PAGE, description="first physical page (1-based)")
    page_to: int | None = Field(default=None, ge=1, le=MAX_PAGE, description="last physical page (1-based)")
    where: dict[str, MetaValue | list[MetaValue]] | None = Field(default=None, max_length=64, description=_WHERE_DESCRIPTION)


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)
    history: list[TurnBody] = Field(default_factory=list, max_length=200, description=_HISTORY_DESCRIPTION)
    where: dict[str, MetaValue | list[MetaValue]] | None = Field(default=None, max_length=64, description=_WHERE_DESCRIPTION)


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
        (413, "upload or request body too large"),
        (415, "an upload that is not multipart/form-data"),
        (422, "a request that does not match the schema"),
        (503, "too many writes waiting; retry after the Retry-After seconds"),
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
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError):
        text = json.dumps(_plain(data), ensure_ascii=False, allow_nan=False)
    return f"event: {event}\ndata: {text}\n\n"


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
    writes = WriteGate(service.jobs.write_lock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        writes.close()
        service.close()

    app = FastAPI(
        title="mmrag",
        version=_version(),
        description="Multimodal RAG over PDFs and images, answers cited to the page and the box.",
        lifespan=lifespan,
        responses=_ERRORS,
        default_response_class=SafeJSONResponse,
        docs_url=None,  # served below from the swagger-ui-bundle package, not a CDN (offline machines)
    )
    app.state.service = service

    def body_limit(method: str, path: str) -> int | None:
        if method == "POST" and path == "/api/documents":
            return service.max_upload_bytes * _BODY_FACTOR + _CHUNK
        return _JSON_BODY_LIMIT

    # Counts every request body as it arrives, chunked or not (413 past the limit). Added first,
    # so it sits inside the token guard below: its 413 is raised straight into the route.
    app.add_middleware(BodyLimit, limit_for=body_limit)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if service.token and path.startswith("/api/") and path != "/api/health":
            if not token_matches(request.headers.get("authorization"), service.token):
                return _error("missing or wrong bearer token", "Unauthorized", 401, headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    @app.exception_handler(MmragError)
    async def mmrag_error(request: Request, exc: MmragError) -> JSONResponse:
        status = _status_for(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return _error(str(exc), type(exc).__name__, status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # the errors echo the input, which may be anything JSON can parse but not render (NaN,
        # 1e400 as infinity, a lone surrogate): made plain before rendering
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg", "input")} for e in exc.errors()[:20]]
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}{_range_hint(e)}" for e in errors[:5])
        return SafeJSONResponse({"error": _plain(f"invalid request: {problems}"), "type": "ValidationError", "detail": _plain(errors)}, 422)

    # Starlette's own class: FastAPI raises it too ("error parsing the body"), and a handler for
    # FastAPI's subclass would leave those to the default shape ({"detail": ...})
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if message == _FASTAPI_BODY_ERROR:  # FastAPI's words for a body json.loads refused (not UTF-8, nested too deep)
            message = "the request body cannot be read as JSON (not UTF-8, or nested too deeply); send a UTF-8 JSON object such as {\"question\": \"...\"}"
        return _error(message, "HTTPError", exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # a bug: the trace goes to the log, the client gets one line, never the trace
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(f"internal error ({type(exc).__name__}); the server log has the details", "InternalError", 500)

    # -- page --------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _mount_docs(app)

    # -- health and info ---------------------------------------------------------------------
    @app.get("/api/health", tags=["server"])
    async def health() -> dict[str, Any]:  # on the event loop: answers even when every request thread is busy
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

    @app.post("/api/documents", status_code=202, tags=["documents"], openapi_extra=UPLOAD_BODY)
    async def upload(request: Request) -> dict[str, Any]:
        """Save the files (multipart ``files`` parts) inside the knowledge base and queue one
        ingest job for them; an optional ``metadata`` field (a JSON object) goes with them. Each
        file is counted as it streams in and refused (413) once past the per-file limit; all
        files or none are kept."""
        saved, meta = await service.save_uploads(request)
        service.set_metadata(saved, meta)
        return service.jobs.submit(saved).to_json()

    @app.delete("/api/documents/{doc}", tags=["documents"])
    async def delete(doc: str) -> dict[str, Any]:
        """Remove a document by doc id (or an 8+ character prefix), file name or path. Deletes
        wait for the write lock on a thread of their own (409 after 30 s; 503 with Retry-After
        when too many are waiting), never on the threads that serve searches."""
        busy = "an ingest job is running; retry the delete when it finishes (GET /api/jobs)"
        removed = await writes.run(lambda: service.kb.delete(doc), busy)  # DocumentNotFoundError: 404
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
                body.question, top_k=body.top_k, documents=body.documents, pages=pages, history=_turns(body.history),
                where=body.where,
            )
        return result.to_json(hit=service.hit)

    @app.post("/api/ask", tags=["ask"])
    def ask(body: AskRequest) -> dict[str, Any]:
        with service.query_lock:
            answer = service.kb.ask(body.question, top_k=body.top_k, history=_turns(body.history), where=body.where)
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
    def page_image(doc_id: str, page: int = PathParam(ge=1, le=MAX_PAGE)) -> Response:
        found = _page_image(service, doc_id, page)
        return FileResponse(found, media_type=mimetypes.guess_type(found.name)[0] or "application/octet-stream")

    @app.get("/api/documents/{doc_id}/pages/{page}/highlight", tags=["images"], response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
    def highlight(
        doc_id: str,
        page: int = PathParam(ge=1, le=MAX_PAGE),
        bbox: str = Query(..., description="x0,y0,x1,y1 in PDF points, origin top-left", max_length=200),
        margin: float = Query(36.0, ge=0, le=2000, allow_inf_nan=False),
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
                result = service.kb.search(body.question, top_k=body.top_k, history=history, where=body.where)
                events.put(("search", {
                    "rewritten": result.rewritten,
                    "route": route_json(result.route),
                    "hits": [service.hit(h) for h in result.hits],
                }))
                answer = service.kb.ask(
                    body.question, top_k=body.top_k, history=history, where=body.where,
                    on_token=lambda t: events.put(("token", {"text": t})),
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

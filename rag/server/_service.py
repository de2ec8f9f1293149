"""What the app serves from: the knowledge base, its query lock, the ingest queue, uploads,
and the JSON shapes of hits, answers and documents."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from rag.atomic import replace_durably
from rag.errors import ConfigError
from rag.json_shapes import answer_json, citation_json, hit_json
from rag.server._jobs import JobQueue
from rag.server._security import inside
from rag.server._uploads import receive_upload
from rag.types import Answer, Citation, Hit

__all__ = ["Service"]


class Service:
    """The knowledge base behind the app: queries under one lock, writes through the job queue."""

    def __init__(self, kb: Any, *, token: str | None, max_upload_bytes: int) -> None:
        self.kb = kb
        self.token = token
        self.max_upload_bytes = max_upload_bytes
        self.query_lock = threading.RLock()
        self.uploads = Path(kb.path) / "uploads"
        self.images = Path(kb.path) / "images"
        self.jobs = JobQueue(self._ingest_one, warm_up=self._warm_up)
        self._metadata: dict[Path, dict[str, Any]] = {}  # an uploaded file's metadata, until its job ingests it

    def _warm_up(self) -> None:
        # Open the store and load every model of the search path once, before an ingest job
        # and a request could race to load (or export) the same model from two threads.
        with self.query_lock:
            self.kb.info()
            self.kb.search("warm up", top_k=1)

    def _ingest_one(self, path: Path, on_page: Any) -> Any:
        metadata = self._metadata.pop(path, None)
        return self.kb.ingest([path], progress=False, on_page=on_page, metadata=metadata)[0]

    def set_metadata(self, paths: list[Path], metadata: dict[str, Any]) -> None:
        """The metadata the upload of ``paths`` gave, for their ingest job."""
        for path in paths:
            if metadata:
                self._metadata[path] = metadata
            else:
                self._metadata.pop(path, None)

    # -- JSON shapes -----------------------------------------------------------------------
    def image_url(self, doc_id: str, image_path: Path | None) -> str | None:
        if image_path is None:
            return None
        return f"/api/images/{doc_id}/{Path(image_path).name}"

    def hit(self, hit: Hit) -> dict[str, Any]:
        out = hit_json(hit)
        out.pop("image_path", None)
        out["image_url"] = self.image_url(hit.doc_id, hit.image_path)
        out["page_width"] = hit.page_width
        out["page_height"] = hit.page_height
        return out

    def citation(self, citation: Citation) -> dict[str, Any]:
        """A citation with URLs instead of paths: ``image_url`` (its page), ``crop_url`` (a
        figure's or table's own crop, when ingestion stored one in this knowledge base) and
        ``highlight_url`` (the page around the cited box, the box drawn)."""
        out = citation_json(citation, max_text=600)
        out.pop("crop_path", None)
        out["image_url"] = self.image_url(citation.doc_id, citation.image_path)
        crop = citation.crop_path
        kept = inside(self.images, self.images / citation.doc_id / Path(crop).name) if crop is not None else None
        out["crop_url"] = self.image_url(citation.doc_id, kept) if kept is not None else None
        box = citation.bbox
        out["highlight_url"] = (
            f"/api/documents/{citation.doc_id}/pages/{citation.page}/highlight?bbox="
            + ",".join(f"{v:.1f}" for v in box.as_list()) if box is not None else None
        )
        return out

    def answer(self, answer: Answer) -> dict[str, Any]:
        return answer_json(answer, hit=self.hit, citation=self.citation)

    def document(self, record: Any) -> dict[str, Any]:
        return {
            "doc_id": record.doc_id, "name": record.name, "pages": record.pages, "kind": record.kind,
            "size_bytes": record.size_bytes, "title": record.title, "points": record.points,
            "ingested_at": record.ingested_at, "seconds": record.seconds, "metadata": record.metadata,
        }

    def record(self, doc_id: str) -> Any:
        for record in self.kb.documents():
            if record.doc_id == doc_id:
                return record
        raise HTTPException(404, f"no document with doc id {doc_id!r} (see GET /api/documents)")

    # -- uploads -----------------------------------------------------------------------------
    async def save_uploads(self, request: Request) -> tuple[list[Path], dict[str, Any]]:
        """Write every file of one multipart request into ``uploads/``, or none of them: each
        streams into a temporary file there (bounded per file as it arrives,
        :func:`rag.server._uploads.receive_upload`) and is moved into place only when all were
        accepted and the ``metadata`` field (a JSON object, :mod:`rag.metadata`) checks against
        the knowledge base's keys. Returns the saved paths and that metadata."""
        from ingest import SUPPORTED_SUFFIXES

        upload = await receive_upload(
            request.headers, request.stream(), self.uploads, max_file_bytes=self.max_upload_bytes, suffixes=SUPPORTED_SUFFIXES
        )
        try:
            meta = self.upload_metadata(upload.fields.get("metadata"))
            targets = []
            for item in upload.files:
                target = self.uploads / item.name
                if target.resolve().parent != self.uploads.resolve():  # belt and braces: never outside uploads/
                    raise ConfigError(f"upload {item.name!r} would land outside the knowledge base")
                targets.append((item.tmp, target))
            for tmp, target in targets:
                await run_in_threadpool(replace_durably, tmp, target)
            return [target for _, target in targets], meta
        finally:
            for item in upload.files:
                item.tmp.unlink(missing_ok=True)

    def upload_metadata(self, text: str | None) -> dict[str, Any]:
        """An upload's ``metadata`` field, checked: a JSON object (:mod:`rag.metadata`) whose
        values have the types their keys already hold here (400 now, not a failed job later)."""
        import json

        from rag.metadata import check_metadata, check_types

        if text is None or not text.strip():
            return {}
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f'the metadata field is not JSON ({exc}); send an object, e.g. {{"team": "finance"}}') from None
        meta = check_metadata(data)
        return check_types(meta, self.kb.metadata_keys()) if meta else meta

    def close(self) -> None:
        self.jobs.close()

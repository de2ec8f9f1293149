"""What the app serves from: the knowledge base, its query lock, the ingest queue, uploads,
and the JSON shapes of hits, answers and documents."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from fastapi import HTTPException, UploadFile

from rag.atomic import replace_durably
from rag.errors import ConfigError
from rag.json_shapes import answer_json, citation_json, hit_json
from rag.server._jobs import JobQueue
from rag.server._security import inside, safe_upload_name
from rag.types import Answer, Citation, Hit

__all__ = ["Service"]

_CHUNK = 1024 * 1024


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
    async def save_uploads(self, uploads: list[UploadFile]) -> list[Path]:
        """Write every file of one request into ``uploads/``, or none of them: each is received
        into a temporary file first and moved into place only when all were accepted."""
        from ingest import SUPPORTED_SUFFIXES

        names = [safe_upload_name(u.filename, SUPPORTED_SUFFIXES) for u in uploads]
        if len(set(names)) != len(names):
            raise HTTPException(400, f"two files of this upload have the same name: {sorted(names)}")
        self.uploads.mkdir(parents=True, exist_ok=True)
        received: list[tuple[str, Path]] = []
        try:
            for upload, name in zip(uploads, names):
                received.append((name, await self._receive(upload, name)))
            targets = []
            for name, tmp in received:
                target = self.uploads / name
                if target.resolve().parent != self.uploads.resolve():  # belt and braces: never outside uploads/
                    raise ConfigError(f"upload {name!r} would land outside the knowledge base")
                targets.append((tmp, target))
            for tmp, target in targets:
                replace_durably(tmp, target)
            return [target for _, target in targets]
        finally:
            for _, tmp in received:
                tmp.unlink(missing_ok=True)

    async def _receive(self, upload: UploadFile, name: str) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=self.uploads)
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                while chunk := await upload.read(_CHUNK):
                    size += len(chunk)
                    if size > self.max_upload_bytes:
                        raise HTTPException(413, f"{name}: larger than the upload limit of {self.max_upload_bytes} bytes")
                    fh.write(chunk)
            if size == 0:
                raise HTTPException(400, f"{name}: the uploaded file is empty")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp)

    def close(self) -> None:
        self.jobs.close()

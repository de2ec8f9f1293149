"""Indexing: files -> ingestion -> embeddings -> points in the corpora, crash-safe.

A document's life: ``pending`` in the registry, its old points removed (a crash may
have left some), pages streamed through ingestion in batches, each batch embedded and
upserted, then ``complete``. Point ids are fixed by (document, page, kind, index), so a
run killed mid-way and started again converges on the same points.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from rag._manifest import DocumentRecord, DocumentRegistry
from rag.config import IngestConfig
from rag.errors import DocumentError, MmragError, UnreadableFileError
from rag.ids import sha256_file
from rag.types import CORPORA, DocumentInfo, FileReport, PageContent
from retrievers.base import CollectionSpec, Filter, VectorStore
from retrievers.corpora import Embedders, build_points

__all__ = ["Indexer"]

log = logging.getLogger("mmrag.index")


class Indexer:
    """Puts documents into the corpora and takes them out again."""

    def __init__(
        self,
        store: VectorStore,
        specs: dict[str, CollectionSpec],
        embedders: Embedders,
        registry: DocumentRegistry,
        image_root: Path,
        ingest_config: IngestConfig,
        page_batch: int = 16,
    ) -> None:
        self.store = store
        self.specs = specs
        self.embedders = embedders
        self.registry = registry
        self.image_root = image_root
        self.config = ingest_config
        self.page_batch = page_batch

    def ingest(
        self,
        paths: Iterable[Path],
        progress: bool | None = None,
        on_report: Callable[[FileReport], None] | None = None,
    ) -> list[FileReport]:
        reports = []
        for path in paths:
            report = self.ingest_one(Path(path), progress=progress)
            reports.append(report)
            if on_report is not None:
                on_report(report)
        return reports

    def ingest_one(self, path: Path, progress: bool | None = None) -> FileReport:
        from ingest import open_document

        started = time.perf_counter()
        try:
            if not path.is_file():
                raise UnreadableFileError(path, "not a file" if path.exists() else "no such file")
            doc_id = sha256_file(path)
            existing = self.registry.get(doc_id)
            if existing is not None and existing.status == "complete":
                if existing.path != str(path):
                    log.info("%s: same bytes as %s, already indexed", path, existing.path)
                return FileReport(path, "unchanged", doc_id, existing.pages, seconds=time.perf_counter() - started)
            previous = self.registry.by_path(str(path))
            if previous is not None and previous.doc_id != doc_id:
                log.info("%s changed: replacing %s", path, previous.doc_id[:12])
                self.delete(previous.doc_id)
            with open_document(path, self.config, image_dir=self.image_root) as reader:
                info = reader.info
                record = DocumentRecord(
                    doc_id=info.doc_id,
                    name=info.name,
                    path=str(path),
                    pages=info.page_count,
                    kind=info.kind,
                    status="pending",
                    size_bytes=info.size_bytes,
                    title=info.title,
                )
                self.registry.put(record)
                self._remove_points(info.doc_id)
                counts = self._index_pages(info, reader.pages(progress=progress))
            record.points = counts
            record.status = "complete"
            record.ingested_at = time.time()
            record.seconds = round(time.perf_counter() - started, 3)
            self.registry.put(record)
            log.info(
                "indexed %s: %d pages, %s points in %.1f s",
                path.name, info.page_count, counts, record.seconds,
            )
            return FileReport(path, "indexed", info.doc_id, info.page_count, seconds=record.seconds)
        except DocumentError as exc:
            self._forget_failed(path)
            log.warning("failed %s: %s", path, exc.reason)
            return FileReport(path, "failed", None, 0, str(exc), type(exc).__name__, time.perf_counter() - started)
        except MmragError as exc:
            self._forget_failed(path)
            log.warning("failed %s: %s", path, exc)
            return FileReport(path, "failed", None, 0, f"{path}: {exc}", type(exc).__name__, time.perf_counter() - started)

    def _index_pages(self, info: DocumentInfo, pages: Iterable[PageContent]) -> dict[str, int]:
        counts = {c: 0 for c in CORPORA}
        batch: list[PageContent] = []
        for content in pages:
            batch.append(content)
            if len(batch) >= self.page_batch:
                self._flush(info, batch, counts)
                batch = []
        if batch:
            self._flush(info, batch, counts)
        return counts

    def _flush(self, info: DocumentInfo, batch: Sequence[PageContent], counts: dict[str, int]) -> None:
        points = build_points(info, batch, self.embedders)
        for corpus, pts in points.items():
            if pts:
                self.store.upsert(self.specs[corpus].name, pts)
                counts[corpus] += len(pts)

    def _remove_points(self, doc_id: str) -> None:
        flt = Filter(doc_ids=(doc_id,))
        for spec in self.specs.values():
            self.store.delete(spec.name, flt)

    def _forget_failed(self, path: Path) -> None:
        """Leave nothing behind for a file that failed mid-way: no points, no images, no record."""
        record = self.registry.by_path(str(path))
        if record is not None and record.status == "pending":
            self.delete(record.doc_id)

    def delete(self, doc_id: str) -> DocumentRecord | None:
        """Remove a document's points, image files and record (in that order: a crash redoes it)."""
        record = self.registry.get(doc_id)
        self._remove_points(doc_id)
        shutil.rmtree(self.image_root / doc_id, ignore_errors=True)
        self.registry.remove(doc_id)
        return record

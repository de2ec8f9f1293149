"""Indexing: files -> ingestion -> embeddings -> points in the corpora, crash-safe.

A document's life: ``pending`` in the registry, its old points removed (a crash may
have left some), pages streamed through ingestion in batches, each batch embedded and
upserted, then ``complete``. Point ids are fixed by (document, page, kind, index), so a
run killed mid-way and started again converges on the same points.

Embedding a batch (onnxruntime releases the GIL) runs in one worker thread while the
caller's thread extracts the next batch, so extraction and embedding share the cores. At
most one batch is in flight; the worker has finished (and its error, if any, is raised in
the caller) before the document is marked complete or rolled back.
"""

from __future__ import annotations

import logging
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from rag._manifest import DocumentRecord, DocumentRegistry
from rag.config import IngestConfig
from rag.errors import DocumentError, MmragError, ResourceLimitError, UnreadableFileError
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
        page_ranges: Mapping[str, tuple[int, int]] | None = None,
    ) -> list[FileReport]:
        """``page_ranges`` maps a file name (or its stem) to the physical pages to index."""
        reports = []
        for path in paths:
            path = Path(path)
            ranges = page_ranges or {}
            page_range = ranges.get(path.name, ranges.get(path.stem))
            report = self.ingest_one(path, progress=progress, page_range=page_range)
            reports.append(report)
            if on_report is not None:
                on_report(report)
        return reports

    def ingest_one(self, path: Path, progress: bool | None = None, page_range: tuple[int, int] | None = None) -> FileReport:
        from ingest import open_document

        started = time.perf_counter()
        try:
            doc_id = _content_id(path, self.config.max_file_bytes)
            existing = self.registry.get(doc_id)
            wanted = list(page_range) if page_range is not None else None
            if existing is not None and existing.status == "complete" and existing.page_range == wanted:
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
                    page_range=wanted,
                )
                self.registry.put(record)
                self._remove_points(info.doc_id)
                counts = self._index_pages(info, _selected_pages(reader, page_range, progress))
            record.points = counts
            if page_range is not None:
                record.pages = counts["pages"]
            record.status = "complete"
            record.ingested_at = time.time()
            record.seconds = round(time.perf_counter() - started, 3)
            self.registry.put(record)
            log.info(
                "indexed %s: %d pages, %s points in %.1f s",
                path.name, info.page_count, counts, record.seconds,
            )
            return FileReport(path, "indexed", info.doc_id, record.pages, seconds=record.seconds)
        except DocumentError as exc:
            self._forget_failed(path)
            log.warning("failed %s: %s", path, exc.reason)
            return FileReport(path, "failed", None, 0, str(exc), type(exc).__name__, time.perf_counter() - started)
        except MmragError as exc:
            self._forget_failed(path)
            log.warning("failed %s: %s", path, exc)
            return FileReport(path, "failed", None, 0, f"{path}: {exc}", type(exc).__name__, time.perf_counter() - started)
        except Exception:  # a bug: leave nothing half-written behind, then let it surface
            try:
                self._forget_failed(path)
            except Exception:  # noqa: BLE001 - the original error matters more
                log.exception("%s: could not roll back after an unexpected error", path)
            raise

    def _index_pages(self, info: DocumentInfo, pages: Iterable[PageContent]) -> dict[str, int]:
        counts = {c: 0 for c in CORPORA}
        with _OneInFlight(f"mmrag-embed-{info.doc_id[:8]}") as worker:
            batch: list[PageContent] = []
            for content in pages:
                batch.append(content)
                if len(batch) >= self.page_batch:
                    worker.submit(self._flush, info, batch, counts)
                    batch = []
            if batch:
                worker.submit(self._flush, info, batch, counts)
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

    def recover(self) -> list[DocumentRecord]:
        """Roll back what a killed writer left behind; call with the write lock held.

        Pending documents (an ingest or a delete that did not finish) lose their points,
        image files and record; image folders of documents the registry does not know are
        removed. Returns the rolled-back records.
        """
        rolled = [r for r in self.registry.all() if r.status == "pending"]
        for record in rolled:
            log.warning("%s: rolling back an unfinished ingest or delete (doc %s)", record.path, record.doc_id[:12])
            self.delete(record.doc_id)
        if self.image_root.is_dir():
            known = {r.doc_id for r in self.registry.all()}
            for child in self.image_root.iterdir():
                if child.is_dir() and child.name not in known:
                    log.warning("removing orphaned image folder %s", child)
                    shutil.rmtree(child, ignore_errors=True)
        for tmp in self.registry.path.parent.glob("*.json.*.tmp"):  # an atomic write cut short
            tmp.unlink(missing_ok=True)
        return rolled

    def delete(self, doc_id: str) -> DocumentRecord | None:
        """Remove a document's points, image files and record.

        The record turns ``pending`` first, so the document is invisible at once and a crash
        part-way is rolled back by the next write (:meth:`recover`).
        """
        record = self.registry.get(doc_id)
        if record is not None and record.status != "pending":
            self.registry.put(replace(record, status="pending"))
        self._remove_points(doc_id)
        shutil.rmtree(self.image_root / doc_id, ignore_errors=True)
        self.registry.remove(doc_id)
        return record


class _OneInFlight:
    """Run calls in one background thread, at most one at a time, errors surfacing in the caller.

    :meth:`submit` first waits for the previous call (raising its error), so the caller
    runs at most one step ahead. Leaving the ``with`` block waits for the last call: its
    error is raised when the block ended normally; when the block is left by an error of
    its own, a worker error is logged and the caller's error propagates.
    """

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: Future[None] | None = None

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        self._wait()
        self._pending = self._pool.submit(fn, *args)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _OneInFlight:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            if exc is None:
                self._wait()
            else:
                try:
                    self._wait()
                except BaseException:  # noqa: BLE001 - the caller's error is the one to raise
                    log.warning("embedding batch failed while another error was raised", exc_info=sys.exc_info())
        finally:
            self._pool.shutdown(wait=True)


def _selected_pages(reader: object, page_range: tuple[int, int] | None, progress: bool | None) -> Iterable[PageContent]:
    """All pages, or only the physical pages ``first..last`` (clipped to the document)."""
    if page_range is None:
        return reader.pages(progress=progress)  # type: ignore[attr-defined]
    first, last = page_range
    count = reader.info.page_count  # type: ignore[attr-defined]
    return (reader.page(n) for n in range(max(1, first), min(last, count) + 1))  # type: ignore[attr-defined]


def _content_id(path: Path, max_bytes: int) -> str:
    """The sha256 of a readable regular file, or the DocumentError saying why not (before
    hashing: a file over ``max_bytes`` is refused without reading it)."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise UnreadableFileError(path, "no such file") from exc
    except OSError as exc:  # symlink loop, a parent that is a file, name too long
        raise UnreadableFileError(path, f"cannot stat: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise UnreadableFileError(path, "is a directory, expected a PDF or image file")
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFileError(path, "not a regular file (a FIFO, socket or device), expected a PDF or image file")
    if st.st_size > max_bytes:
        raise ResourceLimitError(path, f"file is {st.st_size:,} bytes, above ingest.max_file_bytes={max_bytes:,}")
    try:
        return sha256_file(path)
    except PermissionError as exc:
        raise UnreadableFileError(path, "permission denied") from exc
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot read: {exc.strerror or exc}") from exc

"""Indexing: files -> ingestion -> embeddings -> points in the corpora, crash-safe.

A document's life: ``pending`` in the registry, its old points removed (a crash may
have left some), pages streamed through ingestion in batches, each batch embedded and
upserted, then ``complete``. Point ids are fixed by (document, page, kind, index), so a
run killed mid-way and started again converges on the same points.

Embedding a batch (onnxruntime releases the GIL) runs in one worker thread while the
caller's thread extracts the next batch, so extraction and embedding share the cores. At
most one batch is in flight; the worker has finished (and its error, if any, is raised in
the caller) before the document is marked complete or rolled back. With extraction worker
processes, several documents are in flight and the batch embedded is one of whichever
document has pages ready (:mod:`rag._ready_order`); reports still come in input order.

What a file is (checked, hashed once: its doc id) and which of its pages are read is
``ingest``'s business (:func:`ingest.identify_file`, ``reader.pages(page_range=...)``); this
module only orders the work: which files, in which order, which pages are asked for.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest import FileIdentity, identify_file
from ingest.batch import pages_in_range
from rag._manifest import DocumentRecord, DocumentRegistry
from rag.config import IngestConfig
from rag.errors import DocumentError, FileChangedError, MmragError
from rag.ids import document_id
from rag.types import CORPORA, DocumentInfo, FileReport, PageContent
from retrievers.base import CollectionSpec, Filter, VectorStore
from retrievers.corpora import Embedders, build_points
from retrievers.payloads import scoped

if TYPE_CHECKING:  # pragma: no cover
    from ingest.parallel import ExtractionJob, ExtractionPool

__all__ = ["Indexer", "PageProgress"]

#: ``on_page(path, pages_read, pages_total)``: ingest progress within one file
PageProgress = Callable[[Path, int, int], None]

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
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.specs = specs
        self.embedders = embedders
        self.registry = registry
        self.image_root = image_root
        self.config = ingest_config
        self.page_batch = page_batch
        self._claimed: set[str] = set()  # doc ids given to extraction jobs not yet indexed
        #: the user's metadata of the documents of this run (:mod:`rag.metadata`): in each record and point
        self.metadata: dict[str, Any] = dict(metadata) if metadata is not None else {}

    def ingest(
        self,
        paths: Iterable[Path],
        progress: bool | None = None,
        on_report: Callable[[FileReport], None] | None = None,
        page_ranges: Mapping[str, tuple[int, int]] | None = None,
        on_page: PageProgress | None = None,
    ) -> list[FileReport]:
        """``page_ranges`` maps a file name (or its stem) to the physical pages to index;
        ``on_page(path, pages_read, pages_total)`` is called as each page of a file is read.
        ``progress``: one bar for the batch (:class:`rag._ingest_progress.IngestBar`: files
        done, pages read of the files being read); ``None`` shows it when this module's
        logger is at INFO or below.

        With ``ingest.workers`` above 1 and several files, documents are extracted in worker
        processes (a few files ahead) while this process embeds and writes whichever of them
        has pages ready (:mod:`rag._ready_order`); reports still come in input order, and the
        bar hears of each page a worker reads."""
        from rag._ingest_progress import IngestBar

        ranges = page_ranges or {}
        todo = [(Path(p), ranges.get(Path(p).name, ranges.get(Path(p).stem))) for p in paths]
        workers = self.config.extraction_workers
        reports = []
        with contextlib.ExitStack() as stack:
            show = log.isEnabledFor(logging.INFO) if progress is None else progress
            bar = stack.enter_context(IngestBar(len(todo), show and bool(todo)))
            pages_read = _both(bar.page, on_page) if bar.enabled else on_page
            if workers > 1 and len(todo) > 1:
                from ingest.parallel import ExtractionPool
                from rag._ready_order import ReadyFirst

                pool = stack.enter_context(
                    ExtractionPool(self.config, self.image_root, workers, self.page_batch, on_page=bar.page if bar.enabled else None)
                )
                ready = ReadyFirst(self, pool, todo, depth=workers + 1, on_page=pages_read,
                                   progress=False if bar.enabled else progress)
                try:
                    return ready.run(lambda report: bar.report(report, on_report), bar.page)
                finally:
                    self._claimed.clear()
            for path, page_range in todo:
                bar.page(path, 0, 0)  # its name on the bar while it is checked and opened
                report = self.ingest_one(
                    path, progress=False if bar.enabled else progress, page_range=page_range, on_page=pages_read,
                )
                reports.append(report)
                bar.report(report, on_report)
        self._claimed.clear()
        return reports

    def _plan(self, identity: FileIdentity, page_range: tuple[int, int] | None) -> _Plan:
        """What to do with a checked file. A document is a path with its content: the path's
        document with these bytes and this page range is unchanged; otherwise the file is
        indexed, under the path's own doc id when its bytes are the same (other pages, or an
        unfinished ingest), else as a new document replacing the path's old one. A path the
        knowledge base does not know whose bytes a complete document already holds (a copy) is
        that document: unchanged, not indexed twice. A new document's id is the sha256 of its
        bytes, or a hash of that and the path when another document (another path) holds those
        bytes (:func:`rag.ids.document_id`: a known path rewritten with another document's
        bytes), so the two keep their own points and images."""
        where = str(identity.path)
        sha = identity.sha256
        own = self.registry.by_path(where)
        wanted = list(page_range) if page_range is not None else None
        if own is None:
            copy_of = self._complete_copy(sha, wanted)
            if copy_of is not None:
                return _Plan(identity, copy_of)
        if own is not None and own.sha256 == sha:
            if own.status == "complete" and own.page_range == wanted and (not self.metadata or own.metadata == self.metadata):
                return _Plan(identity, own)  # other metadata given: indexed again, so every point carries it
            return _Plan(replace(identity, doc_id=own.doc_id), None)
        doc_id = document_id(sha, where, lambda d: d in self._claimed or self.registry.get(d) is not None)
        return _Plan(replace(identity, doc_id=doc_id), None, replaces=own)

    def _complete_copy(self, sha256: str, wanted: list[int] | None) -> DocumentRecord | None:
        """The complete document holding these bytes with this page range (and this run's
        metadata, when it gives some), if there is one."""
        for held in self.registry.holding(sha256):
            if held.status == "complete" and held.page_range == wanted and (not self.metadata or held.metadata == self.metadata):
                return held
        return None

    def ingest_one(
        self, path: Path, progress: bool | None = None, page_range: tuple[int, int] | None = None,
        job: ExtractionJob | None = None, identity: FileIdentity | None = None, on_page: PageProgress | None = None,
        changed: FileChangedError | None = None,
    ) -> FileReport:
        """Index one file; ``job``: its extraction already running in a worker process (under
        ``identity.doc_id``); ``identity``: the file already checked and hashed (by
        :func:`ingest.identify_file`); ``changed``: a first read (by :mod:`rag._ready_order`)
        found the file changing, this is the second.

        A file that changes while it is read (its bytes at the end are not those hashed at the
        start) is rolled back and read again, once; changing again, it fails with
        :class:`~rag.errors.FileChangedError`. Nothing is recorded half old, half new."""
        started = time.perf_counter()
        try:
            for attempt in (1, 2) if changed is None else (2,):
                try:
                    return self._ingest_file(path, progress, page_range, job, identity, on_page, started)
                except FileChangedError as exc:
                    self._forget_failed(path, job)
                    if attempt == 2:
                        raise FileChangedError(path, f"{exc.reason}, twice; ingest it again when nothing is writing it") from exc
                    log.warning("%s: %s; reading it again", path, exc.reason)
                    job, identity = None, None
            raise AssertionError("unreachable")  # pragma: no cover
        except MmragError as exc:
            self._forget_failed(path, job)
            return self._failure(path, exc, started)
        except Exception:  # a bug: leave nothing half-written behind, then let it surface
            try:
                self._forget_failed(path, job)
            except Exception:  # noqa: BLE001 - the original error matters more
                log.exception("%s: could not roll back after an unexpected error", path)
            raise

    def _failure(self, path: Path, exc: MmragError, started: float) -> FileReport:
        """The report of a file that failed with ``exc`` (already rolled back)."""
        if isinstance(exc, DocumentError):
            log.warning("failed %s: %s", path, exc.reason)
            return FileReport(path, "failed", None, 0, str(exc), type(exc).__name__, time.perf_counter() - started)
        log.warning("failed %s: %s", path, exc)
        return FileReport(path, "failed", None, 0, f"{path}: {exc}", type(exc).__name__, time.perf_counter() - started)

    def _ingest_file(
        self, path: Path, progress: bool | None, page_range: tuple[int, int] | None,
        job: ExtractionJob | None, identity: FileIdentity | None, on_page: PageProgress | None, started: float,
    ) -> FileReport:
        if identity is None:
            identity = identify_file(path, self.config)
        metadata = self._metadata_of(path)
        if job is None:
            plan = self._plan(identity, page_range)
            if plan.existing is not None:
                if plan.existing.path != str(path):
                    log.info("%s: same bytes as %s, already indexed", path, plan.existing.path)
                return FileReport(path, "unchanged", plan.existing.doc_id, plan.existing.pages, seconds=time.perf_counter() - started)
            identity, previous = plan.identity, plan.replaces
        else:  # planned by the look-ahead, under identity.doc_id (the worker writes its images there)
            unchanged, previous = self._job_previous(path, identity, page_range, job, started)
            if unchanged is not None:
                return unchanged
        if previous is not None:
            log.info("%s changed: replacing %s", path, previous.doc_id[:12])
            self.delete(previous.doc_id)
        try:
            if job is None:
                source = _local_source(identity, self.config, self.image_root, page_range, progress)
            else:
                source = _job_source(job)
            with source as (info, pages):
                record = self._register(path, identity, info, page_range, metadata)
                if on_page is not None:
                    pages = _counted(pages, path, pages_in_range(info.page_count, page_range), on_page)
                notes: list[str] = []
                counts = self._index_pages(info, _noting(pages, notes), metadata)
        except DocumentError as exc:
            if (changed := _changed(identity, exc)) is not exc:
                raise changed from exc
            raise
        finally:
            self._claimed.discard(identity.doc_id)
        return self._complete(record, identity, counts, page_range, notes, started)

    def _metadata_of(self, path: Path) -> dict[str, Any]:
        """The metadata a file's points carry: this run's, else (a changed file) what it had."""
        before = self.registry.by_path(str(path))
        return dict(self.metadata if self.metadata or before is None else before.metadata)

    def _job_previous(
        self, path: Path, identity: FileIdentity, page_range: tuple[int, int] | None, job: ExtractionJob, started: float,
    ) -> tuple[FileReport | None, DocumentRecord | None]:
        """For a file whose extraction job runs under ``identity.doc_id``: its report when the
        path's document already holds it (the same file named twice in one batch; the job is
        drained), else the path's document it replaces (None: none)."""
        previous = self.registry.by_path(str(path))
        wanted = list(page_range) if page_range is not None else None
        if previous is not None and previous.sha256 == identity.sha256 and previous.status == "complete" \
                and previous.page_range == wanted and (not self.metadata or previous.metadata == self.metadata):
            _drain(job)
            self._claimed.discard(identity.doc_id)
            if identity.doc_id != previous.doc_id:
                shutil.rmtree(self.image_root / identity.doc_id, ignore_errors=True)
            return FileReport(path, "unchanged", previous.doc_id, previous.pages, seconds=time.perf_counter() - started), None
        if previous is not None and previous.doc_id == identity.doc_id:
            previous = None
        return None, previous

    def _register(
        self, path: Path, identity: FileIdentity, info: DocumentInfo, page_range: tuple[int, int] | None,
        metadata: Mapping[str, Any],
    ) -> DocumentRecord:
        """The document's ``pending`` record put, and any points a crash left under its id removed."""
        record = DocumentRecord(
            doc_id=info.doc_id,
            name=info.name,
            path=str(path),
            pages=info.page_count,
            kind=info.kind,
            status="pending",
            size_bytes=info.size_bytes,
            title=info.title,
            author=info.author,
            page_range=list(page_range) if page_range is not None else None,
            sha256=identity.sha256,
            metadata=dict(metadata),
        )
        self.registry.put(record)
        self._remove_points(info.doc_id)
        return record

    def _complete(
        self, record: DocumentRecord, identity: FileIdentity, counts: dict[str, int],
        page_range: tuple[int, int] | None, notes: Sequence[str], started: float,
    ) -> FileReport:
        """Every page written: the record made ``complete`` (unless the file changed meanwhile)."""
        path = Path(record.path)
        reason = identity.changed()
        if reason is not None:
            raise FileChangedError(path, reason)
        record.points = counts
        if page_range is not None:
            record.pages = counts["pages"]
        self.store.flush()  # the points on disk before the record says complete (not after every batch)
        record.status = "complete"
        record.ingested_at = time.time()
        record.seconds = round(time.perf_counter() - started, 3)
        self.registry.put(record)
        log.info("indexed %s: %d pages, %s points in %.1f s", path.name, record.pages, counts, record.seconds)
        return FileReport(path, "indexed", record.doc_id, record.pages, seconds=record.seconds, notes=tuple(notes))

    def _index_pages(
        self, info: DocumentInfo, pages: Iterable[PageContent], metadata: Mapping[str, Any] | None = None
    ) -> dict[str, int]:
        counts = {c: 0 for c in CORPORA}
        with _OneInFlight(f"mmrag-embed-{info.doc_id[:8]}") as worker:
            batch: list[PageContent] = []
            for content in pages:
                batch.append(content)
                if len(batch) >= self.page_batch:
                    worker.submit(self._flush, info, batch, counts, metadata)
                    batch = []
            if batch:
                worker.submit(self._flush, info, batch, counts, metadata)
        return counts

    def _flush(
        self, info: DocumentInfo, batch: Sequence[PageContent], counts: dict[str, int],
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Embed and write one batch; ``metadata`` (the document's) goes into every payload."""
        points = build_points(info, batch, self.embedders)
        for corpus, pts in points.items():
            if pts:
                if metadata:
                    pts = [replace(p, payload=scoped(p.payload, metadata)) for p in pts]
                self.store.upsert(self.specs[corpus].name, pts)
                counts[corpus] += len(pts)

    def _remove_points(self, doc_id: str) -> None:
        flt = Filter(doc_ids=(doc_id,))
        for spec in self.specs.values():
            self.store.delete(spec.name, flt)

    def _forget_failed(self, path: Path, job: ExtractionJob | None = None) -> None:
        """Leave nothing behind for a file that failed mid-way: no points, no images, no record.

        A worker that failed before this process registered the document may still have
        written page images: its folder goes too (the document is not indexed, or it would
        not have been submitted)."""
        record = self.registry.by_path(str(path))
        if record is not None and record.status == "pending":
            self.delete(record.doc_id)
        if job is not None and job.doc_id is not None:
            known = self.registry.get(job.doc_id)
            if known is None or known.status == "pending":
                shutil.rmtree(self.image_root / job.doc_id, ignore_errors=True)

    def recover(self) -> list[DocumentRecord]:
        """Roll back what a killed writer left behind; call with the write lock held.

        Pending documents (an ingest or a delete that did not finish) lose their points,
        image files and record; image folders of documents the registry does not know are
        removed. Returns the rolled-back records.
        """
        rolled = self.registry.pending()
        for record in rolled:
            log.warning("%s: rolling back an unfinished ingest or delete (doc %s)", record.path, record.doc_id[:12])
            self.delete(record.doc_id)
        if self.image_root.is_dir():
            known = set(self.registry.complete_ids()) | {r.doc_id for r in self.registry.pending()}
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
        self.store.flush()  # the points gone on disk before the record is
        shutil.rmtree(self.image_root / doc_id, ignore_errors=True)
        self.registry.remove(doc_id)
        return record


@dataclass(frozen=True)
class _Plan:
    """:meth:`Indexer._plan`'s answer: ``existing`` is the path's complete document that makes
    the file unchanged; else the file is indexed under ``identity.doc_id``, replacing
    ``replaces`` (the path's document with other bytes)."""

    identity: FileIdentity
    existing: DocumentRecord | None
    replaces: DocumentRecord | None = None


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


def _noting(pages: Iterable[PageContent], notes: list[str]) -> Iterator[PageContent]:
    """``pages`` unchanged, each page's notes (what was refused or skipped on it) kept in ``notes``."""
    for content in pages:
        notes.extend(content.page.notes)
        yield content


def _changed(identity: FileIdentity, exc: DocumentError) -> DocumentError:
    """A file rewritten under the reader often reads as corrupt: its error then says it changed."""
    reason = identity.changed()
    if reason is not None and not isinstance(exc, FileChangedError):
        return FileChangedError(identity.path, reason)
    return exc


def _both(first: PageProgress, second: PageProgress | None) -> PageProgress:
    def both(path: Path, done: int, total: int) -> None:
        first(path, done, total)
        if second is not None:
            second(path, done, total)

    return both


def _counted(pages: Iterable[PageContent], path: Path, total: int, on_page: PageProgress) -> Iterator[PageContent]:
    """``pages``, telling ``on_page`` how many were read so far."""
    on_page(path, 0, total)
    for done, content in enumerate(pages, 1):
        yield content
        on_page(path, done, total)


@contextlib.contextmanager
def _local_source(
    identity: FileIdentity, config: IngestConfig, image_root: Path, page_range: tuple[int, int] | None,
    progress: bool | None,
) -> Iterator[tuple[DocumentInfo, Iterable[PageContent]]]:
    """The document read in this process (the embedding thread overlaps it)."""
    from ingest import open_document

    with open_document(identity.path, config, image_dir=image_root, identity=identity) as reader:
        yield reader.info, reader.pages(progress, page_range=page_range)


@contextlib.contextmanager
def _job_source(job: ExtractionJob) -> Iterator[tuple[DocumentInfo, Iterable[PageContent]]]:
    """The document read by a worker process, streamed back in batches."""
    yield job.info(), job.pages()


def _drain(job: ExtractionJob) -> None:
    try:
        for _ in job.batches():
            pass
    except DocumentError:
        pass

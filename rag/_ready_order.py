"""Several documents at once: embed whichever document has pages ready, report in input order.

With extraction workers (:mod:`ingest.parallel`) a few files are read ahead of this process.
Taken strictly in input order, this process sat idle while a slow document (OCR on every
page) was read, with the next document's pages long ready, and embedded those only afterwards.
:class:`ReadyFirst` embeds and writes a batch of whichever document in flight has one (the
earliest file when several have), so embedding overlaps extraction on every core. What a
user sees does not move:

- reports (and ``--json``) come out in input order, each once every file before it has one;
- each document keeps its own life (``pending`` -> ``complete``, old points removed first),
  its pages embedded in the batches an in-order run makes, under the same point ids;
- a document that fails is rolled back alone; the others go on.

Bounds: at most ``depth`` extraction jobs being read or queued for a worker, and at most twice
that not consumed to their end (a worker that finished a document starts the next one while
this process still embeds the last batches of the first, instead of waiting for it), one batch
being embedded (one thread, :class:`_OneBatch`) and one in hand, fewer than ``page_batch`` pages
gathered per document, and whatever the pool holds for documents not consumed yet.

A file the look-ahead does not send to a worker (already indexed, a copy of a file being
read, a file that cannot be identified), and a file that shares its path or its bytes with an
earlier file of the run, are taken at their turn, once every file before them has its report,
by :meth:`Indexer.ingest_one`, exactly as in an in-order run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest import FileIdentity, identify_file
from ingest.batch import pages_in_range
from rag._manifest import DocumentRecord
from rag.errors import DocumentError, FileChangedError, MmragError
from rag.types import CORPORA, DocumentInfo, FileReport, PageContent

if TYPE_CHECKING:  # pragma: no cover
    from ingest.parallel import ExtractionJob, ExtractionPool
    from rag._indexer import Indexer, PageProgress

__all__ = ["ReadyFirst"]

log = logging.getLogger("mmrag.index")


@dataclass(eq=False)
class _Doc:
    """One document indexed from its extraction job as its batches come."""

    index: int
    path: Path
    page_range: tuple[int, int] | None
    job: ExtractionJob
    identity: FileIdentity
    started: float = field(default_factory=time.perf_counter)
    info: DocumentInfo | None = None
    record: DocumentRecord | None = None  # registered (pending) once the info came
    metadata: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CORPORA})
    notes: list[str] = field(default_factory=list)
    gathered: list[PageContent] = field(default_factory=list)  # pages not yet sent to embedding
    read: int = 0
    total: int = 0
    ended: bool = False  # its job's last message came
    dropped: bool = False  # failed (rolled back) while its job still ran: its messages are passed over


class ReadyFirst:
    """The files of one ingest with an extraction pool (see the module's doc)."""

    def __init__(
        self, indexer: Indexer, pool: ExtractionPool, todo: Sequence[tuple[Path, tuple[int, int] | None]],
        depth: int, on_page: PageProgress | None, progress: bool | None,
    ) -> None:
        self.indexer = indexer
        self.pool = pool
        self.todo = todo
        self.ahead = _Lookahead(indexer, pool, todo, depth)
        self.on_page = on_page
        self.progress = progress  # of a file read in this process (at its turn)
        self.docs: dict[int, _Doc] = {}  # by input index: documents whose job runs
        self.at_turn: dict[int, ExtractionJob] = {}  # jobs of files that share a path or bytes with an earlier one
        self.reports: dict[int, FileReport] = {}  # finished, waiting for the files before them
        self.again: dict[int, FileChangedError] = {}  # changed while read: read again in-process at its turn
        self.embed = _OneBatch()

    def run(self, emit: Callable[[FileReport], None], opening: PageProgress) -> list[FileReport]:
        """Index every file; ``emit`` hears each report in input order; ``opening(path, 0, 0)``
        as a file is taken at its turn (its name on the bar while it is checked)."""
        out: list[FileReport] = []
        try:
            while len(out) < len(self.todo):
                self._top_up(len(out))
                i = len(out)
                if i in self.reports:
                    out.append(self.reports.pop(i))
                    emit(out[-1])
                elif i in self.docs:
                    self._step()
                elif self.ahead.waits(i):  # heavier files went first: its job starts as one of theirs ends
                    if self.docs:
                        self._step()
                    else:
                        self._top_up(len(out), first=i)
                else:
                    out.append(self._turn(i, opening))
                    emit(out[-1])
        except Exception:  # a bug: leave nothing half-written behind, then let it surface
            self._roll_back()
            raise
        finally:
            self.embed.close()
        return out

    def _top_up(self, reported: int, first: int | None = None) -> None:
        jobs = [d.job for d in self.docs.values()] + list(self.at_turn.values())
        reading = sum(not job.future.done() for job in jobs)  # a worker's, or queued for one
        for i, job, identity in self.ahead.top_up(reading, len(jobs), first):
            path, page_range = self.todo[i]
            earlier = range(reported, i)
            if any(str(self.todo[j][0]) == str(path) or self.ahead.sha.get(j) == identity.sha256 for j in earlier):
                self.at_turn[i] = job
            else:
                self.docs[i] = _Doc(i, path, page_range, job, identity)

    def _turn(self, i: int, opening: PageProgress) -> FileReport:
        """File ``i`` taken in order, every file before it done, as :meth:`Indexer.ingest` takes it."""
        self.embed.wait()
        self._settle()
        path, page_range = self.todo[i]
        opening(path, 0, 0)
        if i in self.again:
            return self.indexer.ingest_one(path, self.progress, page_range, on_page=self.on_page, changed=self.again.pop(i))
        job = self.at_turn.pop(i, None)
        identity = job.identity if job is not None else self.ahead.identities.pop(i, None)
        return self.indexer.ingest_one(path, self.progress, page_range, job=job, identity=identity, on_page=self.on_page)

    def _step(self) -> None:
        """Take the next message of whichever document has one."""
        job, kind, payload = self.pool.next_ready([d.job for _, d in sorted(self.docs.items())])
        doc = next(d for d in self.docs.values() if d.job is job)
        doc.ended = kind in ("done", "error")
        if doc.ended and doc.dropped:
            del self.docs[doc.index]
            self.indexer._forget_failed(doc.path, doc.job)  # what the worker wrote since
        elif doc.dropped:
            pass
        else:
            try:
                if kind == "info":
                    self._begin(doc, payload)
                elif kind == "pages":
                    self._pages(doc, payload)
                elif kind == "done":
                    self._done(doc)
                else:
                    self.embed.wait()  # a batch of its in flight is written before the rollback
                    self._fail(doc, payload)
            except MmragError as exc:
                self._fail(doc, exc)
        self._settle()

    def _begin(self, doc: _Doc, info: DocumentInfo) -> None:
        """The document opened: replace the path's old document, register it ``pending``."""
        indexer = self.indexer
        doc.info, doc.started = info, time.perf_counter()
        metadata = indexer._metadata_of(doc.path)
        unchanged, previous = indexer._job_previous(doc.path, doc.identity, doc.page_range, doc.job, doc.started)
        if unchanged is not None:  # its job was drained
            doc.ended = True
            del self.docs[doc.index]
            self.reports[doc.index] = unchanged
            return
        if previous is not None:
            log.info("%s changed: replacing %s", doc.path, previous.doc_id[:12])
            indexer.delete(previous.doc_id)
        doc.metadata = metadata
        doc.record = indexer._register(doc.path, doc.identity, info, doc.page_range, metadata)
        doc.total = pages_in_range(info.page_count, doc.page_range)
        if self.on_page is not None:
            self.on_page(doc.path, 0, doc.total)

    def _pages(self, doc: _Doc, batch: Sequence[PageContent]) -> None:
        for content in batch:
            doc.notes.extend(content.page.notes)
            doc.gathered.append(content)
            if len(doc.gathered) >= self.indexer.page_batch:
                self._send(doc)
            doc.read += 1
            if self.on_page is not None:
                self.on_page(doc.path, doc.read, doc.total)

    def _send(self, doc: _Doc) -> None:
        self.embed.submit(doc, self.indexer._flush, doc.info, doc.gathered, doc.counts, doc.metadata)
        doc.gathered = []

    def _done(self, doc: _Doc) -> None:
        if doc.gathered:
            self._send(doc)
        self.embed.wait()
        if self.embed.failed_of(doc):
            return  # rolled back by _settle
        del self.docs[doc.index]
        self.indexer._claimed.discard(doc.identity.doc_id)
        assert doc.record is not None
        self.reports[doc.index] = self.indexer._complete(doc.record, doc.identity, doc.counts, doc.page_range, doc.notes, doc.started)

    def _fail(self, doc: _Doc, exc: BaseException) -> None:
        """Roll the document back (no batch of it in flight) and report it, or read it again at
        its turn when the file changed; its job, if still running, is passed over to its end."""
        from rag._indexer import _changed

        if doc.dropped or doc.index in self.reports or doc.index in self.again:
            return
        if not isinstance(exc, MmragError):
            raise exc  # a bug
        self.indexer._forget_failed(doc.path, doc.job)
        self.indexer._claimed.discard(doc.identity.doc_id)
        exc = _changed(doc.identity, exc) if isinstance(exc, DocumentError) else exc
        if isinstance(exc, FileChangedError):
            log.warning("%s: %s; reading it again", doc.path, exc.reason)
            self.again[doc.index] = exc
        else:
            self.reports[doc.index] = self.indexer._failure(doc.path, exc, doc.started)
        if doc.ended:
            self.docs.pop(doc.index, None)
        else:
            doc.dropped = True

    def _settle(self) -> None:
        """Documents whose embedding failed: rolled back and reported (a bug is raised)."""
        if not self.embed.failed:
            return
        self.embed.wait()
        failed, self.embed.failed = self.embed.failed, []
        for doc, exc in failed:
            self._fail(doc, exc)

    def _roll_back(self) -> None:
        """After a bug: every document in flight rolled back (no batch of theirs still being written)."""
        self.embed.wait()  # keeps a batch's error, never raises it
        for doc in list(self.docs.values()):
            try:
                self.indexer._forget_failed(doc.path, doc.job)
            except Exception:  # noqa: BLE001 - the original error matters more
                log.exception("%s: could not roll back after an unexpected error", doc.path)


class _OneBatch:
    """One batch embedded at a time, in one background thread, whichever document it is of.

    :meth:`submit` first waits for the batch in flight; a batch's error is kept with its
    document in :attr:`failed` (the caller rolls that document back), and a document with a
    failed batch gets no more batches."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmrag-embed")
        self._pending: tuple[_Doc, Future[None]] | None = None
        self.failed: list[tuple[_Doc, BaseException]] = []

    def submit(self, doc: _Doc, fn: Callable[..., None], *args: object) -> None:
        self.wait()
        if not self.failed_of(doc):
            self._pending = (doc, self._pool.submit(fn, *args))

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            doc, future = pending
            exc = future.exception()
            if exc is not None:
                self.failed.append((doc, exc))

    def failed_of(self, doc: _Doc) -> bool:
        return any(d is doc for d, _ in self.failed)

    def close(self) -> None:
        self.wait()
        self._pool.shutdown(wait=True)


#: how many files, from the earliest not yet sent, the look-ahead plans and picks the heaviest from
WINDOW = 16


def estimated_cost(identity: FileIdentity) -> int:
    """How long a worker will take to read a file, as a number to rank files by: its size in bytes.

    Reading time follows what is drawn on the pages more than how many there are (a scanned page
    needs OCR and holds an image of the page; a page of text costs little and holds few bytes):
    on the public set the ranking by size sends the two heaviest files (a 352-page book, 12.6
    worker CPU s, and a paper of 14 pages with large figures, 7.0 s) out first. It needs no
    look inside the file (the size is known from the check), so it costs nothing in the process
    that embeds; a page range is not taken into account."""
    return identity.size


class _Lookahead:
    """Submits the files that need reading to the pool, so workers stay busy while this process
    embeds; at most ``depth`` jobs are being read at a time (see :meth:`top_up`). Files are
    planned (:meth:`Indexer._plan`) in input order, up to :data:`WINDOW` files from the earliest
    one not yet sent, and of those
    the heaviest (:func:`estimated_cost`; the earliest of equals) is sent first: a long document
    started last would leave one worker reading it alone at the end of the run while the other
    core waits (longest processing time first). A file waits at most until the
    :data:`WINDOW` - 1 files after it have gone out, so its report (reports come in input
    order) is not held back for long. Each file is planned under the doc id the plan gives it
    (ids given to jobs not yet indexed are not given again: two copies of one file get two ids).

    Each file is identified (checked and hashed) once, here; its identity goes with the job
    to the worker and back to the indexer. A file that cannot be identified is left to its
    turn, where the same check reports it."""

    def __init__(self, indexer: Indexer, pool: ExtractionPool, todo: Sequence[tuple[Path, tuple[int, int] | None]],
                 depth: int, window: int | None = None) -> None:
        window = WINDOW if window is None else window
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.indexer = indexer
        self.pool = pool
        self.todo = todo
        self.depth = depth
        self.window = window
        self.identities: dict[int, FileIdentity] = {}  # of files not sent to a worker
        self.sha: dict[int, str] = {}  # every identified file's bytes
        self.reading: set[str] = set()  # the sha256 of new documents sent (or to be sent) to the workers
        self.waiting: dict[int, FileIdentity] = {}  # planned to be read, not sent yet (by input index)
        self.next = 0  # the next file to plan

    def waits(self, i: int) -> bool:
        """Whether file ``i`` is to be read by a worker and has not been sent yet."""
        return i in self.waiting

    def top_up(self, reading: int, held: int, first: int | None = None) -> list[tuple[int, ExtractionJob, FileIdentity]]:
        """Send the heaviest planned file while fewer than ``depth`` jobs are ``reading`` (not
        finished by their worker) and fewer than twice that are ``held`` (not consumed to their
        end: a job read to its end holds its last batches until this process has embedded the
        ones before), planning the window as it moves; the jobs submitted. ``first``: a waiting
        file to send now whatever is out (its report is due and nothing else is in flight)."""
        submitted = [] if first is None else [self._send(first)]
        while True:
            self._plan_window()
            if not self.waiting or reading + len(submitted) >= self.depth or held + len(submitted) >= 2 * self.depth:
                return submitted
            submitted.append(self._send(max(self.waiting, key=lambda i: (estimated_cost(self.waiting[i]), -i))))

    def _plan_window(self) -> None:
        """Plan files in input order up to ``window`` files from the earliest one waiting (files
        not to be read, already indexed or copies, are planned past without counting)."""
        while self.next < len(self.todo) and self.next < min(self.waiting, default=self.next) + self.window:
            self._plan(self.next)
            self.next += 1

    def _plan(self, i: int) -> None:
        path, page_range = self.todo[i]
        try:
            identity = identify_file(path, self.indexer.config)
        except DocumentError:
            return  # reported at its turn
        self.sha[i] = identity.sha256
        plan = self.indexer._plan(identity, page_range)
        if (plan.existing is None and identity.sha256 in self.reading
                and self.indexer.registry.by_path(str(path)) is None):
            # a copy of a file being read: at its turn that one is indexed and this is unchanged
            self.identities[i] = identity
            return
        if plan.existing is not None:
            self.identities[i] = plan.identity
            return
        self.indexer._claimed.add(plan.identity.doc_id)
        self.reading.add(identity.sha256)
        self.waiting[i] = plan.identity

    def _send(self, i: int) -> tuple[int, ExtractionJob, FileIdentity]:
        identity = self.waiting.pop(i)
        path, page_range = self.todo[i]
        return i, self.pool.submit(path, page_range, identity=identity), identity

"""Extract documents in worker processes while the caller embeds and writes.

Extraction (PyMuPDF, figure and table finding, OCR, page images) is single-threaded
Python and C that holds the GIL, so a second core helps only from another process.
:class:`ExtractionPool` runs whole documents in a ``ProcessPoolExecutor``; each job streams
its results back in order, one message per batch of pages, so the caller consumes
document 1 while document 2 is being read; ``on_page(path, pages_read, pages_total)`` hears
of each page a worker has read, and of a document being opened (``0, 0``), while the caller
waits for results, for a progress bar::

    with ExtractionPool(config, image_root, workers=2) as pool:
        jobs = [pool.submit(path) for path in paths]
        for job in jobs:
            info = job.info()          # raises the file's DocumentError
            for batch in job.batches():
                ...

A document is one job (never split across processes): its glyph repair and running
headers are learned page by page, so a document extracted in a worker gives exactly the
records an in-process read gives. What comes back are the same frozen dataclasses
(``DocumentInfo``, ``PageContent``); a :class:`rag.errors.DocumentError` raised in the
worker is raised again by :meth:`ExtractionJob.info` / :meth:`ExtractionJob.batches`, with
the same class and message. A worker that dies (a crash inside a native library) fails the
documents it was reading with :class:`rag.errors.WorkerDiedError`, naming each file.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import queue
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import IngestConfig
from rag.errors import MmragError, WorkerDiedError
from rag.types import DocumentInfo, PageContent

from ingest import _heap
from ingest._engine import import_pymupdf
from ingest._files import FileIdentity
from ingest.batch import pages_in_range

__all__ = ["ExtractionPool", "ExtractionJob"]

logger = logging.getLogger("ingest")
_POLL_S = 0.5  # how often a waiting consumer checks that the job's worker is alive
#: times a job is run again after the pool broke without a worker seen to crash before the job is blamed
MAX_RERUNS = 2
_QUEUE: Any = None  # the worker process's end of the results queue (set by _init_worker)


@dataclass(frozen=True)
class _Failure:
    """An exception made portable: DocumentError's ``__init__`` takes (path, reason), which
    pickle's default ``cls(*args)`` would not call correctly."""

    cls: type[BaseException]
    args: tuple[Any, ...]
    attrs: dict[str, Any]

    @classmethod
    def of(cls, exc: BaseException) -> _Failure:
        return cls(type(exc), exc.args, dict(vars(exc)))

    def rebuild(self) -> BaseException:
        exc = self.cls.__new__(self.cls)
        BaseException.__init__(exc, *self.args)
        vars(exc).update(self.attrs)
        return exc


def _init_worker(results: Any, level: int, parent: int) -> None:
    global _QUEUE
    _keep_inherited_pages_shared()
    _die_with(parent)
    _drop_inherited_locks()
    from ingest._ocr import use_in_worker

    use_in_worker()
    _QUEUE = results
    logging.getLogger("ingest").setLevel(level)


def _keep_inherited_pages_shared() -> None:
    """Move every object inherited from the caller out of the garbage collector's reach.

    A forked worker shares the caller's memory until it writes to it; a collection that
    walks the inherited objects writes to each one's header, copying most of the caller's
    Python heap (its modules, a loaded model's objects) into every worker. Frozen, they are
    never walked (the worker does not free them either: they belong to the caller's state)."""
    import gc

    gc.freeze()


def _load_before_fork() -> None:
    """Import PyMuPDF in the caller before its workers fork, so that they share one copy.

    ``import pymupdf`` also loads the layout model of PyMuPDF's table finder (ONNX sessions,
    ~1.5 s of CPU and ~40 MB of private memory in each process that imports it). Imported after the fork,
    every worker loaded its own; imported before, the workers inherit the loaded model
    copy-on-write. The workers never run it themselves: the table finder runs in a process
    forked from the worker (:func:`ingest._budget.run_killable`), as it did before."""
    from importlib.util import find_spec

    if find_spec("pymupdf") is not None:  # missing: reported where a document needs it, as before
        import_pymupdf()


def _die_with(parent: int) -> None:
    """End this worker when the ingesting process ends, even by SIGKILL (Linux): a forked
    worker holds the parent's descriptors, the knowledge base's write lock among them, so an
    orphan would keep the next ``ingest`` out until it finished its document."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _drop_inherited_locks() -> None:
    """Close the descriptors a forked worker inherited that carry a file lock (Linux shows
    them in /proc/self/fdinfo): the knowledge base's write locks must end with the process
    that took them, not with its last worker."""
    fdinfo = Path("/proc/self/fdinfo")
    if not fdinfo.is_dir():
        return
    for entry in fdinfo.iterdir():
        try:
            if "lock:" in entry.read_text():
                os.close(int(entry.name))
        except (OSError, ValueError):
            continue


def _extract(job_id: int, path: Path, config: IngestConfig, image_root: Path | None,
             page_range: tuple[int, int] | None, batch_pages: int, identity: FileIdentity | None) -> None:
    """Runs in a worker: put ("info", DocumentInfo), ("pages", [PageContent, ...])...,
    then ("done", None) or ("error", _Failure) on the results queue; ("read", (n, total))
    as each page is read, from (0, total) on, for the caller's progress."""
    from ingest.reader import open_document

    put = _QUEUE.put
    put((job_id, "start", os.getpid()))
    try:
        with open_document(path, config, image_dir=image_root, identity=identity) as reader:
            put((job_id, "info", reader.info))
            total = pages_in_range(reader.info.page_count, page_range)
            put((job_id, "read", (0, total)))
            batch: list[PageContent] = []
            for read, content in enumerate(reader.pages(progress=False, page_range=page_range), 1):
                put((job_id, "read", (read, total)))
                batch.append(content)
                if len(batch) >= batch_pages:
                    put((job_id, "pages", batch))
                    batch = []
                    _wait_until_sent(_QUEUE)
            if batch:
                put((job_id, "pages", batch))
    except MmragError as exc:  # the file's fault (or a missing extra): reported, not a crash
        put((job_id, "error", _Failure.of(exc)))
        return
    finally:
        _heap.trim()  # the document's high-water mark is not kept while the worker waits for the next
    put((job_id, "done", None))


def _wait_until_sent(results: Any) -> None:
    """Wait until this worker's queued messages are in the pipe (the last one may still be on
    its way in): the pipe empties only as fast as the caller reads, so a worker faster than the
    caller's embedding keeps about two batches ahead of it instead of buffering the rest of the
    document (``multiprocessing.Queue.put`` appends to an unbounded buffer in the sending
    process, ``_buffer``, that its feeder thread writes out). A worker that has to wait gives its
    heap's free memory back first (:mod:`ingest._heap`): otherwise it waits holding the high-water
    mark of its heaviest page."""
    unsent = getattr(results, "_buffer", None)
    trimmed = False
    while unsent:
        time.sleep(0.005)
        if unsent and not trimmed:  # idle until the caller reads: give back what the last pages freed
            _heap.trim()
            trimmed = True


class ExtractionJob:
    """One document being extracted in a worker; consume :meth:`info`, then :meth:`batches`."""

    def __init__(self, pool: ExtractionPool, job_id: int, path: Path, page_range: tuple[int, int] | None,
                 future: Future[None], identity: FileIdentity | None = None) -> None:
        self._pool = pool
        self.job_id = job_id
        self.path = path
        self.page_range = page_range
        self.identity = identity  # the file checked and hashed by the submitter, when it was
        self.doc_id = None if identity is None else identity.doc_id
        self.future = future
        self.pid: int | None = None  # the worker process reading it
        self.delivered = 0  # pages handed out (a re-run skips them)
        self.reruns = 0  # times run again after the pool broke
        self._skip = 0
        self._info: DocumentInfo | None = None

    def info(self) -> DocumentInfo:
        """The document's info, once the worker has opened it (raises its DocumentError)."""
        while self._info is None:
            kind, payload = self._pool._next(self)
            if kind == "info" and self._info is not None:
                continue  # a re-run after a worker died sends it again
            if kind != "info":
                raise RuntimeError(f"{self.path}: expected the document info first, got {kind!r}")
            self._info = payload
        return self._info

    def batches(self) -> Iterator[list[PageContent]]:
        """Pages in order, in the batches the worker sent (raises the file's DocumentError)."""
        self.info()
        while True:
            kind, payload = self._pool._next(self)
            if kind == "done":
                return
            event = self._accept(kind, payload)
            if event is not None:
                yield event[1]

    def _accept(self, kind: str, payload: Any) -> tuple[str, Any] | None:
        """A message of this job as its consumer sees it, None for one to pass over: the info
        sent again by a re-run after a worker died, pages a re-run sends again (already handed out)."""
        if kind == "info":
            if self._info is not None:
                return None
            self._info = payload
            return kind, payload
        if kind != "pages":
            return kind, payload
        if self._info is None:
            raise RuntimeError(f"{self.path}: expected the document info first, got {kind!r}")
        skip = min(len(payload), self._skip)
        self._skip -= skip
        self.delivered += len(payload) - skip
        return (kind, payload[skip:]) if payload[skip:] else None

    def pages(self) -> Iterator[PageContent]:
        for batch in self.batches():
            yield from batch


class ExtractionPool:
    """Worker processes that extract documents; results come back through one queue.

    ``workers`` processes (each with its own OCR engine, created on first use). The pool
    uses the ``fork`` start method on Linux (no re-import of the caller's script, which
    ``spawn`` would run again, nor of the ingest modules, which ``forkserver`` would import
    once more), ``spawn`` elsewhere. A forked worker shares what the caller had loaded until
    either writes to it; the worker freezes the inherited objects so that its garbage
    collections do not copy them, and extraction itself never loads an embedder or torch.

    When a worker dies the executor breaks for every job in it: the job that worker was
    reading fails with :class:`WorkerDiedError`; the others run again in a fresh executor,
    skipping the pages already handed out (extraction is deterministic).
    """

    def __init__(
        self, config: IngestConfig, image_root: Path | None, workers: int, batch_pages: int = 16,
        on_page: Callable[[Path, int, int], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.config = config
        self.image_root = image_root
        self.workers = workers
        self.batch_pages = batch_pages
        self.on_page = on_page
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        self._ctx = multiprocessing.get_context(method)
        self._results: Any = None
        self._executor: ProcessPoolExecutor | None = None
        self._active: dict[int, ExtractionJob] = {}
        self._buffers: dict[int, deque[tuple[str, Any]]] = defaultdict(deque)
        self._next_id = 0
        self._processes: dict[int, Any] = {}  # pid -> multiprocessing Process, to tell who died

    def _queue(self) -> Any:
        if self._results is None:
            self._results = self._ctx.Queue()
        return self._results

    def _start(self) -> ProcessPoolExecutor:
        if self._executor is None:
            if self._ctx.get_start_method() == "fork":
                _load_before_fork()
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=self._ctx, initializer=_init_worker,
                initargs=(self._queue(), logging.getLogger("ingest").getEffectiveLevel(), os.getpid()),
            )
        return self._executor

    def _run(self, path: Path, page_range: tuple[int, int] | None, identity: FileIdentity | None) -> tuple[int, Future[None]]:
        job_id, self._next_id = self._next_id, self._next_id + 1
        executor = self._start()
        future = executor.submit(
            _extract, job_id, path, self.config, self.image_root, page_range, self.batch_pages, identity
        )
        self._processes.update(getattr(executor, "_processes", None) or {})
        return job_id, future

    def submit(
        self, path: str | Path, page_range: tuple[int, int] | None = None, identity: FileIdentity | None = None
    ) -> ExtractionJob:
        """Queue one document; its pages are read as soon as a worker is free.

        ``page_range=(first, last)``: only those physical pages (clipped to the document).
        ``identity``: the file's :func:`ingest.identify_file` result when the caller has it;
        the worker then does not hash the file again, and ``job.doc_id`` is known before the
        worker starts (for the caller's clean-up)."""
        path = Path(path)
        if identity is not None and identity.path != path:
            raise ValueError(f"identity is of {identity.path}, not of {path}")
        job_id, future = self._run(path, page_range, identity)
        job = ExtractionJob(self, job_id, path, page_range, future, identity)
        self._active[job_id] = job
        return job

    def _next(self, job: ExtractionJob) -> tuple[str, Any]:
        """The job's next message, reading (and buffering) other jobs' messages meanwhile."""
        if job.job_id not in self._active:
            raise RuntimeError(f"{job.path}: the extraction job was already consumed")
        while not self._buffers[job.job_id]:
            self._receive([job])
        kind, payload = self._buffers[job.job_id].popleft()
        if kind in ("done", "error"):
            self._forget(job)
        if kind == "error":
            raise payload.rebuild()
        return kind, payload

    def next_ready(self, jobs: Sequence[ExtractionJob]) -> tuple[ExtractionJob, str, Any]:
        """The next message of whichever of ``jobs`` has one (the earliest in ``jobs`` when
        several have), as ``(job, kind, payload)``: ``("info", DocumentInfo)``, then
        ``("pages", [PageContent, ...])`` in order, then ``("done", None)`` or ``("error",
        exception)`` (the file's error, returned, not raised). Messages of other jobs are
        buffered for their own consumer; a bug in extraction is raised."""
        for job in jobs:
            if job.job_id not in self._active:
                raise RuntimeError(f"{job.path}: the extraction job was already consumed")
        while True:
            for job in jobs:
                buffered = self._buffers[job.job_id]
                while buffered:
                    kind, payload = buffered.popleft()
                    if kind in ("done", "error"):
                        self._forget(job)
                        return job, kind, payload.rebuild() if kind == "error" else payload
                    event = job._accept(kind, payload)
                    if event is not None:
                        return job, *event
            self._receive(jobs)

    def _receive(self, waiting: Sequence[ExtractionJob]) -> None:
        """Read one message from the workers into its job's buffer (progress messages go to
        ``on_page``); after a quiet spell, check that the ``waiting`` jobs' workers are alive."""
        try:
            job_id, kind, payload = self._queue().get(timeout=_POLL_S)
        except queue.Empty:
            for job in waiting:
                if job.job_id in self._active:
                    self._check_alive(job)
            return
        self._dispatch(job_id, kind, payload)

    def _dispatch(self, job_id: int, kind: str, payload: Any) -> None:
        """One message from a worker: "start" records the job's worker (and the pool's processes,
        to tell later who died), "read" goes to ``on_page``, the rest to the job's buffer."""
        if job_id not in self._active:
            return  # a job of an executor that broke, since re-run
        if kind == "start":
            self._active[job_id].pid = payload
            self._processes.update(getattr(self._executor, "_processes", None) or {})
            self._read(self._active[job_id], (0, 0))
        elif kind == "read":
            self._read(self._active[job_id], payload)
        else:
            self._buffers[job_id].append((kind, payload))

    def _read(self, job: ExtractionJob, progress: tuple[int, int]) -> None:
        """A worker started ``job`` (0 of 0 pages: opening it) or read a page of it: tell
        ``on_page`` (a re-run after a crash starts again from 0; the counts go as they come)."""
        if self.on_page is not None:
            self.on_page(job.path, *progress)

    def _forget(self, job: ExtractionJob) -> None:
        self._active.pop(job.job_id, None)
        self._buffers.pop(job.job_id, None)

    def _check_alive(self, job: ExtractionJob) -> None:
        """Raise when the job's worker has failed on a bug; restart the pool when any worker
        died (a job that returned may still have lost its last messages with the queue)."""
        from concurrent.futures.process import BrokenProcessPool

        ended = [j.future.exception() for j in self._active.values() if j.future.done() and not self._complete(j)]
        broken = next((e for e in ended if isinstance(e, BrokenProcessPool)), None)
        if broken is None:
            if not job.future.done() or job.future.exception() is None:
                return  # running, or returned with its last messages still on their way
            failure = job.future.exception()
            if not isinstance(failure, BrokenProcessPool):
                self._forget(job)
                raise failure  # type: ignore[misc]  # a bug in extraction
            broken = failure  # the pool broke just after the look above (its futures fail together)
        crashed = self._crashed_jobs()
        logger.warning("an extraction worker process died (reading %s); restarting the pool",
                       ", ".join(j.path.name for j in crashed) or "an unknown file")
        self._restart(crashed, broken)  # crashed jobs find their WorkerDiedError in their buffer

    def _crashed_jobs(self) -> list[ExtractionJob]:
        """Unfinished jobs whose worker ended on its own (a crash), not terminated by the
        broken executor; when that cannot be told (the pool broke with its workers alive or
        their exit codes not known yet), the started jobs that were already run again after a
        break :data:`MAX_RERUNS` times: the others get another run, so a file is blamed only when it keeps
        breaking the pool."""
        self._drain()
        started = [j for j in self._active.values() if j.pid is not None and not self._complete(j)]
        exitcodes = {pid: proc.exitcode for pid, proc in self._processes.items()}
        crashed = [j for j in started if exitcodes.get(j.pid) not in (None, 0, -signal.SIGTERM)]
        return crashed or [j for j in started if j.reruns >= MAX_RERUNS]

    def _complete(self, job: ExtractionJob) -> bool:
        return any(kind in ("done", "error") for kind, _ in self._buffers.get(job.job_id, ()))

    def _drain(self) -> None:
        """Buffer every message already on the queue (the last words of a broken executor)."""
        while True:
            try:
                job_id, kind, payload = self._queue().get(timeout=0.05)
            except queue.Empty:
                return
            self._dispatch(job_id, kind, payload)

    def _restart(self, crashed: list[ExtractionJob], cause: BaseException) -> None:
        """A broken executor refuses new work: fail the crashed jobs and run the others again
        in a fresh executor (pages already handed out are skipped on the re-run)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        # a worker killed in the middle of a put leaves the queue's lock held or a message cut short
        self._results = None
        for old_id, job in sorted(self._active.items()):
            if self._complete(job):
                continue  # finished before the break: its messages are all buffered
            self._forget(job)
            if job in crashed:  # its consumer gets the error at its next read
                failure = WorkerDiedError(job.path, f"the extraction worker process died while reading it ({cause})")
                self._active[old_id] = job
                self._buffers[old_id].append(("error", _Failure.of(failure)))
                continue
            job.pid, job._skip, job.reruns = None, job.delivered, job.reruns + 1
            job.job_id, job.future = self._run(job.path, job.page_range, job.identity)
            self._active[job.job_id] = job

    def close(self) -> None:
        """Stop the workers. Jobs not consumed to the end are abandoned: queued ones are
        cancelled and running ones terminated (what they wrote belongs to no document the
        registry knows, and the next write's recovery removes it)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            processes = {**self._processes, **(getattr(executor, "_processes", None) or {})}
            executor.shutdown(wait=False, cancel_futures=True)
            if any(not job.future.done() for job in self._active.values()):
                for process in processes.values():
                    process.terminate()
            executor.shutdown(wait=True)
            for process in processes.values():
                # the executor does not always wait for its workers to exit; a forked worker
                # holds the caller's file descriptors (the knowledge base's lock) until it has
                process.join(timeout=30)
        if self._results is not None:
            self._results.close()
            self._results.join_thread()
            self._results = None
        self._active.clear()
        self._buffers.clear()

    def __enter__(self) -> ExtractionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""One writer at a time: a single worker thread runs ingest jobs in order and keeps their status.

A knowledge base allows one writer; the server funnels every write (ingest jobs here,
deletes through :attr:`JobQueue.write_lock`) through this queue, while searches run
meanwhile from request threads. Job records are frozen snapshots replaced as work
progresses, so a reader never sees one half-updated.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from rag.errors import MmragError
from rag.types import FileReport

__all__ = ["FileProgress", "Job", "JobCancelledError", "JobQueue"]

log = logging.getLogger("mmrag.server.jobs")

FileState = Literal["queued", "ingesting", "indexed", "unchanged", "skipped", "failed"]
JobState = Literal["queued", "running", "done", "failed", "cancelled"]
_FINISHED = ("done", "failed", "cancelled")


class JobCancelledError(MmragError):
    """The job was cancelled, or the server is stopping, while this file was being ingested."""


@dataclass(frozen=True)
class FileProgress:
    name: str
    state: FileState = "queued"
    doc_id: str | None = None
    pages: int = 0
    error: str | None = None
    seconds: float = 0.0
    pages_done: int = 0  # pages read so far while ingesting
    pages_total: int = 0  # pages to read (0 until the file is opened)
    reason: str | None = None  # why it was skipped
    notes: tuple[str, ...] = ()  # what was refused or skipped inside the file (FileReport.notes)


@dataclass(frozen=True)
class Job:
    id: str
    state: JobState
    files: tuple[FileProgress, ...]
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None

    @property
    def done_files(self) -> int:
        return sum(1 for f in self.files if f.state not in ("queued", "ingesting"))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "files": [
                {"name": f.name, "state": f.state, "doc_id": f.doc_id, "pages": f.pages, "error": f.error, "seconds": round(f.seconds, 3),
                 "pages_done": f.pages_done, "pages_total": f.pages_total, "reason": f.reason,
                 "notes": list(f.notes)}
                for f in self.files
            ],
            "done": self.done_files,
            "total": len(self.files),
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
        }


#: ``on_page(path, pages_read, pages_total)``
PageProgress = Callable[[Path, int, int], None]
#: ``ingest_one(path, on_page)``: index one file, telling ``on_page`` page by page
IngestOne = Callable[[Path, PageProgress], FileReport]


class JobQueue:
    """Runs ``ingest_one(path, on_page)`` for each file of each submitted job on one worker thread."""

    def __init__(self, ingest_one: IngestOne, *, warm_up: Callable[[], None] | None = None, keep: int = 200) -> None:
        self._ingest_one = ingest_one
        self._warm_up = warm_up
        self._keep = keep
        self._jobs: dict[str, Job] = {}
        self._paths: dict[str, tuple[Path, ...]] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._ids = itertools.count(1)
        self.write_lock = threading.Lock()
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._cancelled: set[str] = set()
        self.warm_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="mmrag-ingest", daemon=True)
        self._thread.start()

    # -- public ------------------------------------------------------------------------
    def submit(self, paths: Sequence[Path]) -> Job:
        job_id = f"job-{next(self._ids)}"
        job = Job(job_id, "queued", tuple(FileProgress(Path(p).name) for p in paths))
        with self._lock:
            self._jobs[job_id] = job
            self._paths[job_id] = tuple(Path(p) for p in paths)
            self._trim()
        self._queue.put(job_id)
        log.info("%s queued: %d files", job_id, len(paths))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def idle(self) -> bool:
        with self._lock:
            return all(j.state in _FINISHED for j in self._jobs.values())

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a job: a queued one never starts; a running one stops at its next page (a page
        being read in a child process is stopped at once), its current file is rolled back and
        its remaining files are not ingested. Files already indexed stay. ``None``: no such job."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state in _FINISHED:
                return job
            self._cancelled.add(job_id)
            if job.state == "queued":
                return self._finish_cancelled(job_id, "cancelled before it started")
        _stop_page_workers()
        return self.get(job_id)

    def close(self, timeout: float = 10.0) -> None:
        """Stop promptly: queued jobs are left undone, the file being ingested is stopped at its
        next page (its page workers are killed at once) and rolled back; wait at most ``timeout``
        seconds for that (a file stuck longer is abandoned; the knowledge base recovers it on its
        next open, as after a crash)."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread.is_alive() and not self.idle():
            log.warning("stopping: the file being ingested is stopped and rolled back")
            _stop_page_workers()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("stopping: the ingest worker did not stop within %.0f s; leaving it", timeout)

    # -- worker --------------------------------------------------------------------------
    def _set(self, job_id: str, **changes: Any) -> Job:
        with self._lock:
            job = replace(self._jobs[job_id], **changes)
            self._jobs[job_id] = job
            return job

    def _set_file(self, job_id: str, index: int, **changes: Any) -> None:
        with self._lock:
            job = self._jobs[job_id]
            files = list(job.files)
            files[index] = replace(files[index], **changes)
            self._jobs[job_id] = replace(job, files=tuple(files))

    def _finish_cancelled(self, job_id: str, why: str) -> Job:
        """Under ``_lock``: the job ends as cancelled; its files not finished say why."""
        job = self._jobs[job_id]
        files = tuple(replace(f, state="failed", error=why) if f.state in ("queued", "ingesting") else f for f in job.files)
        job = replace(job, state="cancelled", files=files, finished=time.time(), error=why)
        self._jobs[job_id] = job
        return job

    def _stop_reason(self, job_id: str) -> str | None:
        if job_id in self._cancelled:
            return "the job was cancelled"
        if self._stopping.is_set():
            return "the server stopped before this job finished"
        return None

    def _page_reporter(self, job_id: str, index: int) -> PageProgress:
        def on_page(path: Path, done: int, total: int) -> None:
            why = self._stop_reason(job_id)
            if why is not None:  # the indexer rolls this file back and reports it failed
                raise JobCancelledError(f"{why} while {path.name} was being ingested (page {done} of {total}); it was not indexed")
            self._set_file(job_id, index, pages_done=done, pages_total=total)

        return on_page

    def _trim(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.state in _FINISHED]
        for key in finished[: max(0, len(self._jobs) - self._keep)]:
            del self._jobs[key]
            self._paths.pop(key, None)

    def _run(self) -> None:
        if self._warm_up is not None:
            try:
                self._warm_up()
            except Exception as exc:  # reported by /api/health; jobs still try and report per file
                self.warm_error = f"{type(exc).__name__}: {exc}"
                log.error("warm-up failed: %s", self.warm_error)
        self.ready.set()
        while True:
            job_id = self._queue.get()
            if job_id is None or self._stopping.is_set():
                return
            if job_id in self._cancelled:
                continue
            self._run_job(job_id)

    def _run_job(self, job_id: str) -> None:
        with self._lock:
            paths = self._paths.get(job_id, ())
        self._set(job_id, state="running", started=time.time())
        try:
            with self.write_lock:
                for i, path in enumerate(paths):
                    why = self._stop_reason(job_id)
                    if why is not None:
                        with self._lock:
                            self._finish_cancelled(job_id, why)
                        return
                    self._set_file(job_id, i, state="ingesting")
                    report = self._ingest_one(path, self._page_reporter(job_id, i))
                    self._set_file(
                        job_id, i, state=report.status if report.status != "ok" else "indexed",
                        doc_id=report.doc_id, pages=report.pages, error=report.error, seconds=report.seconds,
                        reason=report.reason, notes=report.notes,
                    )
                why = self._stop_reason(job_id)
                if why is not None:
                    with self._lock:
                        self._finish_cancelled(job_id, why)
                    return
        except Exception as exc:  # an unexpected failure ends this job, not the worker
            log.exception("%s failed", job_id)
            self._set(job_id, state="failed", finished=time.time(), error=f"{type(exc).__name__}: {exc}")
            return
        job = self._set(job_id, state="done", finished=time.time())
        log.info("%s done: %d files in %.1f s", job_id, len(job.files), (job.finished or 0) - (job.started or 0))


def _stop_page_workers() -> None:
    """Kill the child processes reading pages right now (ingest's time-bounded page steps):
    the page in progress ends at once instead of at its ``page_timeout_s``."""
    from ingest._budget import cancel_running

    killed = cancel_running()
    if killed:
        log.info("stopped %d page worker(s)", killed)

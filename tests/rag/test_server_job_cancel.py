"""The server's ingest worker can be cancelled and stops promptly (issue 21, item 1): a heavy
page being read does not hold a job cancel or a shutdown until its ``page_timeout_s``."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pymupdf

from ingest import open_document
from rag.config import IngestConfig
from rag.errors import MmragError
from rag.server._jobs import JobQueue
from rag.types import FileReport


def _scatter_pdf(path: Path, n: int = 600) -> Path:
    """A page of ``n`` one-letter spans at random places: its table detection runs for ~40 s."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 60), "A page that keeps the table finder busy.", fontsize=11)
    rnd = random.Random(3)
    ops = "\n".join(f"1 0 0 1 {rnd.uniform(0, 600):.2f} {rnd.uniform(0, 700):.2f} Tm (a) Tj" for _ in range(n))
    xref = page.get_contents()[0]
    doc.update_stream(xref, doc.xref_stream(xref) + f"\nBT /helv 3 Tf\n{ops}\nET".encode())
    doc.save(path)
    return path


def _ingest_one(config: IngestConfig):
    """What the knowledge base does with a file, minus the embedding: read it page by page,
    telling ``on_page``; an MmragError fails the file (the indexer rolls it back)."""

    def ingest_one(path: Path, on_page) -> FileReport:
        started = time.perf_counter()
        try:
            with open_document(path, config) as reader:
                total = reader.info.page_count
                on_page(path, 0, total)
                for done, _ in enumerate(reader.pages(progress=False), 1):
                    on_page(path, done, total)
        except MmragError as exc:
            return FileReport(path, "failed", None, 0, str(exc), type(exc).__name__, time.perf_counter() - started)
        return FileReport(path, "indexed", path.stem, total, seconds=time.perf_counter() - started)

    return ingest_one


def _wait_ingesting(jobs: JobQueue, job_id: str) -> None:
    deadline = time.monotonic() + 30
    while jobs.get(job_id).files[0].state != "ingesting":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(2.0)  # past measuring and the text layer: into table detection, in its child process


def test_shutdown_does_not_wait_for_a_heavy_page(tmp_path):
    path = _scatter_pdf(tmp_path / "scatter.pdf")
    jobs = JobQueue(_ingest_one(IngestConfig(ocr="never", page_timeout_s=300)))
    job = jobs.submit([path, path])
    _wait_ingesting(jobs, job.id)
    started = time.monotonic()
    jobs.close(timeout=30)
    assert time.monotonic() - started < 5
    stopped = jobs.get(job.id)
    assert stopped.state == "cancelled" and "server stopped" in stopped.error
    assert [f.state for f in stopped.files] == ["failed", "failed"]
    assert "not indexed" in stopped.files[0].error


def test_a_cancelled_job_stops_and_the_queue_goes_on(tmp_path):
    heavy = _scatter_pdf(tmp_path / "scatter.pdf")
    light = tmp_path / "light.pdf"
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "A plain page.")
    doc.save(light)
    jobs = JobQueue(_ingest_one(IngestConfig(ocr="never", page_timeout_s=300)))
    try:
        running = jobs.submit([heavy])
        queued = jobs.submit([heavy])
        after = jobs.submit([light])
        assert jobs.cancel(queued.id).state == "cancelled"  # never starts
        _wait_ingesting(jobs, running.id)
        started = time.monotonic()
        jobs.cancel(running.id)
        deadline = time.monotonic() + 30
        while not jobs.idle():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert time.monotonic() - started < 8
        assert jobs.get(running.id).state == "cancelled" and jobs.get(running.id).files[0].state == "failed"
        assert jobs.get(queued.id).files[0].error == "cancelled before it started"
        assert jobs.get(after.id).state == "done" and jobs.get(after.id).files[0].state == "indexed"
        assert jobs.cancel("job-999") is None
    finally:
        jobs.close()

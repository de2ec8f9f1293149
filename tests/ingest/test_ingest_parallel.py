"""Documents extracted in worker processes (``ingest.workers``): the same knowledge base as an
in-process read, bad files failing alone and by name, nothing left behind."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pymupdf
import pytest

import _pdfgen as g
import ingest.reader as reader_mod
import rag.errors
from ingest import identify_file
from ingest.parallel import ExtractionPool
from rag import KnowledgeBase
from rag.config import Config, IngestConfig
from rag._manifest import DocumentRegistry
from rag.errors import ConfigError, DocumentError, EncryptedDocumentError, MmragError, WorkerDiedError
from retrievers.store.edge import EdgeStore


def _config(workers: int, **kw: Any) -> Config:
    return Config(ingest=IngestConfig(ocr="never", dpi=72, workers=workers, **kw))


def _rich_pdf(path: Path, marker: str, pages: int = 5) -> Path:
    """Prose on every page, a vector chart, a ruled table and a raster picture with captions."""
    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page(width=612, height=792)
        page.insert_textbox(pymupdf.Rect(72, 60, 540, 200), f"{marker} page {i + 1}. {g.LOREM}", fontsize=10)
        if i % 3 == 0:
            g.chart_page(page, 100, 260)
        elif i % 3 == 1:
            g.table_page(page, 72, 280, [["Branch", "Opens"], ["North", "8:00"], [f"{marker}", "9:30"]])
        else:
            g.raster_page(page, pymupdf.Rect(100, 260, 300, 380))
    return g.save(doc, path)


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("parallel_docs")
    for k in range(4):
        _rich_pdf(folder / f"doc{k}.pdf", f"Marker{k}", pages=4 + 3 * k)
    return folder


def _snapshot(kb: Path) -> dict[str, Any]:
    """Registry, every point (payload and vectors) and every image file, the folder's path removed."""
    registry = sorted(
        (r.doc_id, r.name, r.pages, r.status, json.dumps(r.points, sort_keys=True))
        for r in DocumentRegistry(kb / "documents.sqlite").all()
    )
    store = EdgeStore(kb / "store")
    try:
        points = {
            collection: {
                p.id: (json.loads(json.dumps(p.payload).replace(str(kb), "<kb>")), p.vectors)
                for p in store.scroll(collection, with_vectors=True)
            }
            for collection in store.collections()
        }
    finally:
        store.close()
    images = {str(f.relative_to(kb / "images")): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted((kb / "images").rglob("*")) if f.is_file()}
    return {"registry": registry, "points": points, "images": images}


def test_two_workers_build_exactly_the_knowledge_base_one_process_builds(tmp_path, docs):
    snaps = {}
    for workers in (1, 2):
        with KnowledgeBase.open(tmp_path / f"kb{workers}", _config(workers), create=True) as kb:
            reports = kb.ingest([docs], progress=False)
        assert [r.status for r in reports] == ["indexed"] * 4, reports
        assert [r.path.name for r in reports] == ["doc0.pdf", "doc1.pdf", "doc2.pdf", "doc3.pdf"]  # input order
        snaps[workers] = _snapshot(tmp_path / f"kb{workers}")
    one, two = snaps[1], snaps[2]
    assert one["registry"] == two["registry"]
    assert one["images"] == two["images"] and any("-fig" in name for name in one["images"])
    assert one["points"].keys() == two["points"].keys()
    for corpus in one["points"]:
        assert one["points"][corpus].keys() == two["points"][corpus].keys(), corpus
        for pid, (payload, vectors) in one["points"][corpus].items():
            other_payload, other_vectors = two["points"][corpus][pid]
            assert other_payload == payload, (corpus, pid)
            assert other_vectors.keys() == vectors.keys()
            for name, vec in vectors.items():
                assert np.allclose(_flat(other_vectors[name]), _flat(vec), atol=1e-6), (corpus, pid, name)


def _flat(vector: Any) -> np.ndarray:
    """Dense vectors as arrays; sparse ones as their indices followed by their values."""
    if hasattr(vector, "indices"):
        return np.concatenate([np.asarray(vector.indices, dtype=float), np.asarray(vector.values, dtype=float)])
    return np.asarray(vector, dtype=float).ravel()


def test_a_bad_file_among_good_ones_fails_alone_with_its_name(tmp_path, docs):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("doc0.pdf", "doc1.pdf"):
        (folder / name).write_bytes((docs / name).read_bytes())
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n not a pdf at all")
    g.encrypted_pdf(folder / "locked.pdf")
    with KnowledgeBase.open(tmp_path / "kb", _config(2), create=True) as kb:
        reports = {r.path.name: r for r in kb.ingest([folder], progress=False)}
        assert reports["doc0.pdf"].status == reports["doc1.pdf"].status == "indexed"
        assert reports["broken.pdf"].status == "failed" and "broken.pdf" in reports["broken.pdf"].error
        assert reports["broken.pdf"].error_type == "CorruptDocumentError"
        assert reports["locked.pdf"].error_type == "EncryptedDocumentError" and "locked.pdf" in reports["locked.pdf"].error
        assert sorted(d.name for d in kb.documents()) == ["doc0.pdf", "doc1.pdf"]
    assert len(list((tmp_path / "kb" / "images").iterdir())) == 2


def test_a_file_failing_part_way_in_a_worker_leaves_no_images_behind(tmp_path, docs):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a_good.pdf").write_bytes((docs / "doc1.pdf").read_bytes())
    doc = pymupdf.open()
    for i in range(20):
        doc.new_page(width=612, height=792).insert_text((72, 72), f"small page {i}")
    # page 21: too large for max_page_pixels even at 1 dpi (200 x 200 px); letter pages fit at a lower dpi
    doc.new_page(width=14_400, height=14_400).insert_text((72, 72), "a poster")
    g.save(doc, folder / "b_huge.pdf")
    with KnowledgeBase.open(tmp_path / "kb", _config(2, max_page_pixels=30_000), create=True) as kb:
        reports = {r.path.name: r for r in kb.ingest([folder], progress=False)}
        assert reports["a_good.pdf"].status == "indexed"
        huge = reports["b_huge.pdf"]
        assert huge.status == "failed" and huge.error_type == "ResourceLimitError"
        assert "b_huge.pdf" in huge.error and "page 21" in huge.error
        assert [d.name for d in kb.documents()] == ["a_good.pdf"]
    assert len(list((tmp_path / "kb" / "images").iterdir())) == 1  # the 20 pages written before the error are gone


def test_a_worker_that_dies_fails_its_file_by_name_and_the_others_are_indexed(tmp_path, docs, monkeypatch):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("doc0.pdf", "doc2.pdf"):
        (folder / name).write_bytes((docs / name).read_bytes())
    (folder / "doc1_crash.pdf").write_bytes((docs / "doc1.pdf").read_bytes())
    real = reader_mod.DocumentReader._extract

    def crash_on_page_3(self, index, info, out_dir):  # the workers are forked: they inherit this
        if "crash" in self.path.name and index == 2:
            os._exit(3)  # what a segfault in a native library looks like from outside
        return real(self, index, info, out_dir)

    monkeypatch.setattr(reader_mod.DocumentReader, "_extract", crash_on_page_3)
    with KnowledgeBase.open(tmp_path / "kb", _config(2), create=True) as kb:
        reports = {r.path.name: r for r in kb.ingest([folder], progress=False)}
        crashed = reports["doc1_crash.pdf"]
        assert crashed.status == "failed" and crashed.error_type == "WorkerDiedError"
        assert "doc1_crash.pdf" in crashed.error and "worker process died" in crashed.error
        assert reports["doc0.pdf"].status == "indexed"
        assert reports["doc2.pdf"].status == "indexed"  # re-run in a fresh pool if it was caught in the crash
        assert sorted(d.name for d in kb.documents()) == ["doc0.pdf", "doc2.pdf"]
        assert kb.search("Marker2 page 7", top_k=3).hits
    assert len(list((tmp_path / "kb" / "images").iterdir())) == 2


def test_unchanged_files_are_not_read_again(tmp_path, docs):
    with KnowledgeBase.open(tmp_path / "kb", _config(2), create=True) as kb:
        kb.ingest([docs], progress=False)
    images = {f: f.stat().st_mtime_ns for f in (tmp_path / "kb" / "images").rglob("*") if f.is_file()}
    copy = tmp_path / "copy_of_doc3.pdf"
    copy.write_bytes((docs / "doc3.pdf").read_bytes())
    with KnowledgeBase.open(tmp_path / "kb", _config(2)) as kb:
        reports = kb.ingest([docs, copy], progress=False)
    assert [r.status for r in reports] == ["unchanged"] * 5  # the copy holds an indexed document's bytes
    assert {f: f.stat().st_mtime_ns for f in images} == images  # nothing rewritten by a worker


def test_the_same_bytes_twice_in_one_batch_are_read_once(tmp_path, docs):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.pdf").write_bytes((docs / "doc0.pdf").read_bytes())
    (folder / "b.pdf").write_bytes((docs / "doc0.pdf").read_bytes())
    (folder / "c.pdf").write_bytes((docs / "doc1.pdf").read_bytes())
    with KnowledgeBase.open(tmp_path / "kb", _config(2), create=True) as kb:
        reports = kb.ingest([folder], progress=False)
        assert [r.status for r in reports] == ["indexed", "unchanged", "indexed"]  # with worker processes too
        assert sorted(d.name for d in kb.documents()) == ["a.pdf", "c.pdf"]
    assert len(list((tmp_path / "kb" / "images").iterdir())) == 2


def test_pool_errors_keep_their_class_and_message(tmp_path):
    locked = g.encrypted_pdf(tmp_path / "locked.pdf")
    with ExtractionPool(IngestConfig(ocr="never"), None, workers=1) as pool:
        job = pool.submit(locked)
        with pytest.raises(EncryptedDocumentError) as err:
            job.info()
    assert err.value.path == locked and "locked.pdf" in str(err.value) and "password" in str(err.value)


def test_a_dead_worker_is_reported_like_any_bad_file_of_the_error_tree():
    assert issubclass(WorkerDiedError, DocumentError) and issubclass(WorkerDiedError, MmragError)
    assert "WorkerDiedError" in rag.errors.__all__ and "WorkerDiedError" in (rag.errors.__doc__ or "")
    err = WorkerDiedError(Path("x.pdf"), "the extraction worker process died while reading it")
    try:
        raise err
    except MmragError as caught:  # one except catches it with every other failure
        assert caught.path == Path("x.pdf") and str(caught).startswith("x.pdf: ")


def test_pool_streams_pages_in_order_and_honours_page_ranges(tmp_path, docs):
    with ExtractionPool(IngestConfig(ocr="never", dpi=72), None, workers=2, batch_pages=3) as pool:
        whole, part = pool.submit(docs / "doc3.pdf"), pool.submit(docs / "doc3.pdf", page_range=(4, 99))
        assert [c.page.page for c in part.pages()] == list(range(4, 14))  # consumed first: the other is buffered
        assert whole.info().page_count == 13
        assert [c.page.page for c in whole.pages()] == list(range(1, 14))


def test_a_job_given_the_files_identity_knows_its_doc_id_and_the_worker_uses_it(tmp_path, docs):
    path = docs / "doc1.pdf"
    identity = identify_file(path, IngestConfig())
    with ExtractionPool(IngestConfig(ocr="never", dpi=72), None, workers=1) as pool:
        job = pool.submit(path, page_range=(2, 3), identity=identity)
        assert job.doc_id == identity.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()  # before the worker ran
        assert job.info().doc_id == identity.sha256 and job.info().size_bytes == identity.size
        assert [c.page.page for c in job.pages()] == [2, 3]
        with pytest.raises(ValueError, match="doc0.pdf"):
            pool.submit(docs / "doc0.pdf", identity=identity)  # another file's identity


def test_workers_setting_is_checked():
    with pytest.raises(ConfigError, match="ingest.workers"):
        IngestConfig(workers=0)
    assert IngestConfig(workers=3).extraction_workers == 3
    assert IngestConfig().extraction_workers == min(2, os.cpu_count() or 1)


def test_a_worker_drops_an_inherited_ocr_engine_and_uses_one_thread(monkeypatch):
    # workers are forked: an engine the caller made (two onnxruntime threads) arrives without
    # its threads; the caller itself keeps two, since it extracts alone
    import ingest._ocr as ocr

    assert ocr._params()["EngineConfig.onnxruntime.intra_op_num_threads"] == min(2, os.cpu_count() or 1)
    inherited = object()
    monkeypatch.setattr(ocr, "_ENGINE", inherited)
    monkeypatch.setattr(ocr, "_ABANDONED", [])
    monkeypatch.setattr(ocr, "_THREADS", ocr._THREADS)
    monkeypatch.setattr(ocr, "_LOCK", ocr._LOCK)
    ocr.use_in_worker()
    assert ocr._ENGINE is None and ocr._ABANDONED == [inherited]  # kept alive: never torn down in the child
    assert ocr._params()["EngineConfig.onnxruntime.intra_op_num_threads"] == 1


_OCR_THEN_WORKERS = r"""
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
import numpy as np
import ingest._ocr as ocr
from rag import KnowledgeBase
from rag.config import Config, IngestConfig
ocr.ocr_array(np.full((120, 400, 3), 255, dtype=np.uint8))  # the caller's own engine, two threads
with KnowledgeBase.open({kb!r}, Config(ingest=IngestConfig(workers=2)), create=True) as kb:
    print(" ".join(r.status for r in kb.ingest([Path({docs!r})], progress=False)))
"""


def test_workers_forked_after_the_caller_ocrd_finish(tmp_path):
    # the caller OCRs first (a single document, a search by image...), then a folder goes to
    # forked workers: destroying the inherited engine in a worker waited forever on threads
    # that exist only in the caller
    import subprocess
    import sys

    docs = tmp_path / "scans"
    docs.mkdir()
    for i in range(2):
        g.scanned_pdf(docs / f"scan{i}.pdf", text=f"INVOICE NUMBER 44{i}")
    code = _OCR_THEN_WORKERS.format(root=str(Path(__file__).parents[2]), kb=str(tmp_path / "kb"), docs=str(docs))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["indexed", "indexed"]


def test_a_worker_stays_a_few_batches_ahead_of_a_caller_that_does_not_read(tmp_path):
    """Its memory is bounded by a few batches, not by the document: a worker faster than the
    caller (who embeds each batch) waits for the caller to read, then goes on."""
    import time

    path = g.text_pdf(tmp_path / "long.pdf", [f"Page {i + 1}. " + g.LOREM * 8 for i in range(60)])
    images = tmp_path / "images"
    with ExtractionPool(IngestConfig(ocr="never", dpi=72), images, workers=1, batch_pages=2) as pool:
        job = pool.submit(path)
        assert job.info().page_count == 60
        read, still_since, deadline = -1, time.monotonic(), time.monotonic() + 240
        while time.monotonic() - still_since < 5 and time.monotonic() < deadline:  # until the worker stops
            time.sleep(0.5)
            now = len(list(images.glob("*/page-*")))
            if now != read:
                read, still_since = now, time.monotonic()
        assert 0 < read <= 30  # about two batches plus what the pipe holds, of 60 pages
        assert [c.page.page for c in job.pages()] == list(range(1, 61))  # then every page, in order


def test_a_pool_that_breaks_with_no_worker_seen_dead_runs_its_files_again_before_blaming_one(tmp_path):
    """The executor can report a broken pool while its workers still run (seen under load, just
    after a restart): no file is to blame then, so each started file runs again, and only one that
    keeps breaking the pool (MAX_RERUNS) fails as the crash's file."""
    from types import SimpleNamespace

    from ingest.parallel import MAX_RERUNS, ExtractionJob

    pool = ExtractionPool(IngestConfig(), None, workers=2)
    try:
        jobs = [ExtractionJob(pool, i, tmp_path / f"doc{i}.pdf", None, None) for i in range(2)]
        for pid, job in zip((101, 102), jobs):
            job.pid = pid
            pool._active[job.job_id] = job
        pool._processes = {101: SimpleNamespace(exitcode=None), 102: SimpleNamespace(exitcode=None)}
        assert pool._crashed_jobs() == []  # alive workers: nobody to blame, both run again
        jobs[1].reruns = MAX_RERUNS
        assert pool._crashed_jobs() == [jobs[1]]  # broke the pool each time it ran
        pool._processes[101] = SimpleNamespace(exitcode=3)  # a worker seen to die names its file at once
        assert pool._crashed_jobs() == [jobs[0]]
    finally:
        pool.close()

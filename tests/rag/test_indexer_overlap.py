"""Embedding overlaps extraction: one batch in flight in a worker thread, errors not lost,
and a failed document rolled back only after the worker has finished writing."""

from __future__ import annotations

import threading
import time

import pytest

import _pdfgen as g
import rag._indexer as indexer_mod
from ingest.reader import DocumentReader
from rag import KnowledgeBase
from rag._indexer import _OneInFlight
from rag.config import Config, IngestConfig

FAST = Config(ingest=IngestConfig(ocr="never", dpi=72))
PAGES = 40  # three batches of 16 pages


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("overlap_docs")
    return g.text_pdf(folder / "long.pdf", [f"Page {i + 1}. {g.LOREM} Marker long-{i + 1}." for i in range(PAGES)])


def _points(kb: KnowledgeBase) -> int:
    store, specs = kb._open_store()
    return sum(len(list(store.scroll(spec.name))) for spec in specs.values())


def test_batches_embed_in_a_worker_one_at_a_time_while_pages_are_extracted(tmp_path, long_pdf, monkeypatch):
    real = indexer_mod.build_points
    events: list[tuple[str, int]] = []
    active, most = [0], [0]
    lock = threading.Lock()

    def slow_build_points(info, batch, embedders):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        events.append(("embed-start", batch[0].page.page))
        assert threading.current_thread() is not threading.main_thread()
        time.sleep(0.3)
        try:
            return real(info, batch, embedders)
        finally:
            events.append(("embed-end", batch[0].page.page))
            with lock:
                active[0] -= 1

    real_pages = DocumentReader.pages

    def watched_pages(reader, *args, **kwargs):
        for content in real_pages(reader, *args, **kwargs):
            events.append(("page", content.page.page))
            yield content

    monkeypatch.setattr(indexer_mod, "build_points", slow_build_points)
    monkeypatch.setattr(DocumentReader, "pages", watched_pages)
    with KnowledgeBase.open(tmp_path / "kb", FAST, create=True) as kb:
        [report] = kb.ingest([long_pdf], progress=False)
        assert report.status == "indexed", report.error
        assert most[0] == 1  # at most one batch in flight
        assert [e for e in events if e[0] == "embed-start"] == [("embed-start", 1), ("embed-start", 17), ("embed-start", 33)]
        # page 17 was extracted while batch 1 was still being embedded
        assert events.index(("page", 17)) < events.index(("embed-end", 1))
        assert kb.search("Marker long-40", top_k=3).hits


def test_an_embedding_error_surfaces_and_the_document_is_rolled_back(tmp_path, long_pdf, monkeypatch):
    real = indexer_mod.build_points
    calls = [0]

    def failing_second_batch(info, batch, embedders):
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("embedder exploded")
        return real(info, batch, embedders)

    with KnowledgeBase.open(tmp_path / "kb", FAST, create=True) as kb:
        monkeypatch.setattr(indexer_mod, "build_points", failing_second_batch)
        with pytest.raises(RuntimeError, match="embedder exploded"):
            kb.ingest([long_pdf], progress=False)
        assert kb.documents() == []
        assert _points(kb) == 0
        monkeypatch.setattr(indexer_mod, "build_points", real)
        [report] = kb.ingest([long_pdf], progress=False)
        assert report.status == "indexed"
        assert _points(kb) > PAGES


def test_an_extraction_error_waits_for_the_batch_in_flight_before_rolling_back(tmp_path, long_pdf, monkeypatch):
    real = indexer_mod.build_points
    finished = []

    def slow_build_points(info, batch, embedders):
        time.sleep(0.5)  # still writing when extraction fails
        out = real(info, batch, embedders)
        finished.append(batch[0].page.page)
        return out

    real_pages = DocumentReader.pages

    def failing_pages(reader, *args, **kwargs):
        for content in real_pages(reader, *args, **kwargs):
            if content.page.page == 18:
                raise RuntimeError("extractor exploded")
            yield content

    monkeypatch.setattr(indexer_mod, "build_points", slow_build_points)
    monkeypatch.setattr(DocumentReader, "pages", failing_pages)
    with KnowledgeBase.open(tmp_path / "kb", FAST, create=True) as kb:
        with pytest.raises(RuntimeError, match="extractor exploded"):
            kb.ingest([long_pdf], progress=False)
        assert finished == [1]  # the batch in flight finished before the error propagated...
        assert _points(kb) == 0  # ...so the rollback removed its points too
        assert not kb._registry.all()


def test_one_in_flight_raises_worker_errors_in_the_caller():
    def boom():
        raise ValueError("first")

    with pytest.raises(ValueError, match="first"):  # at the next submit
        with _OneInFlight("t") as worker:
            worker.submit(boom)
            worker.submit(lambda: None)
    with pytest.raises(ValueError, match="first"):  # when the block ends
        with _OneInFlight("t") as worker:
            worker.submit(boom)


def test_the_callers_error_wins_over_the_workers(caplog):
    def boom():
        raise ValueError("worker")

    with pytest.raises(KeyError, match="caller"):
        with _OneInFlight("t") as worker:
            worker.submit(boom)
            time.sleep(0.05)
            raise KeyError("caller")
    assert "embedding batch failed" in caplog.text

"""The knowledge base's store is flushed once per document, before the document is marked
complete: a flush waits for the disk (tens of milliseconds per collection), so flushing after
every batch of pages kept the ingest's embedding thread idle; what a killed process wrote is
kept by the store's write-ahead log either way (``tests/system/test_crash.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import _pdfgen as g
from rag import KnowledgeBase
from rag._manifest import DocumentRegistry
from rag.config import Config, IngestConfig
from retrievers.store.edge import EdgeStore


def test_each_document_is_flushed_once_before_it_is_marked_complete(tmp_path: Path, monkeypatch: Any) -> None:
    events: list[str] = []
    real_upsert, real_flush, real_put = EdgeStore.upsert, EdgeStore.flush, DocumentRegistry.put

    def upsert(self: EdgeStore, collection: str, points: Any) -> None:
        events.append("upsert")
        real_upsert(self, collection, points)

    def flush(self: EdgeStore) -> None:
        events.append("flush")
        real_flush(self)

    def put(self: DocumentRegistry, record: Any) -> None:
        events.append(f"put {record.name} {record.status}")
        real_put(self, record)

    monkeypatch.setattr(EdgeStore, "upsert", upsert)
    monkeypatch.setattr(EdgeStore, "flush", flush)
    monkeypatch.setattr(DocumentRegistry, "put", put)
    (tmp_path / "docs").mkdir()
    long = g.text_pdf(tmp_path / "docs" / "long.pdf", [f"Page {i}: the harbour ferry timetable, part {i}." for i in range(1, 21)])
    g.text_pdf(tmp_path / "docs" / "short.pdf", ["The lighthouse keeper's log."])
    kb = KnowledgeBase.open(tmp_path / "kb", Config(ingest=IngestConfig(ocr="never", dpi=72, workers=1)), create=True)
    try:
        reports = kb.ingest([long.parent])
        assert [r.status for r in reports] == ["indexed", "indexed"]
        for name in ("long.pdf", "short.pdf"):
            done = events.index(f"put {name} complete")
            assert events[done - 1] == "flush", events  # its points were on disk before its record
        # 20 pages: two batches of the long document, each written to the text and pages corpora
        assert events.count("upsert") >= 5, events
        assert events.count("flush") == 2, events  # once per document, not once per batch
        assert kb.search("harbour ferry timetable", top_k=3).hits
    finally:
        kb.close()

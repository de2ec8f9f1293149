"""Corpus term statistics: counted once from the store's page texts, cached in the knowledge
base's folder, and counted again when the documents change."""

from __future__ import annotations

import json
from types import SimpleNamespace

from rag import KnowledgeBase
from rag._manifest import DocumentRecord
from rag._term_stats import TERM_STATS, load_term_stats
from retrievers.base import ScoredPoint


class PagesStore:
    """A store holding one ``pages`` collection; counts the scrolls it serves."""

    def __init__(self, pages: dict[str, list[str]]) -> None:
        self.pages = pages
        self.scrolls = 0

    def scroll(self, collection, flt=None, with_vectors=False):
        assert collection == "kb_pages"
        self.scrolls += 1
        for doc_id, texts in self.pages.items():
            for n, text in enumerate(texts, 1):
                yield ScoredPoint(f"{doc_id}-{n}", 0.0, {"doc_id": doc_id, "page": n, "kind": "page", "text": text})


SPECS = {"pages": SimpleNamespace(name="kb_pages")}


def record(doc_id: str, pages: int, ingested_at: float = 1.0, status: str = "complete") -> DocumentRecord:
    return DocumentRecord(doc_id, f"{doc_id}.pdf", f"/d/{doc_id}.pdf", pages, "pdf", status, ingested_at=ingested_at)


def test_statistics_are_counted_once_then_read_from_the_cache(tmp_path):
    store = PagesStore({"a": ["The inverter manual.", "Inverter filter."], "b": ["Kenya travel notes."]})
    records = [record("a", 2), record("b", 1)]
    stats = load_term_stats(tmp_path, records, store, SPECS)
    assert stats.pages == 3 and stats.df["inverter"] == 2 and stats.df["kenya"] == 1
    assert (tmp_path / TERM_STATS).exists()
    again = load_term_stats(tmp_path, records, store, SPECS)
    assert again == stats and store.scrolls == 1


def test_changed_documents_are_counted_again_and_pending_ones_left_out(tmp_path):
    store = PagesStore({"a": ["The inverter manual."], "b": ["Kenya travel notes."]})
    first = load_term_stats(tmp_path, [record("a", 1), record("b", 1, status="pending")], store, SPECS)
    assert first.pages == 1 and "kenya" not in first.df  # b is still being written
    now_complete = load_term_stats(tmp_path, [record("a", 1), record("b", 1)], store, SPECS)
    assert now_complete.df["kenya"] == 1
    reingested = load_term_stats(tmp_path, [record("a", 1, ingested_at=2.0), record("b", 1)], store, SPECS)
    assert reingested == now_complete and store.scrolls == 3


def test_an_unreadable_cache_is_counted_again(tmp_path):
    (tmp_path / TERM_STATS).write_text("{not json")
    stats = load_term_stats(tmp_path, [record("a", 1)], PagesStore({"a": ["Inverter."]}), SPECS)
    assert stats.df == {"inverter": 1}
    assert json.loads((tmp_path / TERM_STATS).read_text())["stats"]["df"] == {"inverter": 1}


def test_asking_a_knowledge_base_caches_its_page_statistics(kb_path):
    with KnowledgeBase.open(kb_path) as kb:
        kb.ask("How often should the inverter be inspected?")
        pages = sum(d.pages for d in kb.documents())
    data = json.loads((kb_path / TERM_STATS).read_text())
    assert data["stats"]["pages"] == pages and data["stats"]["df"]["inverter"] >= 1

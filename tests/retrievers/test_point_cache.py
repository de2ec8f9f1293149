"""The point cache: a search reads each kept point's payload from the store once, and a write to
the knowledge base (any process) starts a new cache, so what the write changed is read again."""

from __future__ import annotations

import shutil

import pytest

from rag import KnowledgeBase
from retrievers.base import ScoredPoint
from retrievers.payloads import ChunkPayload, decode
from retrievers.point_cache import PointCache
from retrievers.store.edge import EdgeStore

QUESTION = "How often should the inverter be inspected?"


def _payload(pid: str, page: int) -> dict:
    return ChunkPayload(doc_id="d", page=page, source="d.pdf", text=f"text of {pid}").to_payload()


class CountingStore:
    """Stored payloads by id; records every id a retrieve asked for."""

    def __init__(self, stored: dict[str, dict]) -> None:
        self.stored, self.asked = stored, []

    def retrieve(self, collection, ids, with_payload=True):
        self.asked.extend(ids)
        return [ScoredPoint(i, 0.0, self.stored[i]) for i in ids if i in self.stored]


def test_each_point_is_read_once_and_scores_stay_the_questions():
    store = CountingStore({f"p{i}": _payload(f"p{i}", i) for i in range(4)})
    cache = PointCache()
    first = cache.with_payloads(store, "text", [ScoredPoint("p0", 0.9), ScoredPoint("p1", 0.5)])
    second = cache.with_payloads(store, "text", [ScoredPoint("p1", 0.7), ScoredPoint("p2", 0.4), ScoredPoint("p0", 0.1)])
    assert store.asked == ["p0", "p1", "p2"]  # p0 and p1 not asked again
    assert [(p.id, p.score) for p in second] == [("p1", 0.7), ("p2", 0.4), ("p0", 0.1)]
    assert [p.payload for p in second] == [store.stored["p1"], store.stored["p2"], store.stored["p0"]]
    assert first[0].payload is second[2].payload


def test_a_point_no_longer_stored_is_left_out_and_not_kept():
    store = CountingStore({"p0": _payload("p0", 1)})
    cache = PointCache()
    got = cache.with_payloads(store, "text", [ScoredPoint("gone", 0.9), ScoredPoint("p0", 0.5)])
    assert [p.id for p in got] == ["p0"] and len(cache) == 1
    cache.with_payloads(store, "text", [ScoredPoint("gone", 0.9)])
    assert store.asked.count("gone") == 2  # asked again: a miss is not remembered as absent


def test_records_are_decoded_once_and_equal_a_fresh_decode():
    store = CountingStore({"p0": _payload("p0", 3)})
    cache = PointCache()
    (point,) = cache.with_payloads(store, "text", [ScoredPoint("p0", 0.5)])
    record = cache.record(point)
    assert record == decode(store.stored["p0"]) and record.text == "text of p0" and record.page == 3
    assert cache.record(point) is record
    # a point whose payload did not come from the cache is decoded as it is, not from the cache
    other = ScoredPoint("p0", 0.5, _payload("other", 4))
    assert cache.record(other).page == 4


def test_the_least_recently_used_point_goes_first():
    store = CountingStore({f"p{i}": _payload(f"p{i}", i) for i in range(3)})
    cache = PointCache(size=2)
    cache.with_payloads(store, "text", [ScoredPoint("p0", 1.0), ScoredPoint("p1", 1.0)])
    cache.with_payloads(store, "text", [ScoredPoint("p0", 1.0), ScoredPoint("p2", 1.0)])  # p1 dropped
    store.asked.clear()
    cache.with_payloads(store, "text", [ScoredPoint("p0", 1.0), ScoredPoint("p1", 1.0)])
    assert store.asked == ["p1"]


@pytest.fixture()
def own_kb(kb_path, tmp_path):
    """A copy of the sample knowledge base this test may write to."""
    path = tmp_path / "kb"
    shutil.copytree(kb_path, path)
    with KnowledgeBase.open(path) as kb:
        yield kb


def test_a_repeated_question_reads_no_payload_and_a_write_reads_them_again(own_kb, monkeypatch):
    retrieved: list[str] = []
    original = EdgeStore.retrieve

    def retrieve(self, collection, ids, with_payload=True):
        retrieved.extend(ids)
        return original(self, collection, ids, with_payload)

    monkeypatch.setattr(EdgeStore, "retrieve", retrieve)
    first = own_kb.search(QUESTION, top_k=5)
    assert first.hits and retrieved
    retrieved.clear()
    again = own_kb.search(QUESTION, top_k=5)
    assert retrieved == [] and again.hits == first.hits

    doc = first.hits[0].doc_id
    own_kb.set_metadata(doc, {"team": "operations"})  # rewrites the `meta` of every point of the document
    after = own_kb.search(QUESTION, top_k=5)
    assert retrieved, "a write must start a new cache: the payloads it changed are read again"
    assert [(h.doc_id, h.page, h.score) for h in after.hits] == [(h.doc_id, h.page, h.score) for h in first.hits]
    store, specs = own_kb._open_store()
    kept = own_kb._point_cache().with_payloads(store, specs["text"].name, [ScoredPoint(e.point_id, 0.0)
                                               for h in after.hits if h.doc_id == doc
                                               for e in h.evidence if e.corpus == "text"])
    assert kept and all(p.payload["meta"] == {"team": "operations"} for p in kept)

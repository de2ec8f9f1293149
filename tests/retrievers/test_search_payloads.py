"""Search reads payloads only for the points it keeps, and hits still carry everything a user
sees: the evidence text, its box and image paths (on the sample knowledge base, real models)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from rag import KnowledgeBase
from rag.json_shapes import hit_json
from retrievers.base import ScoredPoint, VectorQuery
from retrievers.search import _queries, _score_fuse, encode_query, search_corpus

QUESTIONS = ("How often should the inverter be inspected?", "What does fault code E-102 mean?", "monthly output chart")


@pytest.fixture()
def kb(kb_path):
    with KnowledgeBase.open(kb_path) as kb:
        yield kb


class RecordingStore:
    """The real store, recording what each read asked for; ``lost`` ids vanish from retrieve,
    as points deleted by another process between the ranking and the payload fetch would."""

    def __init__(self, store, lost: Sequence[str] = ()) -> None:
        self.store, self.lost = store, set(lost)
        self.list_payloads: list[object] = []
        self.retrieved: list[str] = []

    def search_many(self, collection, queries, flt=None, with_payload=True):
        self.list_payloads.append(with_payload)
        return self.store.search_many(collection, queries, flt, with_payload=with_payload)

    def rescored(self, collection, prefetch, final, limit, flt=None, with_payload=True):
        self.list_payloads.append(with_payload)
        return self.store.rescored(collection, prefetch, final, limit, flt, with_payload=with_payload)

    def retrieve(self, collection, ids, with_payload=True):
        self.retrieved.extend(ids)
        return [p for p in self.store.retrieve(collection, ids, with_payload) if p.id not in self.lost]


def _full_payload_reference(store, spec, qv, limit: int) -> list[ScoredPoint]:
    """What search_corpus returned before: every list read with payloads, then fused."""
    queries = _queries(spec, qv, max(limit, 40))
    return _score_fuse([(q.using, store.search(spec.name, q)) for q in queries], limit)


@pytest.mark.parametrize("question", QUESTIONS)
def test_corpus_search_equals_the_full_payload_path_and_reads_only_kept_payloads(kb, question):
    store, specs = kb._open_store()
    qv = encode_query(question, kb.embedders)
    for spec in specs.values():
        recording = RecordingStore(store)
        got = search_corpus(recording, spec, qv, limit=20)
        expected = _full_payload_reference(store, spec, qv, 20)
        assert [(p.id, p.score, dict(p.payload)) for p in got] == [(p.id, p.score, dict(p.payload)) for p in expected]
        assert recording.list_payloads == [False]  # one batched request, ids and scores only
        assert recording.retrieved == [p.id for p in got] and len(got) <= 20


def test_a_point_deleted_between_ranking_and_fetch_is_left_out(kb):
    store, specs = kb._open_store()
    spec = specs["text"]
    qv = encode_query(QUESTIONS[0], kb.embedders)
    complete = search_corpus(store, spec, qv, limit=10)
    gone = complete[0].id
    got = search_corpus(RecordingStore(store, lost=[gone]), spec, qv, limit=10)
    assert [p.id for p in got] == [p.id for p in complete[1:]]
    assert all(p.payload for p in got)


@pytest.mark.parametrize("question", QUESTIONS)
def test_hits_carry_the_stored_evidence_text_box_and_images(kb, question):
    store, specs = kb._open_store()
    result = kb.search(question, top_k=5)
    assert result.hits
    for hit in result.hits:
        assert hit.image_path is not None and Path(hit.image_path).is_file()
        assert hit.path is not None and hit.page_width and hit.page_height
        for ev in hit.evidence:
            (stored,) = store.retrieve(specs[ev.corpus].name, [ev.point_id])
            assert ev.text == (stored.payload.get("text") or "")
            assert ev.bbox is not None and ev.bbox.as_list() == pytest.approx(stored.payload["bbox"])
            image = stored.payload.get("image_path") or stored.payload.get("page_image")
            assert ev.image_path == (Path(image) if image else None)
    shown = hit_json(result.hits[0])  # what `mmrag search --json` and the server print
    assert shown["evidence"] and all(e["text"] and e["bbox"] for e in shown["evidence"])


def test_search_of_one_vector_still_returns_payloads(kb):
    store, specs = kb._open_store()
    qv = encode_query(QUESTIONS[0], kb.embedders)
    (hit,) = store.search(specs["pages"].name, VectorQuery("dense", qv.dense, 1))
    assert hit.payload["doc_id"] and hit.payload["text"]


def test_a_page_matched_only_as_a_whole_counts_less_than_a_matching_passage():
    # the title page's whole text is about the question's topic (pages corpus); another page
    # holds the passage that answers it (text corpus), with a somewhat lower score
    from rag.types import Route
    from retrievers.search import CORPUS_SHARE, fuse_pages

    def point(pid: str, page: int, score: float, kind: str) -> ScoredPoint:
        return ScoredPoint(pid, score, {"doc_id": "d", "page": page, "kind": kind, "text": "t", "bbox": [0, 0, 1, 1]})

    route = Route(corpora=("text", "pages"), weights=(0.5, 0.5), top_k=20, reason="test")
    results = {"text": [point("c4", 4, 0.9, "chunk")], "pages": [point("p1", 1, 1.0, "page")]}
    assert [h.page for h in fuse_pages(results, route, limit=5)] == [1, 4]
    assert [h.page for h in fuse_pages(results, route, limit=5, share=CORPUS_SHARE)] == [4, 1]
    assert CORPUS_SHARE["pages"] < 1 and "text" not in CORPUS_SHARE and "figures" not in CORPUS_SHARE

"""Metadata filters inside the vector search, on every backend: the same points, the same answers."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

pytest.importorskip("qdrant_edge")
pytest.importorskip("qdrant_client")

from rag.errors import StoreError  # noqa: E402
from retrievers.base import CollectionSpec, Filter, Point, SparseVector, VectorQuery, VectorSpec  # noqa: E402
from retrievers.payloads import META, meta_key, scoped  # noqa: E402
from retrievers.store import EdgeStore, QdrantServerStore  # noqa: E402

DIM = 8
SPEC = CollectionSpec("mmrag_meta", (VectorSpec("dense", "dense", DIM), VectorSpec("bm25", "sparse", idf=True)))
METADATA = {
    "a": {"team": "finance", "year": 2025, "ratio": 0.5, "draft": True},
    "b": {"team": "legal", "year": 2024, "ratio": 1.5, "draft": False},
    "c": {},
}


def _points() -> list[Point]:
    rng = np.random.default_rng(3)
    out = []
    for doc, meta in METADATA.items():
        for page in (1, 2, 3):
            payload = scoped({"doc_id": doc, "page": page, "kind": "page"}, meta)
            vectors = {"dense": rng.normal(size=DIM).astype(np.float32), "bm25": SparseVector((1, 2), (1.0, 0.5))}
            out.append(Point(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc}/{page}")), vectors, payload))
    return out


@pytest.fixture(params=["edge", "qdrant-memory", "qdrant-path"])
def store(request, tmp_path):
    s = {
        "edge": lambda: EdgeStore(tmp_path / "edge"),
        "qdrant-memory": lambda: QdrantServerStore(location=":memory:"),
        "qdrant-path": lambda: QdrantServerStore(path=str(tmp_path / "q")),
    }[request.param]()
    s.ensure_collection(SPEC)
    s.upsert(SPEC.name, _points())
    yield s
    s.close()


def _docs(points) -> list[str]:
    return sorted({p.payload["doc_id"] for p in points})


@pytest.mark.parametrize(
    ("equals", "expected"),
    [
        ({meta_key("team"): "finance"}, ["a"]),
        ({meta_key("team"): ["finance", "legal"]}, ["a", "b"]),
        ({meta_key("year"): 2024}, ["b"]),
        ({meta_key("year"): [2024, 2025]}, ["a", "b"]),
        ({meta_key("ratio"): 1.5}, ["b"]),
        ({meta_key("ratio"): [0.5, 1.5]}, ["a", "b"]),
        ({meta_key("draft"): True}, ["a"]),
        ({meta_key("draft"): False}, ["b"]),
        ({meta_key("team"): "finance", meta_key("year"): 2024}, []),
        ({meta_key("team"): "nobody"}, []),
    ],
)
def test_a_metadata_filter_restricts_search_count_and_scroll(store, equals, expected):
    flt = Filter(equals=equals)
    query = VectorQuery("dense", np.ones(DIM, dtype=np.float32), limit=9)
    assert _docs(store.search(SPEC.name, query, flt)) == expected
    fused = store.fused(SPEC.name, [query, VectorQuery("bm25", SparseVector((1,), (1.0,)), 9)], 9, flt)
    assert _docs(fused) == expected
    assert store.count(SPEC.name, flt) == 3 * len(expected)
    assert _docs(store.scroll(SPEC.name, flt)) == expected


def test_metadata_combines_with_the_document_and_page_filters(store):
    flt = Filter(doc_ids=("a", "c"), page_range=(2, 3), equals={meta_key("team"): ["finance", "legal"]})
    found = store.search(SPEC.name, VectorQuery("dense", np.ones(DIM, dtype=np.float32), limit=9), flt)
    assert sorted((p.payload["doc_id"], p.payload["page"]) for p in found) == [("a", 2), ("a", 3)]
    store.delete(SPEC.name, Filter(equals={meta_key("team"): "legal"}))
    assert store.count(SPEC.name) == 6 and store.count(SPEC.name, Filter(doc_ids=("b",))) == 0


def test_set_payload_rewrites_a_documents_metadata_without_touching_its_vectors(store):
    query = VectorQuery("dense", np.ones(DIM, dtype=np.float32), limit=9)
    before = {p.id: p.score for p in store.search(SPEC.name, query)}
    store.set_payload(SPEC.name, Filter(doc_ids=("b",)), {META: {"team": "ops", "year": 2024}})
    assert _docs(store.search(SPEC.name, query, Filter(equals={meta_key("team"): "ops"}))) == ["b"]
    assert store.count(SPEC.name, Filter(equals={meta_key("team"): "legal"})) == 0
    assert {p.id: p.score for p in store.search(SPEC.name, query)} == pytest.approx(before, abs=1e-6), "same vectors"
    (point,) = store.retrieve(SPEC.name, [str(uuid.uuid5(uuid.NAMESPACE_URL, "b/2"))])
    assert point.payload[META] == {"team": "ops", "year": 2024} and point.payload["page"] == 2
    with pytest.raises(StoreError, match="give a filter"):
        store.set_payload(SPEC.name, Filter(), {META: {}})


def test_the_payload_keeps_the_metadata_under_its_own_key(store):
    (point,) = store.retrieve(SPEC.name, [str(uuid.uuid5(uuid.NAMESPACE_URL, "a/1"))])
    assert point.payload[META] == METADATA["a"]
    (bare,) = store.retrieve(SPEC.name, [str(uuid.uuid5(uuid.NAMESPACE_URL, "c/1"))])
    assert META not in bare.payload, "a document without metadata keeps the payload it always had"


def test_edge_indexes_each_metadata_key_by_its_type_and_refuses_another_type(tmp_path):
    store = EdgeStore(tmp_path / "edge")
    store.ensure_collection(SPEC)
    store.upsert(SPEC.name, _points())
    store.close()
    store = EdgeStore(tmp_path / "edge")  # the index kinds are read back from the shard
    schema = {k: str(v.data_type).rsplit(".", 1)[-1] for k, v in store._shard(SPEC.name).info().payload_schema.items()}
    assert {k: v for k, v in schema.items() if k.startswith("meta.")} == {
        "meta.team": "Keyword", "meta.year": "Integer", "meta.ratio": "Float", "meta.draft": "Bool",
    }  # fmt: skip
    wrong = Point(str(uuid.uuid4()), {"dense": np.ones(DIM, dtype=np.float32)}, scoped({"doc_id": "d", "page": 1}, {"year": "soon"}))
    with pytest.raises(StoreError, match=r"keyword value under 'meta.year', which holds integer values"):
        store.upsert(SPEC.name, [wrong])
    store.close()

"""One contract for every VectorStore backend: the same data, the same queries, the same answers.

Backends: the embedded edge store (in a tmp folder) and qdrant-client's local mode
(``:memory:`` and ``path=``), which stands in for a server here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qdrant_edge")
pytest.importorskip("qdrant_client")

from rag.errors import StoreError  # noqa: E402
from retrievers.base import CollectionSpec, Filter, Point, SparseVector, VectorQuery, VectorSpec  # noqa: E402
from retrievers.store import EdgeStore, QdrantServerStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DIM = 16
DOCS = ("doc-a", "doc-b", "doc-c")
PAGES = 12
COMMON, RARE = 7, 901  # sparse term ids: one on every page, one on a single page
SPEC = CollectionSpec(
    "mmrag_test",
    (
        VectorSpec("dense", "dense", DIM),
        VectorSpec("bm25", "sparse", idf=True),
        VectorSpec("mean", "dense", DIM),
        VectorSpec("colpali", "multi", DIM, datatype="float16"),
    ),
)
BACKENDS = ("edge", "qdrant-memory", "qdrant-path")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_points(seed: int = 0) -> list[Point]:
    """Pages with topic-shaped multivectors; the rare sparse term sits on doc-b page 5 only."""
    rng = np.random.default_rng(seed)
    points = []
    for doc in DOCS:
        for page in range(1, PAGES + 1):
            topic = rng.normal(size=DIM)
            tokens = _unit(topic + 0.8 * rng.normal(size=(int(rng.integers(3, 9)), DIM)))
            terms = {COMMON: 3.0, int(rng.integers(100, 140)): 1.0}
            if (doc, page) == ("doc-b", 5):
                terms[RARE] = 1.0
            points.append(
                Point(
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc}/{page}")),
                    vectors={
                        "dense": rng.normal(size=DIM).astype(np.float32),
                        "bm25": SparseVector(tuple(terms), tuple(terms.values())),
                        "mean": tokens.mean(axis=0),
                        "colpali": tokens,
                    },
                    payload={"doc_id": doc, "page": page, "kind": "page" if page % 2 else "figure", "text": f"{doc} p{page}"},
                )
            )
    return points


POINTS = make_points()
BY_ID = {p.id: p for p in POINTS}


def open_backend(name: str, folder: Path):
    if name == "edge":
        return EdgeStore(folder / "edge")
    if name == "qdrant-memory":
        return QdrantServerStore(location=":memory:")
    return QdrantServerStore(path=str(folder / "qdrant"))


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    return request.param, tmp_path


@pytest.fixture
def store(backend):
    name, folder = backend
    s = open_backend(name, folder)
    s.ensure_collection(SPEC)
    s.upsert(SPEC.name, POINTS)
    yield s
    s.close()


def exact_cosine(query: np.ndarray, ids=None) -> list[str]:
    ids = ids or list(BY_ID)
    mat = _unit(np.stack([np.asarray(BY_ID[i].vectors["dense"], dtype=np.float64) for i in ids]))
    scores = mat @ _unit(query.astype(np.float64))
    return [ids[i] for i in np.argsort(-scores)]


def exact_maxsim(query: np.ndarray) -> list[tuple[str, float]]:
    q = _unit(query.astype(np.float64))
    scored = [(pid, float((q @ _unit(np.asarray(p.vectors["colpali"], np.float64)).T).max(axis=1).sum())) for pid, p in BY_ID.items()]
    return sorted(scored, key=lambda t: -t[1])


def test_upsert_count_and_delete_by_document(store):
    assert store.count(SPEC.name) == len(POINTS)
    store.delete(SPEC.name, Filter(doc_ids=("doc-b",)))
    assert store.count(SPEC.name) == len(POINTS) - PAGES
    assert store.count(SPEC.name, Filter(doc_ids=("doc-b",))) == 0
    assert store.count(SPEC.name, Filter(doc_ids=("doc-a",))) == PAGES


def test_upsert_same_id_twice_keeps_one_point_with_the_new_payload(store):
    p = POINTS[0]
    store.upsert(SPEC.name, [Point(p.id, p.vectors, {**p.payload, "text": "rewritten"})])
    assert store.count(SPEC.name) == len(POINTS)
    hit = store.search(SPEC.name, VectorQuery("dense", p.vectors["dense"], limit=1))[0]
    assert hit.id == p.id and hit.payload["text"] == "rewritten"


def test_dense_search_order_matches_exact_cosine(store):
    q = np.random.default_rng(5).normal(size=DIM)
    hits = store.search(SPEC.name, VectorQuery("dense", q, limit=5))
    assert [h.id for h in hits] == exact_cosine(q)[:5]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert hits[0].payload["doc_id"] in DOCS and isinstance(hits[0].payload["page"], int)


def test_sparse_idf_lets_a_rare_term_outrank_a_heavier_common_one(store):
    # Every page has the common term at weight 3; doc-b p5 also has the rare term at weight 1.
    # Raw weights would score it 4 against 3 for every other page; with IDF the common term is
    # worth almost nothing and the rare term decides by more than an order of magnitude.
    q = SparseVector((COMMON, RARE), (1.0, 1.0))
    hits = store.search(SPEC.name, VectorQuery("bm25", q, limit=3))
    assert (hits[0].payload["doc_id"], hits[0].payload["page"]) == ("doc-b", 5)
    assert hits[0].score > 10 * hits[1].score  # the common term contributes almost nothing


def test_fused_contains_the_best_of_each_query(store):
    dq = np.random.default_rng(11).normal(size=DIM)
    best_dense = exact_cosine(dq)[0]
    sparse_q = SparseVector((RARE,), (1.0,))
    queries = [VectorQuery("dense", dq, limit=10), VectorQuery("bm25", sparse_q, limit=10)]
    fused = store.fused(SPEC.name, queries, limit=4)
    ids = [h.id for h in fused]
    rare_page = next(p.id for p in POINTS if (p.payload["doc_id"], p.payload["page"]) == ("doc-b", 5))
    assert best_dense in ids and rare_page in ids
    assert len(ids) == 4 and len(set(ids)) == 4
    assert all(a.score >= b.score for a, b in zip(fused, fused[1:]))


def test_rescored_maxsim_agrees_with_numpy_bruteforce(store):
    rng = np.random.default_rng(3)
    target = POINTS[17].vectors["colpali"]
    query = _unit(target[:2] + 0.08 * rng.normal(size=(2, DIM)))  # a query resembling one page
    expected = exact_maxsim(query)
    hits = store.rescored(
        SPEC.name, VectorQuery("mean", query.mean(axis=0), limit=len(POINTS)), VectorQuery("colpali", query), limit=5
    )
    assert hits[0].id == expected[0][0] == POINTS[17].id
    assert [h.id for h in hits[:3]] == [pid for pid, _ in expected[:3]]
    assert hits[0].score == pytest.approx(expected[0][1], rel=1e-2)  # float16 storage


def test_rescored_only_ranks_the_prefetched_candidates(store):
    query = _unit(np.random.default_rng(4).normal(size=(3, DIM)))
    mean_q = query.mean(axis=0)
    hits = store.rescored(SPEC.name, VectorQuery("mean", mean_q, limit=4), VectorQuery("colpali", query), limit=10)
    means = {pid: _unit(np.asarray(p.vectors["mean"], np.float64)) for pid, p in BY_ID.items()}
    top4 = sorted(means, key=lambda pid: -float(means[pid] @ _unit(mean_q)))[:4]
    assert len(hits) == 4 and {h.id for h in hits} == set(top4)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Filter(doc_ids=("doc-a", "doc-c")), lambda p: p["doc_id"] in ("doc-a", "doc-c")),
        (Filter(page_range=(3, 5)), lambda p: 3 <= p["page"] <= 5),
        (Filter(equals={"kind": "figure"}), lambda p: p["kind"] == "figure"),
        (Filter(doc_ids=("doc-b",), page_range=(2, 9), equals={"kind": "page"}),
         lambda p: p["doc_id"] == "doc-b" and 2 <= p["page"] <= 9 and p["kind"] == "page"),
    ],
)  # fmt: skip
def test_filters_restrict_every_query_kind(store, flt, expected):
    allowed = {p.id for p in POINTS if expected(p.payload)}
    q = np.random.default_rng(9).normal(size=DIM)
    assert store.count(SPEC.name, flt) == len(allowed)
    hits = store.search(SPEC.name, VectorQuery("dense", q, limit=len(POINTS)), flt)
    assert [h.id for h in hits] == exact_cosine(q, [i for i in BY_ID if i in allowed])
    mq = _unit(np.random.default_rng(1).normal(size=(2, DIM)))
    rescored = store.rescored(SPEC.name, VectorQuery("mean", mq.mean(0), 50), VectorQuery("colpali", mq), 50, flt)
    assert {h.id for h in rescored} == allowed
    fused = store.fused(SPEC.name, [VectorQuery("dense", q, 50), VectorQuery("bm25", SparseVector((COMMON,), (1.0,)), 50)], 50, flt)
    assert {h.id for h in fused} == allowed
    assert {p.id for p in store.scroll(SPEC.name, flt)} == allowed


def test_scroll_returns_every_payload_and_the_stored_vectors(store):
    rows = list(store.scroll(SPEC.name))
    assert sorted(r.id for r in rows) == sorted(BY_ID)
    assert all(r.payload == BY_ID[r.id].payload for r in rows)
    with_vectors = {r.id: r for r in store.scroll(SPEC.name, with_vectors=True)}
    p = POINTS[4]
    got = with_vectors[p.id].vectors
    assert set(got) == {"dense", "bm25", "mean", "colpali"}
    assert got["colpali"].shape == np.asarray(p.vectors["colpali"]).shape
    assert dict(zip(got["bm25"].indices, got["bm25"].values)) == dict(zip(p.vectors["bm25"].indices, p.vectors["bm25"].values))
    cos = float(_unit(got["dense"]) @ _unit(np.asarray(p.vectors["dense"], np.float32)))
    assert cos == pytest.approx(1.0, abs=1e-5)


def test_without_payload_the_ranking_is_the_same_and_no_payload_comes_back(store):
    q = np.random.default_rng(6).normal(size=DIM)
    full = store.search(SPEC.name, VectorQuery("dense", q, limit=8))
    bare = store.search(SPEC.name, VectorQuery("dense", q, limit=8), with_payload=False)
    assert [(h.id, h.score) for h in bare] == [(h.id, h.score) for h in full]
    assert all(h.payload == {} for h in bare) and all(h.payload for h in full)
    mq = _unit(np.random.default_rng(8).normal(size=(2, DIM)))
    rescored = store.rescored(SPEC.name, VectorQuery("mean", mq.mean(0), 20), VectorQuery("colpali", mq), 5, with_payload=False)
    fused = store.fused(SPEC.name, [VectorQuery("dense", q, 10), VectorQuery("bm25", SparseVector((RARE,), (1.0,)), 10)], 5,
                        with_payload=False)  # fmt: skip
    assert len(rescored) == 5 and len(fused) == 5
    assert all(h.payload == {} for h in rescored + fused)


def test_with_payload_keys_returns_only_those_keys(store):
    q = np.random.default_rng(7).normal(size=DIM)
    hits = store.search(SPEC.name, VectorQuery("dense", q, limit=6), with_payload=["doc_id", "page", "not-stored"])
    assert [h.id for h in hits] == exact_cosine(q)[:6]
    for h in hits:
        assert h.payload == {"doc_id": BY_ID[h.id].payload["doc_id"], "page": BY_ID[h.id].payload["page"]}


def test_search_many_gives_each_query_its_own_list_as_search_would(store):
    rng = np.random.default_rng(12)
    queries = [
        VectorQuery("dense", rng.normal(size=DIM), 7),
        VectorQuery("bm25", SparseVector((RARE, 110), (1.0, 0.5)), 3),
        VectorQuery("mean", rng.normal(size=DIM), 5),
    ]
    flt = Filter(doc_ids=("doc-a", "doc-b"))
    lists = store.search_many(SPEC.name, queries, flt, with_payload=False)
    assert len(lists) == len(queries)
    for query, got in zip(queries, lists):
        one = store.search(SPEC.name, query, flt)
        assert [(h.id, round(h.score, 5)) for h in got] == [(h.id, round(h.score, 5)) for h in one]
        assert got and all(h.payload == {} for h in got)
    assert len(lists[0]) == 7 and len(lists[2]) == 5  # each its own limit
    assert store.search_many(SPEC.name, []) == []


def test_retrieve_returns_stored_payloads_in_the_asked_order(store):
    ids = [POINTS[5].id, POINTS[0].id, str(uuid.uuid4()), POINTS[30].id, POINTS[0].id]
    got = store.retrieve(SPEC.name, ids)
    assert [p.id for p in got] == [POINTS[5].id, POINTS[0].id, POINTS[30].id]  # unknown left out, each once
    assert all(p.payload == BY_ID[p.id].payload and p.score == 0.0 for p in got)
    only_text = store.retrieve(SPEC.name, [POINTS[3].id.upper()], with_payload=["text"])
    assert [(p.id, p.payload) for p in only_text] == [(POINTS[3].id, {"text": POINTS[3].payload["text"]})]
    assert store.retrieve(SPEC.name, []) == []


def test_a_payload_handed_out_is_the_callers_own(store):
    """Changing a payload a read returned changes neither the stored point nor the next read's."""
    pid = POINTS[3].id
    first = store.retrieve(SPEC.name, [pid])[0].payload
    first["text"] = "changed"
    hit = store.search(SPEC.name, VectorQuery("dense", POINTS[3].vectors["dense"], 1))[0]
    hit.payload["doc_id"] = "changed"  # type: ignore[index]
    scrolled = next(p for p in store.scroll(SPEC.name) if p.id == pid)
    scrolled.payload["text"] = "changed"  # type: ignore[index]
    assert store.retrieve(SPEC.name, [pid])[0].payload == BY_ID[pid].payload
    assert next(p for p in store.scroll(SPEC.name) if p.id == pid).payload == BY_ID[pid].payload
    assert store.search(SPEC.name, VectorQuery("dense", POINTS[3].vectors["dense"], 1))[0].payload == BY_ID[pid].payload


def test_payload_selection_and_ids_are_checked(store):
    q = VectorQuery("dense", np.ones(DIM), 3)
    with pytest.raises(StoreError, match=r"list of payload keys.*\['text'\]"):
        store.search(SPEC.name, q, with_payload="text")
    with pytest.raises(StoreError, match="list of payload keys"):
        store.search_many(SPEC.name, [q], with_payload=None)
    with pytest.raises(StoreError, match="point id must be a UUID string, got 'page-3'"):
        store.retrieve(SPEC.name, ["page-3"])
    with pytest.raises(StoreError, match="'missing' does not exist"):
        store.retrieve("missing", [POINTS[0].id])


def test_errors_are_store_errors_that_name_the_problem(store):
    with pytest.raises(StoreError, match="'missing' does not exist"):
        store.search("missing", VectorQuery("dense", np.ones(DIM)))
    with pytest.raises(StoreError, match=r"'mmrag_test', vector 'dense': expected .*size 16, got .*\(5,\)"):
        store.search(SPEC.name, VectorQuery("dense", np.ones(5)))
    with pytest.raises(StoreError, match=r"'mmrag_test', vector 'colpali': expected .*tokens x 16.*\(3, 8\)"):
        store.upsert(SPEC.name, [Point(POINTS[0].id, {"colpali": np.ones((3, 8))}, {})])
    with pytest.raises(StoreError, match="has no vector 'clip'"):
        store.search(SPEC.name, VectorQuery("clip", np.ones(DIM)))
    with pytest.raises(StoreError, match="exists with other vectors"):
        store.ensure_collection(CollectionSpec(SPEC.name, (VectorSpec("dense", "dense", 32),)))
    with pytest.raises(StoreError, match="empty filter"):
        store.delete(SPEC.name, Filter())
    assert store.count(SPEC.name) == len(POINTS)  # nothing above changed the data


def test_collections_lists_and_ensure_is_idempotent(store):
    store.ensure_collection(SPEC)
    other = CollectionSpec("mmrag_text", (VectorSpec("dense", "dense", 4, distance="dot"),))
    store.ensure_collection(other)
    assert store.collections() == ["mmrag_test", "mmrag_text"]
    assert store.count(SPEC.name) == len(POINTS)
    store.drop_collection("mmrag_text")
    assert store.collections() == ["mmrag_test"]


def test_backends_agree_on_the_same_data(tmp_path):
    stores = [open_backend(name, tmp_path) for name in ("edge", "qdrant-memory")]
    rng = np.random.default_rng(21)
    dq, mq = rng.normal(size=DIM), _unit(rng.normal(size=(3, DIM)))
    sq = SparseVector((COMMON, 110, 120), (1.0, 1.0, 0.5))
    fused_queries = [VectorQuery("dense", dq, 10), VectorQuery("bm25", sq, 2), VectorQuery("mean", mq.mean(0), 10)]
    answers = []
    for s in stores:
        s.ensure_collection(SPEC)
        s.upsert(SPEC.name, POINTS)
        answers.append(
            (
                [(h.id, round(h.score, 4)) for h in s.search(SPEC.name, VectorQuery("dense", dq, 8))],
                [(h.id, round(h.score, 4)) for h in s.search(SPEC.name, VectorQuery("bm25", sq, 5))],
                [h.id for h in s.rescored(SPEC.name, VectorQuery("mean", mq.mean(0), 20), VectorQuery("colpali", mq), 5)],
                [(h.id, round(h.score, 5)) for h in s.fused(SPEC.name, fused_queries, 6)],
                [[(h.id, round(h.score, 4)) for h in hits] for hits in s.search_many(SPEC.name, fused_queries[::2])],
                [(p.id, p.payload) for p in s.retrieve(SPEC.name, [POINTS[i].id for i in (9, 2, 20)])],
            )
        )
        s.close()
    edge, local = answers
    assert edge[0] == local[0]
    assert edge[1][:2] == local[1][:2]  # below that, pages tie on the common term
    assert [sc for _, sc in edge[1]] == [sc for _, sc in local[1]]
    assert edge[2] == local[2]
    assert {i for i, _ in edge[3]} == {i for i, _ in local[3]}
    assert [s for _, s in edge[3]] == [s for _, s in local[3]]  # the same RRF constant on both
    assert edge[4] == local[4]
    assert edge[5] == local[5]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


@pytest.mark.parametrize("name", ["edge", "qdrant-path"])
def test_data_survives_close_and_reopen_in_a_new_process(name, tmp_path):
    s = open_backend(name, tmp_path)
    s.ensure_collection(SPEC)
    s.upsert(SPEC.name, POINTS)
    s.close()
    q = POINTS[9].vectors["dense"]
    out = _run(
        f"""
        import numpy as np
        from pathlib import Path
        from retrievers.base import VectorQuery
        from tests.retrievers.test_store_contract import open_backend
        s = open_backend({name!r}, Path({str(tmp_path)!r}))
        hit = s.search("mmrag_test", VectorQuery("dense", np.array({q.tolist()!r}), 1))[0]
        print(s.collections(), s.count("mmrag_test"), hit.id)
        s.close()
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['mmrag_test']", str(len(POINTS)), POINTS[9].id]

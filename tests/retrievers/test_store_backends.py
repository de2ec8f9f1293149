"""What differs per backend: locking, crash durability, unreachable servers, the factory, imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qdrant_edge")
pytest.importorskip("qdrant_client")

import retrievers.store as store_pkg  # noqa: E402
from rag.config import StoreConfig  # noqa: E402
from rag.errors import ConfigError, KnowledgeBaseLockedError, StoreError  # noqa: E402
from retrievers.base import Filter, VectorQuery  # noqa: E402
from retrievers.store import EdgeStore, QdrantServerStore, collection_name, open_store  # noqa: E402
from test_store_contract import POINTS, SPEC  # noqa: E402  (pytest puts tests/ on sys.path)

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_edge_folder_is_locked_while_open_and_free_after_close(tmp_path):
    first = EdgeStore(tmp_path / "store")
    first.ensure_collection(SPEC)
    second = EdgeStore(tmp_path / "store")
    with pytest.raises(KnowledgeBaseLockedError, match="open in another store"):
        second.count(SPEC.name)
    out = _python(
        f"""
        from retrievers.store import EdgeStore
        from rag.errors import KnowledgeBaseLockedError
        try:
            EdgeStore({str(tmp_path / "store")!r}).collections()
        except KnowledgeBaseLockedError as exc:
            print("locked")
        """
    )
    assert out.stdout.strip() == "locked", out.stderr
    first.close()
    assert second.count(SPEC.name) == 0  # the same object opens once the folder is free
    second.close()


def test_qdrant_local_folder_lock_is_mapped(tmp_path):
    first = QdrantServerStore(path=str(tmp_path / "q"))
    first.ensure_collection(SPEC)
    with pytest.raises(KnowledgeBaseLockedError, match="already accessed"):
        QdrantServerStore(path=str(tmp_path / "q")).collections()
    first.close()


def test_edge_crash_after_upsert_loses_nothing_that_was_upserted(tmp_path):
    # A process upserts two batches and dies without close(): both batches must be there.
    out = _python(
        f"""
        import os
        from retrievers.store import EdgeStore
        from tests.retrievers.test_store_contract import POINTS, SPEC
        s = EdgeStore({str(tmp_path / "store")!r})
        s.ensure_collection(SPEC)
        s.upsert(SPEC.name, POINTS[:20])
        s.upsert(SPEC.name, POINTS[20:])
        os._exit(9)
        """
    )
    assert out.returncode == 9, out.stderr
    s = EdgeStore(tmp_path / "store")
    assert s.count(SPEC.name) == len(POINTS)
    hit = s.search(SPEC.name, VectorQuery("dense", POINTS[30].vectors["dense"], 1))[0]
    assert hit.id == POINTS[30].id and hit.payload == POINTS[30].payload
    s.close()


def test_edge_optimize_keeps_results(tmp_path):
    s = EdgeStore(tmp_path / "store")
    s.ensure_collection(SPEC)
    s.upsert(SPEC.name, POINTS)
    q = np.random.default_rng(2).normal(size=16)
    before = [h.id for h in s.search(SPEC.name, VectorQuery("dense", q, 5))]
    s.optimize(SPEC.name)
    assert [h.id for h in s.search(SPEC.name, VectorQuery("dense", q, 5))] == before
    s.delete(SPEC.name, Filter(page_range=(1, 6)))
    s.optimize(SPEC.name)
    assert s.count(SPEC.name) == len(POINTS) // 2
    s.close()


def test_unreachable_server_names_the_url():
    s = QdrantServerStore(url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(StoreError, match=r"http://127\.0\.0\.1:9 is unreachable"):
        s.collections()
    with pytest.raises(StoreError, match="unreachable"):
        s.count("mmrag_pages")


def test_server_store_needs_exactly_one_location():
    with pytest.raises(StoreError, match="exactly one of url, location or path"):
        QdrantServerStore()
    with pytest.raises(StoreError, match="exactly one of url, location or path"):
        QdrantServerStore(url="http://x:6333", location=":memory:")


def test_open_store_follows_the_config(tmp_path):
    edge = open_store(StoreConfig(), tmp_path / "kb")
    assert isinstance(edge, EdgeStore) and edge.path == tmp_path / "kb" / "store"
    assert not (tmp_path / "kb").exists()  # cheap: nothing is created before first use
    local = open_store(StoreConfig(backend="qdrant", path="vectors"), tmp_path / "kb")
    assert isinstance(local, QdrantServerStore) and local.path == str(tmp_path / "kb" / "vectors")
    server = open_store(
        StoreConfig(backend="qdrant", url="https://q.example:6333", api_key="k", shard_number=4, replication_factor=2),
        tmp_path,
    )
    assert (server.url, server.api_key, server.shard_number, server.replication_factor) == (
        "https://q.example:6333", "k", 4, 2,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="store.url"):
        open_store(StoreConfig(backend="qdrant"), tmp_path)
    mem = open_store(StoreConfig(backend="qdrant", location=":memory:"), tmp_path)
    mem.ensure_collection(SPEC)
    mem.upsert(SPEC.name, POINTS[:3])
    assert mem.count(SPEC.name) == 3


def test_collection_name_joins_prefix_and_corpus_and_rejects_paths():
    assert collection_name("mmrag", "pages") == "mmrag_pages"
    assert collection_name("", "text") == "text"
    with pytest.raises(StoreError, match="invalid collection name"):
        collection_name("../etc", "pages")


def test_importing_the_store_loads_no_qdrant_and_no_torch():
    out = _python(
        """
        import sys, rag, retrievers, retrievers.store
        print(sorted(m for m in sys.modules if m.split('.')[0] in {'qdrant_edge', 'qdrant_client', 'torch'}))
        """
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_exported_names_are_pinned():
    assert sorted(store_pkg.__all__) == sorted(
        ["EdgeStore", "QdrantServerStore", "open_store", "collection_name", "DEFAULT_RRF_K", "INDEXED_FIELDS"]
    )


def test_edge_recovers_a_collection_whose_creation_was_interrupted(tmp_path):
    s = EdgeStore(tmp_path / "store")
    s.ensure_collection(SPEC)
    s.close()
    (tmp_path / "store" / SPEC.name / "collection.json").unlink()  # as if killed before the record landed
    s = EdgeStore(tmp_path / "store")
    assert s.collections() == []
    s.ensure_collection(SPEC)
    s.upsert(SPEC.name, POINTS[:5])
    assert s.count(SPEC.name) == 5
    s.close()


@pytest.mark.parametrize("backend", ["edge", "qdrant-memory"])
def test_quantized_vectors_still_find_the_nearest_page(backend, tmp_path):
    from retrievers.base import CollectionSpec, Point, VectorSpec

    spec = CollectionSpec(
        "mmrag_q",
        (VectorSpec("dense", "dense", 16, quantize=True), VectorSpec("colpali", "multi", 16, datatype="float16", quantize=True)),
    )
    s = EdgeStore(tmp_path / "e") if backend == "edge" else QdrantServerStore(location=":memory:")
    s.ensure_collection(spec)
    s.upsert(spec.name, [Point(p.id, {"dense": p.vectors["dense"], "colpali": p.vectors["colpali"]}, p.payload) for p in POINTS])
    target = POINTS[11]
    assert s.search(spec.name, VectorQuery("dense", target.vectors["dense"], 1))[0].id == target.id
    hit = s.rescored(spec.name, VectorQuery("dense", target.vectors["dense"], 5), VectorQuery("colpali", target.vectors["colpali"]), 1)
    assert hit[0].id == target.id
    s.close()


def test_edge_shard_lock_is_mapped_where_there_is_no_folder_lock(tmp_path, monkeypatch):
    first = EdgeStore(tmp_path / "store")
    first.ensure_collection(SPEC)
    monkeypatch.setattr("retrievers.store._lock.FolderLock.acquire", lambda self: None)  # as on Windows
    second = EdgeStore(tmp_path / "store")
    with pytest.raises(KnowledgeBaseLockedError, match="open in another process"):
        second.count(SPEC.name)
    first.close()


@pytest.mark.parametrize("datatype", ["turbo8", "turbo4"])
@pytest.mark.parametrize("backend", ["edge", "qdrant-memory"])
def test_turbo_multivectors_keep_float_query_maxsim(backend, datatype, tmp_path):
    """8-/4-bit TurboQuant codes: the query stays float, MaxSim scores stay close to the float ones."""
    from retrievers.base import CollectionSpec, Point, VectorSpec

    rng = np.random.default_rng(3)
    pages = rng.normal(size=(40, 12, 64)).astype(np.float32)
    pages /= np.linalg.norm(pages, axis=-1, keepdims=True)
    spec = CollectionSpec("mmrag_t", (VectorSpec("mean", "dense", 64), VectorSpec("colpali", "multi", 64, datatype=datatype)))
    points = [Point(f"00000000-0000-0000-0000-{i:012d}", {"mean": p.mean(0), "colpali": p}, {"page": i}) for i, p in enumerate(pages)]
    query = pages[7][:5] + 0.3 * rng.normal(size=(5, 64)).astype(np.float32) / 8
    query /= np.linalg.norm(query, axis=-1, keepdims=True)
    exact = (pages @ query.T).max(axis=1).sum(axis=1)  # float MaxSim, (40,)
    s = EdgeStore(tmp_path / "e") if backend == "edge" else QdrantServerStore(location=":memory:")
    s.ensure_collection(spec)
    s.upsert(spec.name, points)
    hits = s.rescored(spec.name, VectorQuery("mean", query.mean(0), 40), VectorQuery("colpali", query), 5)
    assert hits[0].id == points[7].id
    tol = 0.02 if datatype == "turbo8" else 0.15  # 5 query tokens (local mode keeps floats: exact)
    for h in hits:
        assert abs(h.score - exact[int(h.payload["page"])]) < tol
    s.close()
    if backend == "edge":  # the datatype is part of the stored spec
        with EdgeStore(tmp_path / "e") as again:
            assert again._spec(spec.name).vector("colpali").datatype == datatype

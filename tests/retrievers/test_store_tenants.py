"""Tenants and cluster options of the server store.

Isolation is tested on qdrant-client's local mode (one folder standing in for one server, opened
by one tenant after the other). What only a server honours (payload indexes, ``is_tenant``, shard
keys, shard/replica counts) is tested by running the server code path against a recording client:
every request the store makes is rebuilt as the REST body qdrant-client would send
(``qdrant_client.http.models``) and validated by pydantic, then served by local mode.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pytest

qdrant_client = pytest.importorskip("qdrant_client")

from httpx import Headers  # noqa: E402
from qdrant_client.http import models as rest  # noqa: E402
from qdrant_client.http.exceptions import UnexpectedResponse  # noqa: E402

from rag.config import StoreConfig  # noqa: E402
from rag.errors import ConfigError, StoreError  # noqa: E402
from retrievers.base import CollectionSpec, Filter, Point, VectorQuery, VectorSpec  # noqa: E402
from retrievers.payloads import TENANT, meta_key, scoped  # noqa: E402
from retrievers.store import QdrantServerStore, open_store  # noqa: E402
from retrievers.store._qdrant_parts import collection_options, flip_id, tenant_index, tenant_mask  # noqa: E402

DIM = 8
SPEC = CollectionSpec("shared_pages", (VectorSpec("dense", "dense", DIM), VectorSpec("bm25", "sparse", idf=True)))


def _pid(doc: str, page: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc}/{page}"))


def _points(docs: dict[str, dict[str, Any]], seed: int = 0) -> list[Point]:
    rng = np.random.default_rng(seed)
    return [
        Point(_pid(doc, page), {"dense": rng.normal(size=DIM).astype(np.float32)},
              scoped({"doc_id": doc, "page": page, "kind": "page", "text": f"{doc} p{page}"}, meta))
        for doc, meta in docs.items() for page in (1, 2)
    ]  # fmt: skip


def _query(limit: int = 20) -> VectorQuery:
    return VectorQuery("dense", np.ones(DIM, dtype=np.float32), limit)


def _docs(points) -> list[str]:
    return sorted({p.payload["doc_id"] for p in points})


def test_two_tenants_on_one_server_see_count_and_delete_only_their_own(tmp_path):
    where = str(tmp_path / "server")
    # the same file ("shared") in both tenants, with other metadata: two points, not one overwritten
    with QdrantServerStore(path=where, tenant="acme") as acme:
        acme.ensure_collection(SPEC)
        acme.upsert(SPEC.name, _points({"shared": {"team": "ops"}, "acme-only": {}}))
    with QdrantServerStore(path=where, tenant="globex") as globex:
        globex.ensure_collection(SPEC)  # the collection exists: the second tenant joins it
        globex.upsert(SPEC.name, _points({"shared": {"team": "legal"}}, seed=1))
        assert _docs(globex.search(SPEC.name, _query())) == ["shared"]
        assert globex.count(SPEC.name) == 2
        (mine,) = globex.retrieve(SPEC.name, [_pid("shared", 1)])
        assert mine.id == _pid("shared", 1), "ids come back as the caller wrote them"
        assert mine.payload["meta"] == {"team": "legal"} and mine.payload[TENANT] == "globex"
        assert [p.id for p in globex.scroll(SPEC.name)] and all(p.payload[TENANT] == "globex" for p in globex.scroll(SPEC.name))
        globex.delete(SPEC.name, Filter(doc_ids=("shared",)))
        assert globex.count(SPEC.name) == 0
    with QdrantServerStore(path=where, tenant="acme") as acme:
        assert acme.count(SPEC.name) == 4, "the other tenant's delete left these intact"
        assert _docs(acme.search(SPEC.name, _query(), Filter(equals={meta_key("team"): "ops"}))) == ["shared"]
        assert _docs(acme.fused(SPEC.name, [_query(), _query(3)], 10)) == ["acme-only", "shared"]
        (point,) = acme.retrieve(SPEC.name, [_pid("shared", 2)])
        assert point.payload["meta"] == {"team": "ops"}
        acme.drop_collection(SPEC.name)  # a tenant drops its points, never the shared collection
    with QdrantServerStore(path=where) as admin:
        assert admin.collections() == [SPEC.name] and admin.count(SPEC.name) == 0


def test_a_tenant_flips_point_ids_reversibly_and_keeps_them_uuids():
    mask = tenant_mask("acme")
    pid = _pid("doc", 3)
    stored = flip_id(pid, mask)
    assert stored != pid and flip_id(stored, mask) == pid
    assert uuid.UUID(stored).version == uuid.UUID(pid).version == 5
    assert flip_id(pid, tenant_mask("globex")) != stored and flip_id(pid, tenant_mask(None)) == pid


def test_store_settings_for_tenants_are_checked():
    with pytest.raises(ConfigError, match="needs store.backend = 'qdrant'"):
        StoreConfig(tenant="acme")
    with pytest.raises(ConfigError, match="set store.tenant too"):
        StoreConfig(backend="qdrant", url="http://q:6333", sharding="tenant")
    with pytest.raises(ConfigError, match="store.tenant must be"):
        StoreConfig(backend="qdrant", url="http://q:6333", tenant="a b")
    with pytest.raises(ConfigError, match="replication_factor must be a whole number"):
        StoreConfig(backend="qdrant", url="http://q:6333", replication_factor=0)
    with pytest.raises(StoreError, match="shard_by_tenant needs a tenant"):
        QdrantServerStore(location=":memory:", shard_by_tenant=True)
    store = open_store(StoreConfig(backend="qdrant", url="http://q:6333", tenant="acme", sharding="tenant",
                                   shard_number=3, replication_factor=2, write_consistency_factor=2), "/kb")  # fmt: skip
    assert (store.tenant, store.shard_by_tenant, store.shard_number, store.replication_factor,
            store.write_consistency_factor) == ("acme", True, 3, 2, 2)  # fmt: skip


def test_local_mode_accepts_every_call_of_custom_sharding_by_tenant(tmp_path):
    with QdrantServerStore(path=str(tmp_path / "q"), tenant="acme", shard_by_tenant=True, shard_number=2,
                           replication_factor=2, write_consistency_factor=1) as store:  # fmt: skip
        store.ensure_collection(SPEC)
        store.upsert(SPEC.name, _points({"a": {"team": "ops"}}))
        assert store.count(SPEC.name) == 2
        assert len(store.search_many(SPEC.name, [_query(), _query(1)])) == 2
        assert _docs(store.rescored(SPEC.name, _query(), _query(), 5)) == ["a"]


class _Recording:
    """A client for the server code path: validates each request as the REST body qdrant-client's
    remote client would build from the same arguments, records it, and serves it from local mode."""

    def __init__(self, strict: bool = False) -> None:
        self.local = qdrant_client.QdrantClient(location=":memory:")
        self.bodies: list[tuple[str, Any]] = []
        self.shard_keys: list[Any] = []
        self.indexes: dict[str, Any] = {}
        self.strict = strict  # a server in strict mode: a filter on a key without an index is refused

    def _body(self, op: str, model: type, **fields: Any) -> None:
        body = model(**fields)
        model.model_validate(json.loads(body.model_dump_json(exclude_none=True)))  # the JSON a server would get
        self.bodies.append((op, body))
        unindexed = sorted(k for k in _filter_keys(getattr(body, "filter", None)) if k not in self.indexes)
        if self.strict and unindexed:
            raise UnexpectedResponse(400, "Bad Request", f"Index required but not found for {unindexed}".encode(), Headers())

    def _keyed(self, op: str, selector: Any) -> None:
        self.shard_keys.append((op, selector))

    def collection_exists(self, name: str) -> bool:
        return self.local.collection_exists(name)

    def get_collection(self, name: str) -> Any:
        info = self.local.get_collection(name)
        return info.model_copy(update={"payload_schema": {k: rest.PayloadIndexInfo(data_type=v, points=0) for k, v in self.indexes.items()}})

    def create_collection(self, collection_name: str, vectors_config: Any, sparse_vectors_config: Any = None, **options: Any) -> bool:
        self._body("create_collection", rest.CreateCollection, vectors=vectors_config, sparse_vectors=sparse_vectors_config, **options)
        return self.local.create_collection(collection_name, vectors_config=vectors_config, sparse_vectors_config=sparse_vectors_config)

    def create_payload_index(self, collection_name: str, field_name: str, field_schema: Any, wait: bool = True) -> None:
        self._body("create_payload_index", rest.CreateFieldIndex, field_name=field_name, field_schema=field_schema)
        kind = field_schema.type if isinstance(field_schema, rest.KeywordIndexParams) else field_schema
        self.indexes[field_name] = rest.PayloadSchemaType(getattr(kind, "value", kind))

    def create_shard_key(self, collection_name: str, shard_key: Any, **kwargs: Any) -> bool:
        self._body("create_shard_key", rest.CreateShardingKey, shard_key=shard_key, **kwargs)
        return True

    def upsert(self, collection_name: str, points: Any, wait: bool = True, shard_key_selector: Any = None) -> Any:
        self._body("upsert", rest.PointsList, points=points, shard_key=shard_key_selector)
        self._keyed("upsert", shard_key_selector)
        return self.local.upsert(collection_name, points=points, wait=wait)

    def query_points(self, collection_name: str, shard_key_selector: Any = None, query_filter: Any = None, **kw: Any) -> Any:
        self._body("query", rest.QueryRequest, shard_key=shard_key_selector, filter=query_filter,
                   **{k: v for k, v in kw.items() if k in ("query", "using", "prefetch", "limit", "with_payload")})  # fmt: skip
        self._keyed("query", shard_key_selector)
        return self.local.query_points(collection_name, query_filter=query_filter, **kw)

    def query_batch_points(self, collection_name: str, requests: list[Any]) -> Any:
        for r in requests:
            self._body("query_batch", rest.QueryRequest, **dict(r))
            self._keyed("query_batch", r.shard_key)
        return self.local.query_batch_points(collection_name, requests=requests)

    def count(self, collection_name: str, count_filter: Any = None, exact: bool = True, shard_key_selector: Any = None) -> Any:
        self._body("count", rest.CountRequest, filter=count_filter, exact=exact, shard_key=shard_key_selector)
        self._keyed("count", shard_key_selector)
        return self.local.count(collection_name, count_filter=count_filter, exact=exact)

    def delete(self, collection_name: str, points_selector: Any, wait: bool = True, shard_key_selector: Any = None) -> Any:
        self._body("delete", rest.FilterSelector, filter=points_selector.filter, shard_key=shard_key_selector)
        self._keyed("delete", shard_key_selector)
        return self.local.delete(collection_name, points_selector=points_selector, wait=wait)

    def scroll(self, collection_name: str, scroll_filter: Any = None, limit: int = 10, offset: Any = None,
               with_payload: Any = True, with_vectors: Any = False, shard_key_selector: Any = None) -> Any:  # fmt: skip
        self._body("scroll", rest.ScrollRequest, filter=scroll_filter, limit=limit, offset=offset,
                   with_payload=with_payload, with_vector=with_vectors, shard_key=shard_key_selector)  # fmt: skip
        self._keyed("scroll", shard_key_selector)
        return self.local.scroll(collection_name, scroll_filter=scroll_filter, limit=limit, offset=offset,
                                 with_payload=with_payload, with_vectors=with_vectors)  # fmt: skip

    def retrieve(self, collection_name: str, ids: list[str], with_payload: Any = True, with_vectors: Any = False,
                 shard_key_selector: Any = None) -> Any:  # fmt: skip
        self._body("retrieve", rest.PointRequest, ids=ids, with_payload=with_payload, with_vector=with_vectors,
                   shard_key=shard_key_selector)  # fmt: skip
        self._keyed("retrieve", shard_key_selector)
        return self.local.retrieve(collection_name, ids, with_payload=with_payload, with_vectors=with_vectors)

    def close(self) -> None:
        self.local.close()


def _filter_keys(flt: Any) -> set[str]:
    """The payload keys a filter's conditions name, at any depth."""
    if flt is None:
        return set()
    keys: set[str] = set()
    for part in ("must", "should", "must_not"):
        conditions = getattr(flt, part, None) or []
        for c in conditions if isinstance(conditions, list) else [conditions]:
            keys |= {c.key} if isinstance(c, rest.FieldCondition) else _filter_keys(getattr(c, "filter", c if isinstance(c, rest.Filter) else None))
    return keys


def _server_store(client: _Recording, **options: Any) -> QdrantServerStore:
    store = QdrantServerStore(url="http://qdrant.invalid:6333", **options)
    store._client, store._models = client, qdrant_client.models  # the server code path, served locally
    return store


def test_the_server_path_sends_valid_cluster_tenant_and_shard_key_requests():
    client = _Recording()
    store = _server_store(client, tenant="acme", shard_by_tenant=True, shard_number=2, replication_factor=3,
                          write_consistency_factor=2)  # fmt: skip
    store.ensure_collection(SPEC)
    store.upsert(SPEC.name, _points({"a": {"team": "ops", "year": 2025}}))
    assert _docs(store.search(SPEC.name, _query(), Filter(equals={meta_key("team"): "ops"}))) == ["a"]
    store.search_many(SPEC.name, [_query(), _query(2)])
    assert store.count(SPEC.name) == 2 and len(list(store.scroll(SPEC.name))) == 2
    assert store.retrieve(SPEC.name, [_pid("a", 1)])[0].payload["doc_id"] == "a"
    store.delete(SPEC.name, Filter(doc_ids=("a",)))

    (create,) = [b for op, b in client.bodies if op == "create_collection"]
    assert (create.shard_number, create.replication_factor, create.write_consistency_factor) == (2, 3, 2)
    assert create.sharding_method == rest.ShardingMethod.CUSTOM
    indexes = {b.field_name: b.field_schema for op, b in client.bodies if op == "create_payload_index"}
    assert indexes[TENANT] == rest.KeywordIndexParams(type=rest.KeywordIndexType.KEYWORD, is_tenant=True)
    assert {k: indexes[k] for k in ("doc_id", "page", "kind", "meta.team", "meta.year")} == {
        "doc_id": rest.PayloadSchemaType.KEYWORD, "page": rest.PayloadSchemaType.INTEGER, "kind": rest.PayloadSchemaType.KEYWORD,
        "meta.team": rest.PayloadSchemaType.KEYWORD, "meta.year": rest.PayloadSchemaType.INTEGER,
    }  # fmt: skip
    assert [b.shard_key for op, b in client.bodies if op == "create_shard_key"] == ["acme"]
    assert client.shard_keys and all(key == "acme" for _, key in client.shard_keys), client.shard_keys
    for op, body in client.bodies:
        if op in ("query", "query_batch", "count", "scroll"):
            conditions = body.filter.must
            assert rest.FieldCondition(key=TENANT, match=rest.MatchValue(value="acme")) in conditions, (op, body.filter)

    # a second run of the same tenant: the collection and its shard key exist, nothing is created again
    again = _server_store(client, tenant="acme", shard_by_tenant=True)
    before = len([op for op, _ in client.bodies if op.startswith("create")])
    again.ensure_collection(SPEC)
    assert [op for op, _ in client.bodies if op.startswith("create")][before:] == ["create_shard_key"]


def test_without_a_tenant_the_server_path_sends_what_it_always_sent():
    client = _Recording()
    store = _server_store(client)
    store.ensure_collection(SPEC)
    store.upsert(SPEC.name, _points({"a": {}}))
    store.search(SPEC.name, _query())
    (create,) = [b for op, b in client.bodies if op == "create_collection"]
    assert create.sharding_method is None and create.shard_number is None
    assert all(key is None for _, key in client.shard_keys)
    assert TENANT not in client.indexes and store.retrieve(SPEC.name, [_pid("a", 1)])[0].id == _pid("a", 1)
    (query,) = [b for op, b in client.bodies if op == "query"]
    assert query.filter is None


def test_cluster_options_are_fields_of_qdrant_clients_create_collection():
    options = collection_options(qdrant_client.models, 6, 2, 2, custom_sharding=True)
    body = rest.CreateCollection.model_validate({"vectors": {"dense": {"size": 4, "distance": "Cosine"}}, **options})
    assert body.model_dump(exclude_none=True, mode="json")["sharding_method"] == "custom"
    assert collection_options(qdrant_client.models, None, None, None, custom_sharding=False) == {}
    index = rest.CreateFieldIndex(field_name=TENANT, field_schema=tenant_index(qdrant_client.models))
    assert json.loads(index.model_dump_json(exclude_none=True))["field_schema"] == {"type": "keyword", "is_tenant": True}


def test_a_strict_mode_server_serves_every_filter_and_an_older_collection_gets_the_indexes_it_lacks():
    from retrievers.page_records import navigation_pages

    client = _Recording(strict=True)
    store = _server_store(client)
    store.ensure_collection(SPEC)
    store.upsert(SPEC.name, _points({"a": {"team": "ops"}, "b": {}}))
    # the filters a knowledge base sends: documents, page ranges, kinds, metadata, navigation pages
    assert _docs(store.search(SPEC.name, _query(), Filter(doc_ids=("a",), page_range=(1, 2)))) == ["a"]
    assert _docs(store.search(SPEC.name, _query(), Filter(equals={meta_key("team"): "ops", "kind": "page"}))) == ["a"]
    assert navigation_pages(store, {"pages": SPEC}) == {}  # refused without a "navigation" index
    store.delete(SPEC.name, Filter(doc_ids=("b",)))
    assert store.count(SPEC.name) == 2

    # a collection made by an older release, without the "navigation" index: opened, it gets it
    old = _Recording(strict=True)
    old.local.create_collection(SPEC.name, vectors_config={"dense": rest.VectorParams(size=DIM, distance=rest.Distance.COSINE)},
                                sparse_vectors_config={"bm25": rest.SparseVectorParams(modifier=rest.Modifier.IDF)})  # fmt: skip
    old.indexes = {"doc_id": rest.PayloadSchemaType.KEYWORD, "page": rest.PayloadSchemaType.INTEGER, "kind": rest.PayloadSchemaType.KEYWORD}
    reopened = _server_store(old)
    with pytest.raises(StoreError, match="Index required"):
        navigation_pages(reopened, {"pages": SPEC})  # what a strict server answered before the fix
    reopened.ensure_collection(SPEC)
    created = [b.field_name for op, b in old.bodies if op == "create_payload_index"]
    assert created == ["navigation"]
    assert navigation_pages(reopened, {"pages": SPEC}) == {}

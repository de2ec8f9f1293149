"""The server store: a Qdrant server or cluster through ``qdrant-client`` (or its local mode).

``url`` talks to a server (shards, replicas, API key); ``location=":memory:"`` or
``path=`` runs qdrant-client's local mode, which speaks the same Query API and is how
this code path is tested without a server.

Tenants: with ``tenant="acme"`` several knowledge bases share the server's collections. Every
point written gets ``tenant`` in its payload (a keyword index marked ``is_tenant``), every read,
count and delete is filtered by it, and point ids are seen through the tenant
(:func:`~retrievers.store._qdrant_parts.flip_id`) so the same file in two tenants is two points.
``shard_by_tenant`` goes further: the collection uses custom sharding and each tenant is a shard
key (its own ``shard_number`` shards), named on every request (``shard_key_selector``).
Cluster options (``shard_number``, ``replication_factor``, ``write_consistency_factor``) reach
``create_collection``; a collection that exists keeps its own. Local mode has no shards, shard
keys or payload indexes: the calls are made with the same arguments and it ignores them (shard
keys are not created there).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from rag.errors import KnowledgeBaseLockedError, StoreError
from rag.lazy import require
from retrievers.base import CollectionSpec, Filter, Point, ScoredPoint, SparseVector, VectorQuery, WithPayload
from retrievers.store._common import (
    DEFAULT_RRF_K,
    INDEXED_FIELDS,
    SCROLL_BATCH,
    check_filter,
    check_ids,
    check_name,
    check_points,
    check_query,
    check_with_payload,
    in_order,
    json_payload,
    new_indexes,
    numpy_vectors,
    spec_difference,
)
from retrievers.payloads import TENANT
from retrievers.store._qdrant_parts import (
    ClientErrors,
    client_filter,
    collection_options,
    flip_id,
    index_schema,
    scored,
    spec_from_info,
    tenant_index,
    tenant_mask,
    vectors_config,
)

__all__ = ["QdrantServerStore"]

logger = logging.getLogger(__name__)

_UPSERT_CHUNK = 256


def _import_client() -> tuple[Any, Any]:
    qdrant_client = require("qdrant_client", "store", "the Qdrant server store", package="qdrant-client")
    return qdrant_client, require("qdrant_client.models", "store", "the Qdrant server store", package="qdrant-client")


class QdrantServerStore:
    """A :class:`~retrievers.base.VectorStore` over ``qdrant_client.QdrantClient``.

    Exactly one of ``url``, ``location`` or ``path`` selects where the data lives.
    Collection names are used as given; ``prefix`` is kept for :func:`collection_name`.
    """

    backend = "qdrant"

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        location: str | None = None,
        path: str | None = None,
        prefix: str = "mmrag",
        shard_number: int | None = None,
        replication_factor: int | None = None,
        timeout: float = 30,
        *,
        rrf_k: int = DEFAULT_RRF_K,
        tenant: str | None = None,
        shard_by_tenant: bool = False,
        write_consistency_factor: int | None = None,
    ) -> None:
        chosen = [name for name, value in (("url", url), ("location", location), ("path", path)) if value is not None]
        if len(chosen) != 1:
            raise StoreError(
                f"QdrantServerStore needs exactly one of url, location or path; got {chosen or 'none'}. "
                "Use url='http://host:6333' for a server, location=':memory:' or path='folder' for local mode"
            )
        if rrf_k <= 0:
            raise StoreError(f"rrf_k must be positive, got {rrf_k}")
        if shard_by_tenant and tenant is None:
            raise StoreError("shard_by_tenant needs a tenant: the tenant is the shard key; set tenant='name'")
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise StoreError(f"tenant must be a non-empty string, got {tenant!r}")
        self.tenant, self.shard_by_tenant = tenant, shard_by_tenant
        self.write_consistency_factor = write_consistency_factor
        self._mask = tenant_mask(tenant)
        self.url, self.api_key, self.location = url, api_key, location
        self.path = None if path is None else str(path)
        self.prefix = prefix
        self.shard_number, self.replication_factor = shard_number, replication_factor
        self.timeout = timeout
        self.rrf_k = rrf_k
        self._client: Any = None
        self._models: Any = None
        self._specs: dict[str, CollectionSpec] = {}
        self._indexes: dict[str, dict[str, str]] = {}  # collection -> metadata payload path -> index kind

    @property
    def where(self) -> str:
        return self.url or self.location or f"path={self.path}"

    @property
    def is_local(self) -> bool:
        return self.url is None

    # -- lifecycle -----------------------------------------------------------------

    def load(self) -> QdrantServerStore:
        """Build the client (local mode opens and locks its folder here). Idempotent."""
        if self._client is not None:
            return self
        qdrant_client, self._models = _import_client()
        try:
            if self.url is not None:
                self._client = qdrant_client.QdrantClient(
                    url=self.url, api_key=self.api_key, timeout=int(self.timeout), check_compatibility=False
                )
            elif self.path is not None:
                self._client = qdrant_client.QdrantClient(path=self.path)
            else:
                self._client = qdrant_client.QdrantClient(location=self.location)
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                raise KnowledgeBaseLockedError(f"{self.where}: {exc}") from exc
            raise StoreError(f"{self.where}: cannot open the Qdrant client: {exc}") from exc
        except ValueError as exc:
            raise StoreError(f"{self.where}: cannot open the Qdrant client: {exc}") from exc
        return self

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None
                self._specs.clear()
                self._indexes.clear()

    def __enter__(self) -> QdrantServerStore:
        return self.load()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collections ---------------------------------------------------------------

    def collections(self) -> list[str]:
        client = self._c()
        with self._mapped("*", "list collections"):
            return sorted(c.name for c in client.get_collections().collections)

    def ensure_collection(self, spec: CollectionSpec) -> None:
        client = self._c()
        m = self._models
        name = check_name(spec.name)
        with self._mapped(name, "create"):
            exists = client.collection_exists(name)
        if exists:
            diff = spec_difference(self._spec(name), spec)
            if diff:
                raise StoreError(f"collection {name!r} exists with other vectors: {diff}; drop it or use another name")
            self._specs[name] = spec  # keeps datatype/quantize, which the server does not echo back uniformly
            self._tenant_ready(name)  # another tenant may have made the collection
            return
        dense, sparse = vectors_config(m, spec)
        options = collection_options(
            m, self.shard_number, self.replication_factor, self.write_consistency_factor, self.shard_by_tenant
        )
        with self._mapped(name, "create"):
            client.create_collection(
                collection_name=name, vectors_config=dense, sparse_vectors_config=sparse or None, **options
            )
        self._specs[name] = spec
        self._tenant_ready(name)
        logger.info("qdrant store %s: created collection %s", self.where, name)

    def _tenant_ready(self, name: str) -> None:
        """The payload indexes every filter of ours needs (:data:`INDEXED_FIELDS`, the tenant's) and
        (with ``shard_by_tenant``) the tenant's shard key exist in ``name``: a collection made by an
        older release gets the indexes it lacks, so a server in strict mode (which refuses a filter
        on a key without an index) serves it. A server only (local mode has none of them)."""
        if self.is_local:
            return
        client, m = self._c(), self._models
        with self._mapped(name, "payload indexes"):
            schema = client.get_collection(name).payload_schema or {}
            for field_name, kind in INDEXED_FIELDS:
                if field_name not in schema:
                    client.create_payload_index(name, field_name=field_name, field_schema=index_schema(m, kind), wait=True)
            if self.tenant is not None and TENANT not in schema:
                client.create_payload_index(name, field_name=TENANT, field_schema=tenant_index(m), wait=True)
        if self.tenant is None:
            return
        if self.shard_by_tenant:
            from qdrant_client.http.exceptions import UnexpectedResponse

            with self._mapped(name, "create shard key"):
                try:
                    client.create_shard_key(name, shard_key=self.tenant)
                    logger.info("qdrant store %s: %s: created shard key %r", self.where, name, self.tenant)
                except UnexpectedResponse as exc:  # made before, by this tenant's first run
                    if "already exists" not in (exc.content or b"").decode("utf-8", "replace").lower():
                        raise

    def drop_collection(self, name: str) -> None:
        """Delete a collection; with a tenant, only the tenant's points (the collection is shared)."""
        if self.tenant is not None:
            self._spec(name)
            with self._mapped(name, "drop"):
                self._c().delete(collection_name=name, points_selector=self._models.FilterSelector(filter=self._filter(None)),
                                 wait=True, **self._shard_key())  # fmt: skip
            self._specs.pop(name, None)
            return
        client = self._c()
        self._specs.pop(name, None)
        with self._mapped(name, "drop"):
            client.delete_collection(check_name(name))

    def optimize(self, collection: str) -> bool:
        """Nothing to do: a server optimizes in the background, local mode has no indexes."""
        self._spec(collection)
        return False

    # -- writes ----------------------------------------------------------------------

    def flush(self) -> None:
        """Nothing to do: every write waits for the server (``wait=True``) or local mode's file."""

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        client = self._c()
        m = self._models
        vectors = check_points(collection, self._spec(collection), points)
        self._index_metadata(collection, ((p.id, p.payload) for p in points))
        with self._mapped(collection, "upsert"):
            for start in range(0, len(points), _UPSERT_CHUNK):
                batch = [
                    m.PointStruct(id=flip_id(p.id, self._mask), vector=self._client_vectors(v),
                                  payload=self._payload(collection, p))
                    for p, v in zip(points[start : start + _UPSERT_CHUNK], vectors[start : start + _UPSERT_CHUNK])
                ]  # fmt: skip
                client.upsert(collection_name=collection, points=batch, wait=True, **self._shard_key())

    def delete(self, collection: str, flt: Filter) -> None:
        client = self._c()
        self._spec(collection)
        if client_filter(self._models, check_filter(flt)) is None:
            raise StoreError(f"refusing to delete from {collection!r} with an empty filter; use drop_collection")
        qfilter = self._filter(flt)
        with self._mapped(collection, "delete"):
            client.delete(collection_name=collection, points_selector=self._models.FilterSelector(filter=qfilter), wait=True,
                          **self._shard_key())  # fmt: skip

    def set_payload(self, collection: str, flt: Filter, payload: Mapping[str, Any]) -> None:
        """Set these top-level payload keys on every point ``flt`` matches (of this tenant; vectors untouched)."""
        client = self._c()
        self._spec(collection)
        if client_filter(self._models, check_filter(flt)) is None:
            raise StoreError(f"refusing to set the payload of every point of {collection!r}: give a filter")
        values = json_payload(collection, "(update)", payload)
        self._index_metadata(collection, [(f"matching {flt}", values)])
        with self._mapped(collection, "set payload"):
            client.set_payload(collection_name=collection, payload=values, points=self._models.FilterSelector(filter=self._filter(flt)),
                               wait=True, **self._shard_key())  # fmt: skip

    # -- reads -----------------------------------------------------------------------

    def count(self, collection: str, flt: Filter | None = None) -> int:
        client = self._c()
        self._spec(collection)
        with self._mapped(collection, "count"):
            return int(client.count(collection, count_filter=self._filter(check_filter(flt)), exact=True, **self._shard_key()).count)

    def search(
        self, collection: str, query: VectorQuery, flt: Filter | None = None, with_payload: WithPayload = True
    ) -> list[ScoredPoint]:
        client = self._c()
        vector = self._query_vector(collection, query)
        with self._mapped(collection, "query"):
            res = client.query_points(
                collection_name=collection,
                query=vector,
                using=query.using,
                query_filter=self._filter(check_filter(flt)),
                limit=query.limit,
                with_payload=check_with_payload(with_payload),
                **self._shard_key(),
            )
        return self._scored(res.points)

    def search_many(
        self, collection: str, queries: Sequence[VectorQuery], flt: Filter | None = None, with_payload: WithPayload = True
    ) -> list[list[ScoredPoint]]:
        """Each query on its own, in one batch request (one round trip to a server)."""
        client = self._c()
        m = self._models
        qfilter = self._filter(check_filter(flt))
        selector = check_with_payload(with_payload)
        requests = [
            m.QueryRequest(query=self._query_vector(collection, q), using=q.using, filter=qfilter, limit=q.limit,
                           with_payload=selector, shard_key=self.tenant if self.shard_by_tenant else None)
            for q in queries
        ]  # fmt: skip
        if not requests:
            return []
        with self._mapped(collection, "query"):
            responses = client.query_batch_points(collection_name=collection, requests=requests)
        return [self._scored(r.points) for r in responses]

    def fused(
        self,
        collection: str,
        queries: Sequence[VectorQuery],
        limit: int,
        flt: Filter | None = None,
        with_payload: WithPayload = True,
    ) -> list[ScoredPoint]:
        """Reciprocal rank fusion (k = ``rrf_k``) of one prefetch per query."""
        if not queries:
            raise StoreError(f"fused search on {collection!r} needs at least one query")
        client = self._c()
        m = self._models
        qfilter = self._filter(check_filter(flt))
        prefetch = [
            m.Prefetch(query=self._query_vector(collection, q), using=q.using, limit=q.limit, filter=qfilter)
            for q in queries
        ]
        with self._mapped(collection, "query"):
            res = client.query_points(
                collection_name=collection,
                prefetch=prefetch,
                query=m.RrfQuery(rrf=m.Rrf(k=self.rrf_k)),
                query_filter=qfilter,
                limit=limit,
                with_payload=check_with_payload(with_payload),
                **self._shard_key(),
            )
        return self._scored(res.points)

    def rescored(
        self,
        collection: str,
        prefetch: VectorQuery,
        final: VectorQuery,
        limit: int,
        flt: Filter | None = None,
        with_payload: WithPayload = True,
    ) -> list[ScoredPoint]:
        """Take ``prefetch.limit`` candidates by ``prefetch``, rank them by ``final`` (e.g. MaxSim)."""
        client = self._c()
        m = self._models
        qfilter = self._filter(check_filter(flt))
        pre = m.Prefetch(
            query=self._query_vector(collection, prefetch),
            using=prefetch.using,
            limit=prefetch.limit,
            filter=qfilter,
            params=m.SearchParams(hnsw_ef=max(prefetch.limit, 64)),
        )
        with self._mapped(collection, "query"):
            res = client.query_points(
                collection_name=collection,
                prefetch=[pre],
                query=self._query_vector(collection, final),
                using=final.using,
                query_filter=qfilter,
                limit=limit,
                with_payload=check_with_payload(with_payload),
                **self._shard_key(),
            )
        return self._scored(res.points)

    def retrieve(self, collection: str, ids: Sequence[str], with_payload: WithPayload = True) -> list[ScoredPoint]:
        """The points with these ids (score 0.0), in the order of ``ids``; ids not stored are left out."""
        client = self._c()
        self._spec(collection)
        wanted = check_ids(collection, ids)
        selector = check_with_payload(with_payload)
        if not wanted:
            return []
        stored = [flip_id(pid, self._mask) for pid in wanted]
        with self._mapped(collection, "retrieve"):
            records = client.retrieve(collection, stored, with_payload=selector, with_vectors=False, **self._shard_key())
        found = [ScoredPoint(id=flip_id(str(r.id), self._mask), score=0.0, payload=dict(r.payload or {})) for r in records]
        return in_order(wanted, found)

    def scroll(self, collection: str, flt: Filter | None = None, with_vectors: bool = False) -> Iterator[ScoredPoint]:
        client = self._c()
        spec = self._spec(collection)
        qfilter = self._filter(check_filter(flt))
        offset = None
        while True:
            with self._mapped(collection, "scroll"):
                records, offset = client.scroll(
                    collection, scroll_filter=qfilter, limit=SCROLL_BATCH, offset=offset,
                    with_payload=True, with_vectors=with_vectors, **self._shard_key(),
                )  # fmt: skip
            for r in records:
                vectors = numpy_vectors(spec, r.vector) if with_vectors else {}
                yield ScoredPoint(id=flip_id(str(r.id), self._mask), score=0.0, payload=dict(r.payload or {}), vectors=vectors)
            if offset is None or not records:
                return

    # -- internals -------------------------------------------------------------------

    def _c(self) -> Any:
        return self.load()._client

    def _spec(self, name: str) -> CollectionSpec:
        """The spec of an existing collection (rebuilt from the server's description once)."""
        if name in self._specs:
            return self._specs[name]
        client = self._c()
        with self._mapped(name, "describe"):
            exists = client.collection_exists(name)
            info = client.get_collection(name) if exists else None
        if info is None:
            raise StoreError(
                f"collection {name!r} does not exist at {self.where}; it has {self.collections()}. "
                "Create it with ensure_collection()"
            )
        spec = spec_from_info(name, info)
        self._specs[name] = spec
        return spec

    def _client_vectors(self, vectors: dict[str, Any]) -> dict[str, Any]:
        m = self._models
        return {
            k: m.SparseVector(indices=list(v.indices), values=list(v.values)) if isinstance(v, SparseVector) else v
            for k, v in vectors.items()
        }

    def _query_vector(self, collection: str, query: VectorQuery) -> Any:
        vector = check_query(collection, self._spec(collection), query)
        if isinstance(vector, SparseVector):
            return self._models.SparseVector(indices=list(vector.indices), values=list(vector.values))
        return vector

    def _filter(self, flt: Filter | None) -> Any:
        return client_filter(self._models, flt, self.tenant)

    def _shard_key(self) -> dict[str, Any]:
        """``shard_key_selector`` for a request, with custom sharding by tenant (else nothing)."""
        return {"shard_key_selector": self.tenant} if self.shard_by_tenant else {}

    def _payload(self, collection: str, point: Point) -> dict[str, Any]:
        payload = json_payload(collection, point.id, point.payload)
        if self.tenant is not None:
            payload[TENANT] = self.tenant
        return payload

    def _scored(self, points: Sequence[Any]) -> list[ScoredPoint]:
        found = scored(points)
        if not self._mask:
            return found
        return [ScoredPoint(id=flip_id(p.id, self._mask), score=p.score, payload=p.payload) for p in found]

    def _index_metadata(self, collection: str, payloads: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Give each metadata key of ``payloads`` (``(point, payload)`` pairs) a payload index of its
        value's type, once per key (a server only: local mode has no payload indexes)."""
        known = self._indexes.get(collection)
        if known is None:
            known = {}
            if not self.is_local:
                with self._mapped(collection, "describe"):
                    schema = self._c().get_collection(collection).payload_schema or {}
                for path, info in schema.items():
                    kind = str(getattr(info.data_type, "value", info.data_type)).lower()
                    if kind in ("keyword", "integer", "float", "bool"):
                        known[path] = kind
            self._indexes[collection] = known
        wanted = new_indexes(collection, known, payloads)
        for path, kind in wanted.items():
            if not self.is_local:
                with self._mapped(collection, "create index"):
                    self._c().create_payload_index(collection, field_name=path, field_schema=index_schema(self._models, kind),
                                                   wait=True)  # fmt: skip
                logger.info("qdrant store %s: %s: payload index %s (%s)", self.where, collection, path, kind)
            known[path] = kind

    def _mapped(self, collection: str, op: str) -> ClientErrors:
        return ClientErrors(self.where, self.url, collection, op)

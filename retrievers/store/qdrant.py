"""The server store: a Qdrant server or cluster through ``qdrant-client`` (or its local mode).

``url`` talks to a server (shards, replicas, API key); ``location=":memory:"`` or
``path=`` runs qdrant-client's local mode, which speaks the same Query API and is how
this code path is tested without a server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
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
    numpy_vectors,
    spec_difference,
)
from retrievers.store._qdrant_parts import ClientErrors, client_filter, scored, spec_from_info, vectors_config

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
    ) -> None:
        chosen = [name for name, value in (("url", url), ("location", location), ("path", path)) if value is not None]
        if len(chosen) != 1:
            raise StoreError(
                f"QdrantServerStore needs exactly one of url, location or path; got {chosen or 'none'}. "
                "Use url='http://host:6333' for a server, location=':memory:' or path='folder' for local mode"
            )
        if rrf_k <= 0:
            raise StoreError(f"rrf_k must be positive, got {rrf_k}")
        self.url, self.api_key, self.location = url, api_key, location
        self.path = None if path is None else str(path)
        self.prefix = prefix
        self.shard_number, self.replication_factor = shard_number, replication_factor
        self.timeout = timeout
        self.rrf_k = rrf_k
        self._client: Any = None
        self._models: Any = None
        self._specs: dict[str, CollectionSpec] = {}

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
            return
        dense, sparse = vectors_config(m, spec)
        with self._mapped(name, "create"):
            client.create_collection(
                collection_name=name,
                vectors_config=dense,
                sparse_vectors_config=sparse or None,
                shard_number=self.shard_number,
                replication_factor=self.replication_factor,
            )
            if not self.is_local:  # local mode has no payload indexes (and warns about them)
                for field_name, kind in INDEXED_FIELDS:
                    schema = m.PayloadSchemaType.KEYWORD if kind == "keyword" else m.PayloadSchemaType.INTEGER
                    client.create_payload_index(name, field_name=field_name, field_schema=schema, wait=True)
        self._specs[name] = spec
        logger.info("qdrant store %s: created collection %s", self.where, name)

    def drop_collection(self, name: str) -> None:
        client = self._c()
        self._specs.pop(name, None)
        with self._mapped(name, "drop"):
            client.delete_collection(check_name(name))

    def optimize(self, collection: str) -> bool:
        """Nothing to do: a server optimizes in the background, local mode has no indexes."""
        self._spec(collection)
        return False

    # -- writes ----------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        client = self._c()
        m = self._models
        vectors = check_points(collection, self._spec(collection), points)
        with self._mapped(collection, "upsert"):
            for start in range(0, len(points), _UPSERT_CHUNK):
                batch = [
                    m.PointStruct(id=p.id, vector=self._client_vectors(v), payload=json_payload(collection, p.id, p.payload))
                    for p, v in zip(points[start : start + _UPSERT_CHUNK], vectors[start : start + _UPSERT_CHUNK])
                ]
                client.upsert(collection_name=collection, points=batch, wait=True)

    def delete(self, collection: str, flt: Filter) -> None:
        client = self._c()
        self._spec(collection)
        qfilter = self._filter(check_filter(flt))
        if qfilter is None:
            raise StoreError(f"refusing to delete from {collection!r} with an empty filter; use drop_collection")
        with self._mapped(collection, "delete"):
            client.delete(collection_name=collection, points_selector=self._models.FilterSelector(filter=qfilter), wait=True)

    # -- reads -----------------------------------------------------------------------

    def count(self, collection: str, flt: Filter | None = None) -> int:
        client = self._c()
        self._spec(collection)
        with self._mapped(collection, "count"):
            return int(client.count(collection, count_filter=self._filter(check_filter(flt)), exact=True).count)

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
            )
        return scored(res.points)

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
                           with_payload=selector)
            for q in queries
        ]  # fmt: skip
        if not requests:
            return []
        with self._mapped(collection, "query"):
            responses = client.query_batch_points(collection_name=collection, requests=requests)
        return [scored(r.points) for r in responses]

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
            )
        return scored(res.points)

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
            )
        return scored(res.points)

    def retrieve(self, collection: str, ids: Sequence[str], with_payload: WithPayload = True) -> list[ScoredPoint]:
        """The points with these ids (score 0.0), in the order of ``ids``; ids not stored are left out."""
        client = self._c()
        self._spec(collection)
        wanted = check_ids(collection, ids)
        selector = check_with_payload(with_payload)
        if not wanted:
            return []
        with self._mapped(collection, "retrieve"):
            records = client.retrieve(collection, wanted, with_payload=selector, with_vectors=False)
        return in_order(wanted, [ScoredPoint(id=str(r.id), score=0.0, payload=dict(r.payload or {})) for r in records])

    def scroll(self, collection: str, flt: Filter | None = None, with_vectors: bool = False) -> Iterator[ScoredPoint]:
        client = self._c()
        spec = self._spec(collection)
        qfilter = self._filter(check_filter(flt))
        offset = None
        while True:
            with self._mapped(collection, "scroll"):
                records, offset = client.scroll(
                    collection, scroll_filter=qfilter, limit=SCROLL_BATCH, offset=offset,
                    with_payload=True, with_vectors=with_vectors,
                )  # fmt: skip
            for r in records:
                vectors = numpy_vectors(spec, r.vector) if with_vectors else {}
                yield ScoredPoint(id=str(r.id), score=0.0, payload=dict(r.payload or {}), vectors=vectors)
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
        return client_filter(self._models, flt)

    def _mapped(self, collection: str, op: str) -> ClientErrors:
        return ClientErrors(self.where, self.url, collection, op)

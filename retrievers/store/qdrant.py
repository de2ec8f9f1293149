"""The server store: a Qdrant server or cluster through ``qdrant-client`` (or its local mode).

``url`` talks to a server (shards, replicas, API key); ``location=":memory:"`` or
``path=`` runs qdrant-client's local mode, which speaks the same Query API and is how
this code path is tested without a server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from rag.errors import KnowledgeBaseLockedError, MissingDependencyError, MmragError, StoreError
from retrievers.base import CollectionSpec, Filter, Point, ScoredPoint, SparseVector, VectorQuery, VectorSpec
from retrievers.store._common import (
    DEFAULT_RRF_K,
    INDEXED_FIELDS,
    SCROLL_BATCH,
    check_filter,
    check_name,
    check_points,
    check_query,
    json_payload,
    numpy_vectors,
    spec_difference,
)

__all__ = ["QdrantServerStore"]

logger = logging.getLogger(__name__)

_UPSERT_CHUNK = 256


def _import_client() -> tuple[Any, Any]:
    try:
        import qdrant_client
        from qdrant_client import models
    except ImportError as exc:
        raise MissingDependencyError("qdrant-client", extra="store", purpose="the Qdrant server store") from exc
    return qdrant_client, models


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
        dense: dict[str, Any] = {}
        sparse: dict[str, Any] = {}
        for v in spec.vectors:
            if v.kind == "sparse":
                sparse[v.name] = m.SparseVectorParams(modifier=m.Modifier.IDF if v.idf else None)
                continue
            kwargs: dict[str, Any] = {
                "size": v.size,
                "distance": m.Distance.COSINE if v.distance == "cosine" else m.Distance.DOT,
            }
            if v.datatype != "float32":
                kwargs["datatype"] = m.Datatype(v.datatype)
            if v.quantize:
                kwargs["quantization_config"] = m.ScalarQuantization(
                    scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, quantile=0.99, always_ram=True)
                )
            if v.kind == "multi":
                kwargs["multivector_config"] = m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM)
                kwargs["hnsw_config"] = m.HnswConfigDiff(m=0)  # rescoring only, no graph over token vectors
            dense[v.name] = m.VectorParams(**kwargs)
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

    def search(self, collection: str, query: VectorQuery, flt: Filter | None = None) -> list[ScoredPoint]:
        client = self._c()
        vector = self._query_vector(collection, query)
        with self._mapped(collection, "query"):
            res = client.query_points(
                collection_name=collection,
                query=vector,
                using=query.using,
                query_filter=self._filter(check_filter(flt)),
                limit=query.limit,
                with_payload=True,
            )
        return _scored(res.points)

    def fused(
        self, collection: str, queries: Sequence[VectorQuery], limit: int, flt: Filter | None = None
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
                with_payload=True,
            )
        return _scored(res.points)

    def rescored(
        self, collection: str, prefetch: VectorQuery, final: VectorQuery, limit: int, flt: Filter | None = None
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
                with_payload=True,
            )
        return _scored(res.points)

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
        params = info.config.params
        vectors: list[VectorSpec] = []
        dense = params.vectors if isinstance(params.vectors, dict) else {"": params.vectors} if params.vectors else {}
        for vname, vp in dense.items():
            dist = "dot" if str(getattr(vp.distance, "value", vp.distance)).lower() == "dot" else "cosine"
            kind = "multi" if vp.multivector_config is not None else "dense"
            dtype = str(getattr(vp.datatype, "value", vp.datatype)).lower()
            dtype = dtype if dtype in ("float16", "turbo8", "turbo4") else "float32"
            vectors.append(VectorSpec(vname, kind, vp.size, dist, datatype=dtype,
                                      quantize=vp.quantization_config is not None))  # fmt: skip
        for vname, sp in (params.sparse_vectors or {}).items():
            idf = sp.modifier is not None and str(getattr(sp.modifier, "value", sp.modifier)).lower() == "idf"
            vectors.append(VectorSpec(vname, "sparse", idf=idf))
        spec = CollectionSpec(name=name, vectors=tuple(vectors))
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
        if flt is None:
            return None
        m = self._models
        must: list[Any] = []
        if flt.doc_ids is not None:
            must.append(m.FieldCondition(key="doc_id", match=m.MatchAny(any=list(flt.doc_ids))))
        if flt.page_range is not None:
            lo, hi = flt.page_range
            must.append(m.FieldCondition(key="page", range=m.Range(gte=lo, lte=hi)))
        for key, value in flt.equals.items():
            match = m.MatchAny(any=list(value)) if isinstance(value, (list, tuple)) else m.MatchValue(value=value)
            must.append(m.FieldCondition(key=key, match=match))
        return m.Filter(must=must) if must else None

    def _mapped(self, collection: str, op: str) -> _ClientErrors:
        return _ClientErrors(self, collection, op)


class _ClientErrors:
    """Maps qdrant-client / httpx / grpc exceptions to StoreError subclasses."""

    def __init__(self, store: QdrantServerStore, collection: str, op: str) -> None:
        self.store, self.collection, self.op = store, collection, op

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or isinstance(exc, MmragError) or not isinstance(exc, Exception):
            return False
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        where = f"qdrant store {self.store.where}, collection {self.collection!r}, {self.op}"
        if isinstance(exc, ResponseHandlingException) or _is_connection_error(exc):
            raise StoreError(
                f"the Qdrant server at {self.store.url} is unreachable ({exc}); check the URL, that the server "
                "is running and that this machine can reach it"
            ) from exc
        if isinstance(exc, UnexpectedResponse):
            if exc.status_code in (401, 403):
                raise StoreError(f"{where}: the server refused the API key (HTTP {exc.status_code})") from exc
            detail = exc.content.decode(errors="replace")[:500] if exc.content else exc.reason_phrase
            raise StoreError(f"{where}: HTTP {exc.status_code}: {detail}") from exc
        raise StoreError(f"{where}: {exc}") from exc


def _is_connection_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    return bool(names & {"ConnectError", "ConnectTimeout", "ConnectionError", "ConnectionRefusedError"}) or (
        type(exc).__name__ == "_InactiveRpcError" and "UNAVAILABLE" in str(exc)
    )


def _scored(points: Sequence[Any]) -> list[ScoredPoint]:
    return [ScoredPoint(id=str(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in points]



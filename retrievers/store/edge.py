"""The embedded store: Qdrant's engine in-process through ``qdrant-edge-py``.

Layout of the store folder (``<kb>/store``)::

    .lock                       flock held while a process has the store open
    <collection>/collection.json  the CollectionSpec and provenance (written atomically)
    <collection>/shard/           one edge shard (segments + write-ahead log)

Durability: every update goes through the shard's write-ahead log (a killed process loses
nothing written: the log is replayed when the shard opens again); :meth:`EdgeStore.flush`
writes the segments to disk (past a crash of the machine). With ``flush_each_batch`` (the
class's default) each ``upsert``/``delete`` call ends with a flush; the knowledge base opens
its store without it and flushes once per document, before the document is marked complete
(:func:`retrievers.store.factory.open_store`): a flush waits for the disk (~70 ms here, three
collections per batch), time the ingest's embedding thread spent idle after every batch.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from rag.errors import StoreError
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
    spec_from_dict,
    spec_to_dict,
)
from rag.atomic import atomic_write
from retrievers.store._edge_parts import EdgeErrors, edge_config, edge_filter, edge_version, index_kind, index_schema
from retrievers.store._lock import FolderLock

__all__ = ["EdgeStore"]

logger = logging.getLogger(__name__)

_SPEC_FILE = "collection.json"
_SHARD_DIR = "shard"
_UPSERT_CHUNK = 256


def _import_edge() -> Any:
    return require("qdrant_edge", "store", "the embedded vector store", package="qdrant-edge-py")


class EdgeStore:
    """A persistent :class:`~retrievers.base.VectorStore` in a folder, one edge shard per collection.

    The constructor only records settings; :meth:`load` (called by the first operation)
    takes the folder lock. ``close`` flushes and releases everything; the store can be
    loaded again afterwards.

    Fresh points sit in appendable segments that are searched exhaustively (exact). After a
    bulk ingest call :meth:`optimize` once: it builds the HNSW graph and int8 codes of the
    dense vectors (multivectors stay rescoring-only, ``m=0``); 10k pages take a few seconds.
    """

    backend = "edge"

    def __init__(
        self,
        path: str | Path,
        *,
        rrf_k: int = DEFAULT_RRF_K,
        flush_each_batch: bool = True,
        max_search_threads: int | None = None,
    ) -> None:
        if rrf_k <= 0:
            raise StoreError(f"rrf_k must be positive, got {rrf_k}")
        self.path = Path(path)
        self.rrf_k = rrf_k
        self.flush_each_batch = flush_each_batch
        self.max_search_threads = max_search_threads
        self._engine: Any = None
        self._lock: FolderLock | None = None
        self._shards: dict[str, Any] = {}
        self._specs: dict[str, CollectionSpec] = {}
        self._indexes: dict[str, dict[str, str]] = {}  # collection -> metadata payload path -> index kind

    @property
    def _qe(self) -> Any:
        """The qdrant_edge module (loading the store on first use)."""
        return self.load()._engine

    # -- lifecycle -----------------------------------------------------------------

    def load(self) -> EdgeStore:
        """Import the engine, create the folder and lock it. Idempotent."""
        if self._lock is not None:
            return self
        self._engine = _import_edge()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store folder {self.path}: {exc}") from exc
        lock = FolderLock(self.path)
        lock.acquire()
        self._lock = lock
        logger.debug("edge store %s opened", self.path)
        return self

    def close(self) -> None:
        """Flush and close every shard, release the folder lock. Idempotent."""
        errors = []
        for name, shard in list(self._shards.items()):
            try:
                shard.flush()
                shard.close()
            except Exception as exc:  # keep closing the others
                errors.append(f"{name}: {exc}")
        self._shards.clear()
        self._specs.clear()
        self._indexes.clear()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if errors:
            raise StoreError(f"closing {self.path} failed for {errors}")

    def __enter__(self) -> EdgeStore:
        return self.load()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collections ---------------------------------------------------------------

    def collections(self) -> list[str]:
        self.load()
        return sorted(p.parent.name for p in self.path.glob(f"*/{_SPEC_FILE}"))

    def ensure_collection(self, spec: CollectionSpec) -> None:
        """Create the collection, or check that the existing one has the same vectors."""
        self.load()
        name = check_name(spec.name)
        folder = self.path / name
        if (folder / _SPEC_FILE).is_file():
            existing = self._spec(name)
            diff = spec_difference(existing, spec)
            if diff:
                raise StoreError(f"collection {name!r} exists with other vectors: {diff}; drop it or use another name")
            self._shard(name)
            return
        folder.mkdir(parents=True, exist_ok=True)
        qe = self._qe
        shard_dir = folder / _SHARD_DIR
        if shard_dir.exists():  # left by a crash before the collection record landed: never used
            shutil.rmtree(shard_dir)
        with self._mapped(name, "create"):
            shard = qe.EdgeShard.create(str(shard_dir), self._edge_config(spec))
            for field_name, kind in INDEXED_FIELDS:
                schema = (
                    qe.PayloadSchemaType.Keyword
                    if kind == "keyword"
                    else qe.IntegerIndexParams(lookup=True, range=True)
                )
                shard.update(qe.UpdateOperation.create_field_index(field_name, schema))
            shard.flush()
        record = {"format": 1, "backend": "qdrant-edge", "engine_version": edge_version(), "spec": spec_to_dict(spec)}
        atomic_write(folder / _SPEC_FILE, json.dumps(record, indent=2))  # the collection exists once this lands
        self._shards[name] = shard
        self._specs[name] = spec
        logger.info("edge store: created collection %s (%s)", name, ", ".join(f"{v.name}:{v.kind}" for v in spec.vectors))

    def drop_collection(self, name: str) -> None:
        """Delete a collection and its files (no error when it does not exist)."""
        self.load()
        shard = self._shards.pop(name, None)
        self._specs.pop(name, None)
        self._indexes.pop(name, None)
        if shard is not None:
            shard.close()
        folder = self.path / check_name(name)
        if folder.is_dir():
            (folder / _SPEC_FILE).unlink(missing_ok=True)  # first: a half-deleted folder is not a collection
            shutil.rmtree(folder)

    def optimize(self, collection: str) -> bool:
        """Merge segments and build indexes now (blocking). True if anything changed."""
        shard = self._shard(collection)
        with self._mapped(collection, "optimize"):
            changed = bool(shard.optimize())
            shard.flush()
        return changed

    def flush(self) -> None:
        for name, shard in self._shards.items():
            with self._mapped(name, "flush"):
                shard.flush()

    # -- writes ----------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        shard = self._shard(collection)
        spec = self._specs[collection]
        vectors = check_points(collection, spec, points, as_array=True)
        qe = self._qe
        started = time.perf_counter()
        self._index_metadata(collection, shard, ((p.id, p.payload) for p in points))
        with self._mapped(collection, "upsert"):
            for start in range(0, len(points), _UPSERT_CHUNK):
                batch = [
                    qe.Point(p.id, self._edge_vectors(v), json_payload(collection, p.id, p.payload))
                    for p, v in zip(points[start : start + _UPSERT_CHUNK], vectors[start : start + _UPSERT_CHUNK])
                ]
                shard.update(qe.UpdateOperation.upsert_points(batch))
            if self.flush_each_batch and points:
                shard.flush()
        logger.debug("edge store: upserted %d points into %s in %.3f s", len(points), collection, time.perf_counter() - started)

    def delete(self, collection: str, flt: Filter) -> None:
        edge_filter = self._edge_filter(check_filter(flt))
        if edge_filter is None:
            raise StoreError(f"refusing to delete from {collection!r} with an empty filter; use drop_collection")
        shard = self._shard(collection)
        with self._mapped(collection, "delete"):
            shard.update(self._qe.UpdateOperation.delete_points_by_filter(edge_filter))
            if self.flush_each_batch:
                shard.flush()

    def set_payload(self, collection: str, flt: Filter, payload: Mapping[str, Any]) -> None:
        """Set these top-level payload keys on every point ``flt`` matches (vectors untouched)."""
        edge_filter = self._edge_filter(check_filter(flt))
        if edge_filter is None:
            raise StoreError(f"refusing to set the payload of every point of {collection!r}: give a filter")
        shard = self._shard(collection)
        values = json_payload(collection, "(update)", payload)
        self._index_metadata(collection, shard, [(f"matching {flt}", values)])
        with self._mapped(collection, "set payload"):
            shard.update(self._qe.UpdateOperation.set_payload_by_filter(edge_filter, values))
            if self.flush_each_batch:
                shard.flush()

    # -- reads -----------------------------------------------------------------------

    def count(self, collection: str, flt: Filter | None = None) -> int:
        shard = self._shard(collection)
        with self._mapped(collection, "count"):
            return int(shard.count(self._qe.CountRequest(exact=True, filter=self._edge_filter(check_filter(flt)))))

    def search(
        self, collection: str, query: VectorQuery, flt: Filter | None = None, with_payload: WithPayload = True
    ) -> list[ScoredPoint]:
        return self.search_many(collection, [query], flt, with_payload)[0]

    def search_many(
        self, collection: str, queries: Sequence[VectorQuery], flt: Filter | None = None, with_payload: WithPayload = True
    ) -> list[list[ScoredPoint]]:
        """Each query on its own, as one batch for the engine (one call, one pass over the segments)."""
        qe = self._qe
        shard = self._shard(collection)
        edge_filter = self._edge_filter(check_filter(flt))
        selector = check_with_payload(with_payload)
        requests = [
            qe.QueryRequest(limit=q.limit, query=self._nearest(collection, q), filter=edge_filter, with_payload=selector)
            for q in queries
        ]
        if len(requests) <= 1:
            return [self._run(collection, shard, r) for r in requests]
        with self._mapped(collection, "query"):
            found = shard.query_batch(qe.QueryBatchRequest(requests))
        return [_scored(points) for points in found]

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
        qe = self._qe
        shard = self._shard(collection)
        edge_filter = self._edge_filter(check_filter(flt))
        prefetches = [
            qe.Prefetch(limit=q.limit, query=self._nearest(collection, q), filter=edge_filter) for q in queries
        ]
        request = qe.QueryRequest(
            limit=limit, prefetches=prefetches, query=qe.Fusion.Rrf(k=self.rrf_k), filter=edge_filter,
            with_payload=check_with_payload(with_payload),
        )  # fmt: skip
        return self._run(collection, shard, request)

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
        qe = self._qe
        shard = self._shard(collection)
        edge_filter = self._edge_filter(check_filter(flt))
        params = qe.SearchParams(hnsw_ef=max(prefetch.limit, 64))
        pre = qe.Prefetch(limit=prefetch.limit, query=self._nearest(collection, prefetch), filter=edge_filter, params=params)
        request = qe.QueryRequest(
            limit=limit, prefetches=[pre], query=self._nearest(collection, final), filter=edge_filter,
            with_payload=check_with_payload(with_payload),
        )  # fmt: skip
        return self._run(collection, shard, request)

    def retrieve(self, collection: str, ids: Sequence[str], with_payload: WithPayload = True) -> list[ScoredPoint]:
        """The points with these ids (score 0.0), in the order of ``ids``; ids not stored are left out."""
        shard = self._shard(collection)
        wanted = check_ids(collection, ids)
        selector = check_with_payload(with_payload)
        if not wanted:
            return []
        with self._mapped(collection, "retrieve"):
            records = shard.retrieve(wanted, with_payload=selector, with_vector=False)
        # the engine builds a new dict on each ``.payload`` read: no copy needed
        return in_order(wanted, [ScoredPoint(_id_text(r.id), 0.0, r.payload or {}) for r in records])

    def scroll(self, collection: str, flt: Filter | None = None, with_vectors: bool = False) -> Iterator[ScoredPoint]:
        shard = self._shard(collection)
        spec = self._specs[collection]
        edge_filter = self._edge_filter(check_filter(flt))
        offset = None
        while True:
            request = self._qe.ScrollRequest(
                offset=offset, limit=SCROLL_BATCH, filter=edge_filter, with_payload=True, with_vector=with_vectors
            )
            with self._mapped(collection, "scroll"):
                records, offset = shard.scroll(request)
            for r in records:
                vectors = numpy_vectors(spec, r.vector) if with_vectors else {}
                yield ScoredPoint(id=str(r.id), score=0.0, payload=r.payload or {}, vectors=vectors)
            if offset is None or not records:
                return

    # -- internals -------------------------------------------------------------------

    def _spec(self, name: str) -> CollectionSpec:
        if name not in self._specs:
            path = self.path / check_name(name) / _SPEC_FILE
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise StoreError(
                    f"collection {name!r} does not exist in {self.path}; it has {self.collections()}. "
                    "Create it with ensure_collection()"
                ) from None
            except (OSError, ValueError, KeyError) as exc:
                raise StoreError(f"{path}: unreadable collection record: {exc}") from exc
            self._specs[name] = spec_from_dict(record["spec"])
        return self._specs[name]

    def _shard(self, name: str) -> Any:
        self.load()
        if name in self._shards:
            return self._shards[name]
        spec = self._spec(name)
        shard_dir = self.path / name / _SHARD_DIR
        with self._mapped(name, "open"):
            if (shard_dir / "edge_config.json").is_file():
                shard = self._qe.EdgeShard.load(str(shard_dir), self._edge_config(spec, reopening=True))
            else:
                raise StoreError(f"collection {name!r}: the shard folder {shard_dir} is missing or incomplete")
        self._shards[name] = shard
        return shard

    def _index_metadata(self, collection: str, shard: Any, payloads: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Give each metadata key of ``payloads`` (``(point, payload)`` pairs) a payload index of its
        value's type (once per key)."""
        known = self._indexes.get(collection)
        if known is None:
            with self._mapped(collection, "describe"):
                schema = shard.info().payload_schema
            known = {path: kind for path, info in schema.items() if (kind := index_kind(info)) is not None}
            self._indexes[collection] = known
        wanted = new_indexes(collection, known, payloads)
        with self._mapped(collection, "create index"):
            for path, kind in wanted.items():
                shard.update(self._qe.UpdateOperation.create_field_index(path, index_schema(self._qe, kind)))
                known[path] = kind
                logger.info("edge store: %s: payload index %s (%s)", collection, path, kind)

    def _edge_config(self, spec: CollectionSpec, reopening: bool = False) -> Any | None:
        if reopening and self.max_search_threads is None:
            return None  # keep everything as stored
        return edge_config(self._qe, spec, self.max_search_threads)

    def _edge_vectors(self, vectors: dict[str, Any]) -> dict[str, Any]:
        qe = self._qe
        return {
            k: qe.SparseVector(list(v.indices), list(v.values)) if isinstance(v, SparseVector) else v.tolist()
            for k, v in vectors.items()  # lists, one point at a time: faster than arrays, and short-lived
        }

    def _nearest(self, collection: str, query: VectorQuery) -> Any:
        vector = check_query(collection, self._specs[collection], query)
        if isinstance(vector, SparseVector):
            vector = self._qe.SparseVector(list(vector.indices), list(vector.values))
        return self._qe.Query.Nearest(vector, using=query.using)

    def _edge_filter(self, flt: Filter | None) -> Any:
        return edge_filter(self._qe, flt)

    def _run(self, collection: str, shard: Any, request: Any) -> list[ScoredPoint]:
        with self._mapped(collection, "query"):
            found = shard.query(request)
        return _scored(found)

    def _mapped(self, collection: str, op: str) -> EdgeErrors:
        return EdgeErrors(self.path, collection, op)


def _scored(found: Sequence[Any]) -> list[ScoredPoint]:
    # each ``.payload`` read of an engine record is a new dict (copying it again cost ~40 % of
    # turning a retrieved page record into Python)
    return [ScoredPoint(_id_text(p.id), float(p.score), p.payload or {}) for p in found]


def _id_text(pid: Any) -> str:
    """A point id as mmrag spells it (a UUID string). The engine hands ids out as ``uuid.UUID``,
    which format in about a microsecond: a question's lists hold some 250 of them, most seen
    by earlier questions."""
    return _uuid_text(pid.int) if isinstance(pid, uuid.UUID) else str(pid)


@lru_cache(maxsize=1 << 14)  # about 3 MB when full
def _uuid_text(value: int) -> str:
    return str(uuid.UUID(int=value))

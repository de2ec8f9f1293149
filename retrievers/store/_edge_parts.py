"""Pieces of the embedded store that only translate: spec -> edge config, Filter -> edge
filter, engine errors -> StoreError, the engine's version. Split out of ``edge.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import KnowledgeBaseLockedError, MmragError, StoreError
from retrievers.base import CollectionSpec, Filter

__all__ = ["edge_config", "edge_filter", "EdgeErrors", "edge_version", "index_schema", "index_kind"]

#: VectorSpec.datatype -> qdrant_edge.VectorStorageDatatype member (float32 is the default).
_DATATYPES = {"float16": "Float16", "turbo8": "Turbo8", "turbo4": "Turbo4"}


def edge_config(qe: Any, spec: CollectionSpec, max_search_threads: int | None) -> Any:
    """The ``EdgeConfig`` of a new shard for ``spec``."""
    dense: dict[str, Any] = {}
    sparse: dict[str, Any] = {}
    for v in spec.vectors:
        if v.kind == "sparse":
            sparse[v.name] = qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf if v.idf else None)
            continue
        kwargs: dict[str, Any] = {
            "size": v.size,
            "distance": qe.Distance.Cosine if v.distance == "cosine" else qe.Distance.Dot,
        }
        if v.datatype in _DATATYPES:
            kwargs["datatype"] = getattr(qe.VectorStorageDatatype, _DATATYPES[v.datatype])
        if v.quantize:
            kwargs["quantization_config"] = qe.ScalarQuantizationConfig(
                type=qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Cached
            )
        if v.kind == "multi":
            kwargs["multivector_config"] = qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim)
            # rescoring only: an HNSW graph over every token vector takes tens of minutes to build
            kwargs["hnsw_config"] = qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000)
        dense[v.name] = qe.EdgeVectorParams(**kwargs)
    return qe.EdgeConfig(vectors=dense or None, sparse_vectors=sparse or None, max_search_threads=max_search_threads)


def edge_filter(qe: Any, flt: Filter | None) -> Any:
    if flt is None:
        return None
    must: list[Any] = []
    if flt.doc_ids is not None:
        must.append(qe.FieldCondition(key="doc_id", match=qe.MatchAny(list(flt.doc_ids))))
    if flt.page_range is not None:
        lo, hi = flt.page_range
        must.append(qe.FieldCondition(key="page", range=qe.RangeFloat(gte=float(lo), lte=float(hi))))
    for key, value in flt.equals.items():
        must.append(_equals(qe, key, value))
    return qe.Filter(must=must) if must else None


def _equals(qe: Any, key: str, value: Any) -> Any:
    """One ``key == value`` (any of a list) condition; a float matches by a closed range (Qdrant
    matches only keywords, integers and booleans exactly)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    exact = [v for v in values if isinstance(v, (str, int)) and not isinstance(v, bool)]
    # a Python bool reaches the engine as the integer 1 or 0 (qdrant-edge-py 0.9 tries int first)
    # and then matches nothing; numpy's bool is taken as a bool
    conditions = [
        qe.FieldCondition(key=key, range=qe.RangeFloat(gte=v, lte=v)) if isinstance(v, float)
        else qe.FieldCondition(key=key, match=qe.MatchValue(np.bool_(v)))
        for v in values if isinstance(v, (float, bool))
    ]  # fmt: skip
    if len(exact) == 1:
        conditions.append(qe.FieldCondition(key=key, match=qe.MatchValue(exact[0])))
    elif exact:
        conditions.append(qe.FieldCondition(key=key, match=qe.MatchAny(exact)))
    return conditions[0] if len(conditions) == 1 else qe.Filter(should=conditions)


def index_schema(qe: Any, kind: str) -> Any:
    """The edge payload-index schema of an index kind (``keyword``, ``integer``, ``float``, ``bool``)."""
    if kind == "integer":
        return qe.IntegerIndexParams(lookup=True, range=True)
    return {"keyword": qe.PayloadSchemaType.Keyword, "float": qe.PayloadSchemaType.Float,
            "bool": qe.PayloadSchemaType.Bool}[kind]  # fmt: skip


def index_kind(info: Any) -> str | None:
    """The index kind of an existing edge payload index (``PayloadIndexInfo``), or None for others."""
    name = str(getattr(info.data_type, "name", info.data_type)).rsplit(".", 1)[-1].lower()
    return name if name in ("keyword", "integer", "float", "bool") else None


class EdgeErrors:
    """Context manager mapping the engine's plain ``Exception``s to StoreError subclasses."""

    def __init__(self, path: Path, collection: str, op: str) -> None:
        self.path, self.collection, self.op = path, collection, op

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or isinstance(exc, MmragError) or not isinstance(exc, Exception):
            return False
        message = str(exc)
        where = f"edge store {self.path}, collection {self.collection!r}, {self.op}"
        if "WouldBlock" in message or "already locked" in message.lower():
            raise KnowledgeBaseLockedError(f"{where}: the shard is open in another process or store ({message})") from exc
        raise StoreError(f"{where}: {message}") from exc


def edge_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qdrant-edge-py")
    except PackageNotFoundError:
        return "unknown"

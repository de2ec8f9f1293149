"""Pieces of the server store that only translate: spec <-> qdrant-client models, Filter ->
client filter, client errors -> StoreError. Split out of ``qdrant.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.errors import MmragError, StoreError
from retrievers.base import CollectionSpec, Filter, ScoredPoint, VectorSpec

__all__ = ["vectors_config", "spec_from_info", "client_filter", "ClientErrors", "scored"]


def vectors_config(m: Any, spec: CollectionSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(dense, sparse)`` vector params of a new collection for ``spec``."""
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
    return dense, sparse


def spec_from_info(name: str, info: Any) -> CollectionSpec:
    """The CollectionSpec of an existing collection, from the server's description of it."""
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
    return CollectionSpec(name=name, vectors=tuple(vectors))


def client_filter(m: Any, flt: Filter | None) -> Any:
    if flt is None:
        return None
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


class ClientErrors:
    """Maps qdrant-client / httpx / grpc exceptions to StoreError subclasses."""

    def __init__(self, where: str, url: str | None, collection: str, op: str) -> None:
        self.where, self.url, self.collection, self.op = where, url, collection, op

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or isinstance(exc, MmragError) or not isinstance(exc, Exception):
            return False
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        where = f"qdrant store {self.where}, collection {self.collection!r}, {self.op}"
        if isinstance(exc, ResponseHandlingException) or _is_connection_error(exc):
            raise StoreError(
                f"the Qdrant server at {self.url} is unreachable ({exc}); check the URL, that the server "
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


def scored(points: Sequence[Any]) -> list[ScoredPoint]:
    return [ScoredPoint(id=str(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in points]

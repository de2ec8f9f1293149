"""Pieces of the server store that only translate: spec <-> qdrant-client models, Filter ->
client filter, client errors -> StoreError. Split out of ``qdrant.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.errors import MmragError, StoreError
from retrievers.base import CollectionSpec, Filter, ScoredPoint, VectorSpec
from retrievers.payloads import TENANT

#: Bits of a UUID a tenant may flip: all but the version (bits 76-79) and variant (bits 62-63),
#: so a point id seen through a tenant is still a well-formed UUID of the same version.
_FLIPPABLE = ((1 << 128) - 1) ^ (0xF << 76) ^ (0x3 << 62)

__all__ = [
    "vectors_config", "spec_from_info", "client_filter", "ClientErrors", "scored",
    "collection_options", "index_schema", "tenant_index", "tenant_mask", "flip_id",
]


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


def collection_options(
    m: Any,
    shard_number: int | None,
    replication_factor: int | None,
    write_consistency_factor: int | None,
    custom_sharding: bool,
) -> dict[str, Any]:
    """The cluster keywords of ``create_collection`` (fields of qdrant-client's ``CreateCollection``);
    unset ones are left out, so the server's defaults apply. With ``custom_sharding`` points go to
    the shards of their shard key (the tenant), ``shard_number`` shards per key."""
    out: dict[str, Any] = {}
    for key, value in (("shard_number", shard_number), ("replication_factor", replication_factor),
                       ("write_consistency_factor", write_consistency_factor)):  # fmt: skip
        if value is not None:
            out[key] = value
    if custom_sharding:
        out["sharding_method"] = m.ShardingMethod.CUSTOM
    return out


def index_schema(m: Any, kind: str) -> Any:
    """The payload-index schema of an index kind (``keyword``, ``integer``, ``float``, ``bool``)."""
    return {"keyword": m.PayloadSchemaType.KEYWORD, "integer": m.PayloadSchemaType.INTEGER,
            "float": m.PayloadSchemaType.FLOAT, "bool": m.PayloadSchemaType.BOOL}[kind]  # fmt: skip


def tenant_index(m: Any) -> Any:
    """The tenant field's index: a keyword index marked ``is_tenant``, so the server stores each
    tenant's points together and searches one tenant without visiting the others' (Qdrant's
    multitenancy guide)."""
    return m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True)


def tenant_mask(tenant: str | None) -> int:
    """The bits a tenant flips in its point ids (0 without a tenant): two knowledge bases that
    index the same file on one server then hold two points, not one point that both overwrite."""
    if tenant is None:
        return 0
    import uuid

    return uuid.uuid5(uuid.NAMESPACE_URL, f"mmrag-tenant:{tenant}").int & _FLIPPABLE


def flip_id(point_id: str, mask: int) -> str:
    """``point_id`` with the tenant's bits flipped: the same function maps a caller's id to the
    stored one and back (XOR is its own inverse)."""
    if not mask:
        return point_id
    import uuid

    return str(uuid.UUID(int=uuid.UUID(point_id).int ^ mask))


def client_filter(m: Any, flt: Filter | None, tenant: str | None = None) -> Any:
    """The client filter of ``flt``; ``tenant`` adds ``tenant == tenant`` to it (without either: None)."""
    must: list[Any] = []
    if tenant is not None:
        must.append(m.FieldCondition(key=TENANT, match=m.MatchValue(value=tenant)))
    if flt is None:
        return m.Filter(must=must) if must else None
    if flt.doc_ids is not None:
        must.append(m.FieldCondition(key="doc_id", match=m.MatchAny(any=list(flt.doc_ids))))
    if flt.page_range is not None:
        lo, hi = flt.page_range
        must.append(m.FieldCondition(key="page", range=m.Range(gte=lo, lte=hi)))
    for key, value in flt.equals.items():
        must.append(_equals(m, key, value))
    return m.Filter(must=must) if must else None


def _equals(m: Any, key: str, value: Any) -> Any:
    """One ``key == value`` (any of a list) condition; a float matches by a closed range (Qdrant
    matches only keywords, integers and booleans exactly)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    exact = [v for v in values if isinstance(v, (str, int)) and not isinstance(v, bool)]
    conditions = [
        m.FieldCondition(key=key, range=m.Range(gte=v, lte=v)) if isinstance(v, float)
        else m.FieldCondition(key=key, match=m.MatchValue(value=v))
        for v in values if isinstance(v, (float, bool))
    ]  # fmt: skip
    if len(exact) == 1 and not isinstance(value, (list, tuple)):
        conditions.append(m.FieldCondition(key=key, match=m.MatchValue(value=exact[0])))
    elif exact:
        conditions.append(m.FieldCondition(key=key, match=m.MatchAny(any=exact)))
    return conditions[0] if len(conditions) == 1 else m.Filter(should=conditions)


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

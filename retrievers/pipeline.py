"""Question -> hits: the one path a question takes through retrieval.

:class:`Searcher` runs it: the router picks corpora and weights; the question is encoded once
(dense, sparse, image text side, late interaction); each routed corpus is searched (hybrid,
:func:`retrievers.search.search_corpus`); the results are fused into page-level hits; with
several documents among them, each page's score follows its document's (the document stage,
:mod:`retrievers.documents`); pages holding the phrases the question quotes are lifted (:func:`promote`); the reranker rescores;
the quoted phrases decide first again. The :class:`SearchResult` carries the route, the hits,
the timings and the phrases, parsed once (:func:`rag.phrases.quoted_phrases`), so a generator
is handed them rather than reading the question again.
The reads of stored pages a question's answer needs are :mod:`retrievers.page_records`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import ConfigError
from rag.ids import point_id
from rag.json_shapes import hit_json, requery_json, route_json, thesaurus_json, timings_json
from rag.phrases import holds, quoted_phrases
from rag.types import Hit, Route
from retrievers.base import CollectionSpec, Filter, VectorStore
from retrievers.corpora import DENSE, Embedders
from retrievers.documents import DocumentIndex, DocumentStage
from retrievers.payloads import PagePayload
from retrievers.page_records import page_payloads, page_texts
from retrievers.point_cache import PointCache
from retrievers import requery as requery_module
from retrievers.pointers import apply_lending, lend
from retrievers.thesaurus import Terms, Thesaurus, expand_query
from retrievers.requery import Requery, expansion_terms, fuse_rounds, is_weak, margin, question_parts, rocchio
from retrievers.search import (
    CORPUS_SHARE,
    Fusion,
    QueryVectors,
    encode_image_query,
    encode_query,
    fuse_pages,
    image_corpora,
    search_corpus,
    search_image_vector,
)
from retrievers.sentences import rescore_by_sentences

if TYPE_CHECKING:
    from retrievers.rerank import Reranker
    from retrievers.router import Router

__all__ = ["SearchResult", "Searcher", "promote"]

log = logging.getLogger("mmrag.search")


@dataclass(frozen=True)
class SearchResult:
    """Page-level hits for a question, best first, with the route taken and timings (seconds)."""

    question: str
    route: Route
    hits: tuple[Hit, ...]
    timings: dict[str, float] = field(default_factory=dict)
    #: The phrases quoted in the question, normalised; pages holding them were ranked first.
    phrases: tuple[str, ...] = ()
    #: A follow-up rewritten with its conversation (``KnowledgeBase.search(history=)``): what was searched for.
    rewritten: str | None = None
    #: The second round searched when the first was weak (``[ask] requery``); ``None``: one round.
    requery: Requery | None = None
    #: What the document stage did (:mod:`retrievers.documents`); ``None``: it is off.
    documents: DocumentStage | None = None
    #: The related words the thesaurus added to the sparse query, by the question's word that
    #: brought them (:mod:`retrievers.thesaurus`, ``[ask] thesaurus``); ``None``: it is off.
    thesaurus: dict[str, tuple[str, ...]] | None = None

    def to_json(self, hit: Callable[[Hit], dict[str, Any]] = hit_json) -> dict[str, Any]:
        """What ``mmrag search --json`` prints; ``hit`` shapes each hit (the server adds image URLs)."""
        return {
            "question": self.question,
            "rewritten": self.rewritten,
            "route": route_json(self.route),
            "quoted": [p.strip() for p in self.phrases],
            "hits": [hit(h) for h in self.hits],
            "requery": requery_json(self.requery),
            "documents": None if self.documents is None else self.documents.to_json(),
            "thesaurus": thesaurus_json(self.thesaurus),
            "timings_ms": timings_json(self.timings),
        }


class Searcher:
    """Runs one question through router, corpora, fusion, phrase promotion and reranker."""

    def __init__(
        self,
        store: VectorStore,
        specs: Mapping[str, CollectionSpec],
        embedders: Embedders,
        router: Router,
        reranker: Reranker,
        fusion: Fusion = "score",
        requery: bool = False,
        documents: Callable[[], DocumentIndex] | None = None,
        navigation: Callable[[], Mapping[tuple[str, int], PagePayload]] | None = None,
        thesaurus: Callable[[], Thesaurus] | None = None,
        sentences: bool = False,
        points: Callable[[], PointCache] | None = None,
    ) -> None:
        self.fusion: Fusion = fusion
        #: The thesaurus whose related words join the sparse query (:mod:`retrievers.thesaurus`); ``None``: off.
        self.thesaurus = thesaurus
        if thesaurus is not None and not isinstance(embedders.sparse, Terms):
            raise ConfigError("ask.thesaurus adds related words to the BM25 query, and this knowledge base has no BM25 "
                              f"encoder (models.sparse = {getattr(embedders.sparse, 'name', None)!r}); set models.sparse = \"bm25\" "
                              "or thesaurus = false")
        #: Rescore the best text chunks by their best sentence window (:mod:`retrievers.sentences`).
        self.sentences = sentences
        #: The knowledge base's navigation pages, current (:func:`navigation_pages`); ``None``: the
        #: navigation pages among a question's hits are read from the store per question.
        self.navigation = navigation
        #: The payloads of points earlier questions kept, current (:mod:`retrievers.point_cache`);
        #: ``None``: every question reads those it keeps from the store.
        self.points = points
        #: The knowledge base's document profiles, current (:mod:`retrievers.documents`); ``None``: no document stage.
        self.documents = documents
        #: Search again when the first round is weak (:mod:`retrievers.requery`).
        self.requery = requery
        self.store = store
        self.specs = specs
        self.embedders = embedders
        self.router = router
        self.reranker = reranker

    def search(self, question: str, top_k: int, flt: Filter | None = None, visible: Sequence[str] | None = None) -> SearchResult:
        """The ``top_k`` best pages for ``question``. ``visible``: the documents that may be found
        (others are being written); ``flt`` further restricts, and an empty document filter finds nothing."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        route = self.router.route(question)
        timings["route"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        qv = encode_query(question, self.embedders)
        added = None
        if self.thesaurus is not None:
            qv, added = self._expand(question, qv)
        timings["encode"] = time.perf_counter() - t1
        if visible is not None:
            flt = _restrict(flt, visible)
        t2 = time.perf_counter()
        depth = max(top_k * 4, route.top_k)
        limit = max(top_k * 3, 20)
        cache = self.points() if self.points is not None else None
        hits = self._round(qv, route, depth, limit, flt, cache)
        stage = None
        if self.documents is not None:
            hits, stage = self.documents().stage(hits, qv.dense, qv.sparse)
        t_again = time.perf_counter()
        again = self._requery(question, qv, hits, route, depth, limit, flt, cache) if self.requery else None
        requery = None
        if again is not None:
            hits, requery = again
            timings["requery"] = time.perf_counter() - t_again
        hits = self._follow_pointers(question, hits, cache)
        phrases = quoted_phrases(question)
        texts = page_texts(self.store, self.specs, hits, cache) if phrases else {}
        counted: dict[tuple[str, int], int] = {}  # both promotions count a page's phrases once
        hits = promote(hits, phrases, texts, counted)
        timings["retrieve"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        # a reranker judges meaning; the quoted words still decide first
        hits = promote(list(self.reranker.rerank(question, hits, top_k=top_k))[:top_k], phrases, texts, counted)
        timings["rerank"] = time.perf_counter() - t3
        timings["total"] = time.perf_counter() - t0
        log.debug("search %r: %d hits in %.1f ms", question[:60], len(hits), timings["total"] * 1000)
        return SearchResult(question, route, tuple(hits), timings, phrases, requery=requery, documents=stage, thesaurus=added)

    def _expand(self, question: str, qv: QueryVectors) -> tuple[QueryVectors, dict[str, tuple[str, ...]]]:
        """The question's sparse query with the thesaurus's related words of its content words
        (:func:`retrievers.thesaurus.expand_query`), and which were added."""
        sparse = self.embedders.sparse
        assert self.thesaurus is not None and isinstance(sparse, Terms)
        if qv.sparse is None:
            return qv, {}
        expansion = expand_query(question, qv.sparse, sparse, self.thesaurus().related)
        return replace(qv, sparse=expansion.sparse), expansion.added

    def _round(self, qv: QueryVectors, route: Route, depth: int, limit: int, flt: Filter | None,
               cache: PointCache | None = None) -> list[Hit]:
        """One retrieval round: each routed corpus searched, fused into page hits."""
        results = {
            c: search_corpus(self.store, self.specs[c], qv, depth, flt, fusion=self.fusion, cache=cache)
            for c in route.corpora
            if route.weight(c) > 0
        }
        lifted: dict[str, str] = {}
        if self.sentences and results.get("text"):
            rescored = rescore_by_sentences(results["text"], qv.dense, self.embedders.text)
            results["text"], lifted = rescored.points, rescored.lifted
        return fuse_pages(results, route, limit=limit, fusion=self.fusion, share=CORPUS_SHARE, sentences=lifted, cache=cache)

    def _second_vectors(self, how: str, query: str, qv: QueryVectors, hits: Sequence[Hit]) -> QueryVectors:
        """A part is encoded as a question; an expanded question changes the sparse vector only
        (``requery.EXPAND == "sparse"``), also moves the dense one towards the top pages'
        (``"rocchio"``), or is re-encoded whole (``"both"``)."""
        mode = requery_module.EXPAND
        if how != "expansion" or mode == "both":
            return encode_query(query, self.embedders)
        if self.embedders.sparse is not None:
            qv = replace(qv, sparse=self.embedders.sparse.encode_query(query))
        if mode == "rocchio":
            qv = replace(qv, dense=rocchio(qv.dense, self._page_vectors(hits[: requery_module.FEEDBACK_PAGES])))
        return qv

    def _page_vectors(self, hits: Sequence[Hit]) -> list[Any]:
        """The stored dense vectors of the ``hits``' pages (``pages`` corpus)."""
        spec = self.specs.get("pages")
        if spec is None:
            return []
        found = []
        for h in hits:
            for point in self.store.scroll(spec.name, Filter(doc_ids=(h.doc_id,), page_range=(h.page, h.page)), with_vectors=True):
                if DENSE in point.vectors:
                    found.append(point.vectors[DENSE])
        return found

    def _requery(self, question: str, qv: QueryVectors, hits: list[Hit], route: Route, depth: int, limit: int,
                 flt: Filter | None, cache: PointCache | None = None) -> tuple[list[Hit], Requery] | None:
        """When the first round is weak (:func:`retrievers.requery.is_weak`), search the two
        parts of a two-part question, or else the question with expansion terms from the top
        pages, and fuse the rounds (:func:`retrievers.requery.fuse_rounds`); ``None`` when the
        first round stands."""
        if not is_weak(hits):
            return None
        parts = question_parts(question)
        if parts:
            how, queries = "parts", tuple(parts)
        else:
            texts = page_texts(self.store, self.specs, hits, cache)
            pool = [texts[(h.doc_id, h.page)] for h in hits if (h.doc_id, h.page) in texts]
            terms = expansion_terms(question, pool[: requery_module.FEEDBACK_PAGES], pool, requery_module.EXPANSION_TERMS)
            if not terms:
                return None
            how, queries = "expansion", (f"{question} {' '.join(terms)}",)
        rounds = [self._round(self._second_vectors(how, q, qv, hits), route, depth, limit, flt, cache) for q in queries]
        log.debug("requery %r (%s): %s", question[:60], how, queries)
        return fuse_rounds(hits, rounds, limit, requery_module.SECOND_WEIGHT), Requery(round(margin(hits), 4), how, queries)

    def _follow_pointers(self, question: str, hits: list[Hit], cache: PointCache | None = None) -> list[Hit]:
        """Navigation pages among ``hits`` lend score to the pages their matching entries point
        to and step back (:func:`retrievers.pointers.follow_pointers`)."""
        spec = self.specs.get("pages")
        if spec is None or not hits:
            return hits
        if self.navigation is not None:
            # read once per knowledge-base generation (few pages): no store read per question
            known = self.navigation()
            navigation = {key: known[key] for h in hits if (key := (h.doc_id, h.page)) in known}
            return self._lend(question, hits, navigation, cache)
        # Most questions meet no navigation page: ask the store for the one field that says so
        # (whole page records, text and all, cost about half of a warm search), and read the
        # records of navigation pages only when there are some.
        keys = {point_id(h.doc_id, h.page, PagePayload.kind): (h.doc_id, h.page) for h in hits}
        flagged = self.store.retrieve(spec.name, list(keys), with_payload=["navigation"])
        marked = [keys[p.id] for p in flagged if p.payload.get("navigation")]
        if not marked:
            return hits
        records = page_payloads(self.store, spec, marked, cache)
        return self._lend(question, hits, {key: r for key, r in records.items() if r.navigation is not None and r.entries}, cache)

    def _lend(self, question: str, hits: list[Hit], navigation: Mapping[tuple[str, int], PagePayload],
              cache: PointCache | None = None) -> list[Hit]:
        """:func:`retrievers.pointers.follow_pointers` in its two halves, reading the records of only
        the pages the matching entries point to (an index page holds hundreds of entries; a
        question matches a few)."""
        if not navigation:
            return hits
        spec = self.specs["pages"]
        lending = lend(hits, navigation, question)
        return apply_lending(hits, lending, page_payloads(self.store, spec, lending.missing, cache))

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
    """Only ``visible`` documents are searchable: intersect with the caller's document filter
    (no filter: all visible ones; an empty one stays empty)."""
    if flt is None:
        return Filter(doc_ids=tuple(visible))
    shown = set(visible)
    wanted = tuple(d for d in (visible if flt.doc_ids is None else flt.doc_ids) if d in shown)
    return Filter(doc_ids=wanted, page_range=flt.page_range, equals=flt.equals)


def promote(hits: Sequence[Hit], phrases: Sequence[str], page_texts: Mapping[tuple[str, int], str],
            counted: dict[tuple[str, int], int] | None = None) -> list[Hit]:
    """``hits`` reordered: pages holding more of the quoted ``phrases`` first, retrieval order
    within each group (a stable sort). ``page_texts`` maps (doc_id, page) to the page's indexed
    text; a page missing from it is judged by its hit's evidence texts. When no page holds any
    phrase (the user paraphrased) the order is left alone: quotes lift, they never filter.
    ``counted``: the counts of pages in ``page_texts``, kept between calls with the same phrases
    and texts (filled in here)."""
    if not phrases:
        return list(hits)
    memo: dict[tuple[str, int], int] = {} if counted is None else counted

    def count(hit: Hit) -> int:
        key = (hit.doc_id, hit.page)
        text = page_texts.get(key)
        if text is None:
            return holds("\n".join(e.text for e in hit.evidence), phrases)
        if key not in memo:
            memo[key] = holds(text, phrases)
        return memo[key]

    counts = [count(h) for h in hits]
    if not any(counts):
        return list(hits)
    order = sorted(range(len(hits)), key=lambda i: -counts[i])
    return [hits[i] for i in order]

"""The document stage: which documents a question is about, before their pages compete.

In a knowledge base of many documents every page of every document competes for a question,
and a page of the wrong document that shares the question's words can win (issue 19, part 7).
This stage scores *documents* first and lends that score to their pages.

- :class:`DocumentProfile` (one per document, :func:`profiles`, read from the store): its
  title, its headings (the section titles its chunks sit in and the entries of its navigation
  pages: the outline) and its vector, the normalised mean of its pages' dense vectors.
- :func:`score_documents`: a question against each profile: the cosine of the question and the
  document vector, scaled from the farthest document (0) to the nearest (1); plus, with
  :data:`HEADING_WEIGHT` above 0 (it is 0: measured, it cost questions), the sparse (BM25-style)
  match of the question with the title and headings, weighted by each term's rarity across
  documents (a term every document holds says nothing about which), scaled by its best. The
  JSON shows both parts.
- :func:`apply_prior`: a page's score times ``1 + weight * (document score - best)`` clipped
  at :data:`FLOOR`: pages of the best documents keep their scores, pages of far-off documents
  lose a share. :class:`DocumentStage` records what was done, for the JSON.

The stage runs only when the knowledge base holds at least :data:`MIN_DOCUMENTS` documents: with
one there is nothing to choose. Measured in BENCHMARKS.md (session 12) on all evaluation
documents in one knowledge base and on each set alone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rag.types import Hit
from rag.vectors import l2_normalize
from retrievers.base import CollectionSpec, SparseEncoder, SparseVector, VectorStore
from retrievers.corpora import DENSE
from retrievers.payloads import ChunkPayload, PagePayload, decode

__all__ = ["DocumentProfile", "DocumentScore", "DocumentStage", "DocumentIndex", "profiles", "heading_terms", "score_documents", "apply_prior",
           "MIN_DOCUMENTS", "PRIOR_WEIGHT", "HEADING_WEIGHT", "FLOOR", "MIN_SPAN"]

#: The stage runs when the knowledge base holds at least this many documents.
MIN_DOCUMENTS = 2
#: How far a page's score follows its document's: ``1 + PRIOR_WEIGHT * (score - best)``.
#: Measured (session 12): 0.2-0.3 the same on every set; 0.5 costs a held-out question at
#: recall@5 in the combined knowledge base, 1.0 public recall@1.
PRIOR_WEIGHT = 0.3
#: The share of the title-and-headings match in a document's score (the vector's is the rest).
#: Measured (BENCHMARKS.md, session 12) on all evaluation documents in one knowledge base: 0.5
#: cost the paraphrased set one question at recall@5 and the held-out set two at recall@1, 1.0
#: more; the vector alone lost nothing. Kept at 0: the headings are read and shown, not scored.
HEADING_WEIGHT = 0.0
#: The document vector part is scaled from the farthest document's cosine (0) to the nearest's
#: (1) over at least this spread, so two documents the question is about nearly alike are not
#: pulled apart. Measured (session 12): 0 and 0.1 rank every set the same.
MIN_SPAN = 0.1
#: A page keeps at least this share of its score, however far its document.
FLOOR = 0.5


@dataclass(frozen=True)
class DocumentProfile:
    """What the document stage knows of one document."""

    doc_id: str
    source: str
    #: The normalised mean of the document's page vectors (dense).
    vector: np.ndarray
    #: Section titles and outline entries, each once, in reading order.
    headings: tuple[str, ...] = ()
    title: str = ""


@dataclass(frozen=True)
class DocumentScore:
    """One document's match with a question: its parts and their weighted sum (each part 0-1)."""

    doc_id: str
    source: str
    score: float
    vector: float
    headings: float


@dataclass(frozen=True)
class DocumentStage:
    """What the document stage did for one question: the documents of the candidate pages with
    their scores, best first, each with the factor its pages' scores were multiplied by
    (``1.0``: kept as they were), and the weight lent (``0``: the stage did not run; ``reason``
    says why)."""

    scores: tuple[DocumentScore, ...]
    factors: tuple[float, ...]
    weight: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        """What ``mmrag search --json`` shows as ``documents``."""
        return {
            "weight": self.weight,
            "reason": self.reason,
            "documents": [
                {"doc_id": s.doc_id, "source": s.source, "score": s.score, "vector": s.vector, "headings": s.headings,
                 "factor": f, "kept": f >= 1.0}
                for s, f in zip(self.scores, self.factors)
            ],
        }


@dataclass(frozen=True)
class DocumentIndex:
    """The profiles of a knowledge base's documents and the sparse terms of their titles and
    headings, built once (:meth:`build`) and asked per question (:meth:`stage`)."""

    profiles: Mapping[str, DocumentProfile]
    terms: Mapping[str, Mapping[int, float]] | None = None

    @classmethod
    def build(cls, store: VectorStore, specs: Mapping[str, CollectionSpec], sparse: SparseEncoder | None = None,
              titles: Mapping[str, str] | None = None) -> DocumentIndex:
        found = profiles(store, specs, titles)
        return cls(found, heading_terms(found, sparse) if sparse is not None else None)

    def stage(self, hits: Sequence[Hit], dense: np.ndarray, sparse_query: SparseVector | None = None,
              weight: float | None = None) -> tuple[list[Hit], DocumentStage]:
        """``hits`` with their documents' prior (:func:`apply_prior`) and what was done. Only the
        documents of the hits compete (a search filtered to some documents is judged among
        them); with fewer than :data:`MIN_DOCUMENTS` of them, or none profiled, the hits stay.
        ``weight``: default :data:`PRIOR_WEIGHT`."""
        weight = PRIOR_WEIGHT if weight is None else weight
        among = {h.doc_id for h in hits}
        found = {doc: self.profiles[doc] for doc in sorted(among) if doc in self.profiles}
        if len(self.profiles) < MIN_DOCUMENTS or len(found) < MIN_DOCUMENTS or weight <= 0:
            why = (f"{len(found)} document(s) among the candidate pages, {len(self.profiles)} in the knowledge base: "
                   f"nothing to choose (the stage runs from {MIN_DOCUMENTS})") if weight > 0 else "off"
            return list(hits), DocumentStage((), (), 0.0, why)
        terms = None if self.terms is None else {doc: self.terms[doc] for doc in found if doc in self.terms}
        scores = score_documents(found, dense, sparse_query, terms)
        best = scores[0].score
        factors = tuple(_factor(s.score, best, weight) for s in scores)
        headings = terms is not None and HEADING_WEIGHT > 0
        reason = (f"{len(found)} documents among the candidate pages scored by their page vectors' mean"
                  f"{' and their titles and headings' if headings else ''}; a page's score times "
                  f"max({FLOOR}, 1 + {weight} x (its document's score - the best's))")
        return apply_prior(hits, scores, weight), DocumentStage(tuple(scores), factors, weight, reason)


def _factor(score: float, best: float, weight: float) -> float:
    return round(max(FLOOR, 1.0 + weight * (score - best)), 6)


def profiles(store: VectorStore, specs: Mapping[str, CollectionSpec],
             titles: Mapping[str, str] | None = None) -> dict[str, DocumentProfile]:
    """One profile per document of the ``pages`` corpus, read from the store (one pass over the
    pages with their vectors, one over the text chunks' payloads). ``titles``: doc id -> title
    (the registry's), added to the headings."""
    pages = specs.get("pages")
    if pages is None:
        return {}
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = defaultdict(int)
    sources: dict[str, str] = {}
    headings: dict[str, dict[str, None]] = defaultdict(dict)
    for point in store.scroll(pages.name, with_vectors=True):
        record = decode(point.payload)
        vector = point.vectors.get(DENSE)
        if vector is None or not isinstance(record, PagePayload):
            continue
        doc = record.doc_id
        sources.setdefault(doc, record.source)
        v = np.asarray(vector, dtype=np.float32)
        sums[doc] = sums[doc] + v if doc in sums else v.copy()
        counts[doc] += 1
        for entry in record.entries:
            headings[doc].setdefault(entry.text.strip(), None)
    text = specs.get("text")
    if text is not None:
        for point in store.scroll(text.name):
            record = decode(point.payload)
            if isinstance(record, ChunkPayload):
                for title in record.section:
                    headings[record.doc_id].setdefault(title.strip(), None)
    names = titles or {}
    return {
        doc: DocumentProfile(doc, sources[doc], l2_normalize(total / counts[doc]),
                             tuple(h for h in headings[doc] if h), names.get(doc, ""))
        for doc, total in sums.items()
    }


def _heading_vectors(found: Mapping[str, DocumentProfile], sparse: SparseEncoder) -> dict[str, dict[int, float]]:
    docs = list(found.values())
    texts = [" \n".join([d.title, d.source.rsplit(".", 1)[0], *d.headings]) for d in docs]
    encoded = sparse.encode_documents(texts)
    return {d.doc_id: dict(zip(v.indices, v.values)) for d, v in zip(docs, encoded)}


def _sparse_scores(query: SparseVector, terms: Mapping[str, Mapping[int, float]]) -> dict[str, float]:
    """The question's terms against each document's headings, each term weighted by its rarity
    across the documents (BM25's IDF: a term on every document weighs nearly nothing)."""
    n = len(terms)
    # only the question's terms' document frequencies are needed (headings hold thousands of terms)
    df = {i: sum(1 for held in terms.values() if i in held) for i in set(query.indices)}
    out = {}
    for doc, held in terms.items():
        total = 0.0
        for i, w in zip(query.indices, query.values):
            if i in held:
                total += w * held[i] * math.log(1 + (n - df[i] + 0.5) / (df[i] + 0.5))
        out[doc] = total
    return out


def score_documents(found: Mapping[str, DocumentProfile], dense: np.ndarray, sparse_query: SparseVector | None = None,
                    heading_terms: Mapping[str, Mapping[int, float]] | None = None,
                    heading_weight: float | None = None) -> list[DocumentScore]:
    """Each document's match with a question, best first. ``dense``: the question's dense
    vector; ``sparse_query`` and ``heading_terms`` (doc id -> term weights of its title and
    headings, :func:`heading_terms`): the sparse part, left out when either is missing. Each part
    is divided by its best document's value, so the best document of each part scores 1."""
    if not found:
        return []
    heading_weight = HEADING_WEIGHT if heading_weight is None else heading_weight
    q = np.asarray(dense, dtype=np.float32)
    cosines = {doc: float(np.dot(p.vector, q)) for doc, p in found.items()}
    top = max(cosines.values())
    low = min(cosines.values())
    span = max(top - low, MIN_SPAN)
    vec = {doc: 1.0 - (top - c) / span if span > 0 else 1.0 for doc, c in cosines.items()}
    if sparse_query is not None and heading_terms is not None and sparse_query.indices:
        raw = _sparse_scores(sparse_query, heading_terms)
        best = max(raw.values())
        heads = {doc: raw.get(doc, 0.0) / best if best > 0 else 0.0 for doc in found}
        share = heading_weight if best > 0 else 0.0
    else:
        heads = {doc: 0.0 for doc in found}
        share = 0.0
    scores = [
        DocumentScore(doc, p.source, round((1 - share) * vec[doc] + share * heads[doc], 6), round(vec[doc], 6), round(heads[doc], 6))
        for doc, p in found.items()
    ]
    scores.sort(key=lambda s: (-s.score, s.doc_id))
    return scores


def heading_terms(found: Mapping[str, DocumentProfile], sparse: SparseEncoder) -> dict[str, dict[int, float]]:
    """Doc id -> the sparse term weights of its title, file name and headings."""
    return _heading_vectors(found, sparse) if found else {}


def apply_prior(hits: Sequence[Hit], scores: Sequence[DocumentScore], weight: float = PRIOR_WEIGHT) -> list[Hit]:
    """``hits`` re-scored by their documents and sorted: a page's score times
    ``max(FLOOR, 1 + weight * (its document's score - the best document's))``. A hit of a
    document without a score keeps its score."""
    if not scores or weight <= 0:
        return list(hits)
    by_doc = {s.doc_id: s.score for s in scores}
    best = max(by_doc.values())
    out = []
    for h in hits:
        s = by_doc.get(h.doc_id)
        factor = 1.0 if s is None else _factor(s, best, weight)
        out.append(h if factor == 1.0 else replace(h, score=round(h.score * factor, 6)))
    out.sort(key=lambda h: -h.score)
    return out

"""A second retrieval round when the first is weak (pseudo-relevance feedback).

Three pure parts, used by :meth:`retrievers.pipeline.Searcher.search`:

- :func:`is_weak`: the first round's fused page scores are flat at the top (hit 1 barely above
  hit ``k``), so its order says little;
- :func:`expansion_terms`: RM3-style terms -- frequent in the top pages, rare among the other
  retrieved pages, not already in the question -- appended to the question, whose sparse
  encoding is the second round's sparse query (:data:`EXPAND` names the other variants);
- :func:`question_parts`: the two halves of a two-part question (``... and ...?``, ``...; ...``),
  each searched on its own;

and :func:`fuse_rounds`, which merges the rounds by weighted reciprocal rank after the first
round's best page, which keeps its place.

Measured (session 10, recall@1/@5 with the default router; one round: public 0.933/1.000,
paraphrased 0.567/0.700, held-out 0.619/0.857, blind 0.561/0.864):

- the weakness signal (:func:`margin`, hit 1 against hit 3) separates questions whose gold page
  is at rank 1 from the others with AUC 0.85 paraphrased, 0.78 held-out, 0.70 blind (0.55 on
  public, which misses only two); against hit 2: 0.81, 0.92, 0.73;
- expansion terms into the sparse query only, second round weighted 0.5, weak below 0.15
  (the defaults here, first page kept): paraphrased 0.567/0.733, the others unchanged; requerying every
  question instead costs blind @5 (0.848);
- the expanded question re-encoded whole (dense moved too): the same at 0.15, paraphrased @1
  0.500 when every question requeries; second round weighted 1.0: paraphrased @1 0.533;
  10 terms from 2 pages: paraphrased unchanged (0.567/0.700);
- Rocchio (sparse expansion plus the dense vector moved half way to the top 3 pages' stored
  vectors, first page kept): paraphrased 0.567/0.767, but blind @5 0.833;
- a two-part question split into its parts: lost pages whenever the second part leant on the
  first by a pronoun ("... and what speedup did it get?"), so such parts are not split.

No variant helped on every set, so requerying is off by default (``[ask] requery = true`` turns
it on). Latency: a requeried search took a median 1.6x one round (paraphrased, same run; its question
encoding may have been warm).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.types import Hit

__all__ = ["Requery", "is_weak", "margin", "expansion_terms", "question_parts", "fuse_rounds", "rocchio"]

#: The first round is weak when hit 1's score is less than this share above hit ``WEAK_RANK``'s.
WEAK_MARGIN = 0.15
WEAK_RANK = 3
#: Pages whose text feeds the expansion terms, and the terms added.
FEEDBACK_PAGES = 3
EXPANSION_TERMS = 5
#: The second round's weight in :func:`fuse_rounds` (the first round's is 1).
SECOND_WEIGHT = 0.5
RRF_K = 10
#: The first round's best pages that keep their place whatever the second round finds.
KEEP_FIRST = 1
#: Which of the second round's vectors the expansion terms change: ``"sparse"`` keeps the
#: question's dense vector (one encoder call fewer), ``"both"`` re-encodes the expanded text.
EXPAND = "sparse"
#: ``"rocchio"``: the sparse vector as for ``"sparse"``, and the dense one moved towards the
#: mean of the top pages' stored dense vectors by this much (then normalised).
ROCCHIO_BETA = 0.5
#: A part that leans on the other by a pronoun ("... and what speedup did it get") says too
#: little alone to be searched.
_LEANS = frozenset("it its they them their this that these those he she his her".split())

_WORD = re.compile(r"[a-z][a-z0-9\-]{2,}")


@dataclass(frozen=True)
class Requery:
    """What the second round did: ``why`` (the first round's margin), ``how`` (``"expansion"`` or
    ``"parts"``) and the queries searched."""

    margin: float
    how: str
    queries: tuple[str, ...]


def rocchio(question: np.ndarray, top: Sequence[np.ndarray], beta: float = ROCCHIO_BETA) -> np.ndarray:
    """The question's dense vector moved towards the mean of the ``top`` pages' vectors,
    unit length (the question's own vector when there are none)."""
    if not top:
        return question
    moved = np.asarray(question, dtype=np.float32) + beta * np.mean(np.stack(top), axis=0)
    norm = float(np.linalg.norm(moved))
    return moved / norm if norm > 0 else question


def margin(hits: Sequence[Hit], rank: int = WEAK_RANK) -> float:
    """How far hit 1's score stands above hit ``rank``'s, as a share of hit 1's (1.0: nothing
    else scored; 0.0: flat)."""
    if len(hits) < 2 or hits[0].score <= 0:
        return 1.0
    other = hits[min(rank, len(hits)) - 1].score
    return max(0.0, (hits[0].score - other) / hits[0].score)


def is_weak(hits: Sequence[Hit], threshold: float = WEAK_MARGIN, rank: int = WEAK_RANK) -> bool:
    """The first round's top is flat: hit 1 is less than ``threshold`` above hit ``rank``."""
    return bool(hits) and margin(hits, rank) < threshold


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def expansion_terms(question: str, top: Sequence[str], pool: Sequence[str], n: int = EXPANSION_TERMS) -> list[str]:
    """Up to ``n`` words frequent in the ``top`` page texts and rare among the ``pool`` of
    retrieved page texts (which includes ``top``), not in the question. A word on at least half
    of the pool says nothing about which page (and function words are on all of them)."""
    asked = set(_words(question))
    df: Counter[str] = Counter()
    for text in pool:
        df.update(set(_words(text)))
    size = max(len(pool), 1)
    weight: Counter[str] = Counter()
    on: Counter[str] = Counter()  # top pages holding each word
    for text in top:
        words = _words(text)
        on.update(set(words))
        for word, tf in Counter(words).items():
            if word in asked or df[word] * 2 >= size:
                continue
            weight[word] += tf / len(words) * math.log(1 + size / max(df[word], 1))
    # a word from only one top page is that page's topic, not the question's
    shared = min(2, len(top))
    ranked = sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))
    return [w for w, _ in ranked if on[w] >= shared][:n]


_SPLIT = re.compile(r"\?\s+|;\s+|,?\s+and\s+(?=(?:what|which|how|who|when|where|why|is|are|does|do)\b)", re.I)


def question_parts(question: str, min_words: int = 3) -> list[str]:
    """The two parts of a two-part question (two question marks, a semicolon, or ``and`` before
    a second question word), each of at least ``min_words`` words and neither leaning on the other
    by a pronoun; ``[]`` otherwise."""
    parts = [p.strip(" ?;,") for p in _SPLIT.split(question.strip())]
    parts = [p for p in parts if len(p.split()) >= min_words]
    if len(parts) != 2 or any(_LEANS & set(p.lower().split()) for p in parts):
        return []
    return parts


def fuse_rounds(first: Sequence[Hit], others: Sequence[Sequence[Hit]], limit: int,
                second_weight: float = SECOND_WEIGHT, k: int = RRF_K, keep: int = KEEP_FIRST) -> list[Hit]:
    """The rounds' pages by weighted reciprocal rank: ``1/(k+rank)`` in the first round plus
    ``second_weight/(k+rank)`` in each other, after the first round's ``keep`` best pages, which
    stay where they were (a weak first round still ranks its best page first more often than
    a second round does). A page keeps its first-round hit (its evidence and score); a page
    found only later brings its own."""
    kept = list(first[:keep])
    held = {(h.doc_id, h.page) for h in kept}
    score: dict[tuple[str, int], float] = {}
    hit: dict[tuple[str, int], Hit] = {}
    for weight, hits in [(1.0, first), *((second_weight, h) for h in others)]:
        for rank, h in enumerate(hits, start=1):
            key = (h.doc_id, h.page)
            if key in held:
                continue
            score[key] = score.get(key, 0.0) + weight / (k + rank)
            hit.setdefault(key, h)
    order = sorted(score, key=lambda key: (-score[key], key))
    return (kept + [hit[key] for key in order])[:limit]

"""The default generator: picks the evidence sentences that answer the question. No model.

The evidence given (see :func:`generators.base.build_context`) is split into units: sentences
of running text, heading lines, and rows of markdown tables (a row is rendered with its header,
``Month: March | Output: 420``); garbled text-layer debris is dropped. A heading on a line of
its own (numbered, or a short capitalised line between a finished sentence and a new one, as
converted Markdown, HTML and DOCX pages read: :func:`is_title_line`) is its own unit: it never
leads an answer while a sentence matches, never supports one, ends the passage a lead runs on
into, and its words count, at :data:`HEADING_SHARE`, for the text under it when the lead is
chosen ("Country" above "USA, UK, Taiwan ..."). Each unit is scored
against the question with BM25 over crudely stemmed content words, whose IDF comes from the
units themselves, so words that appear everywhere in the evidence count little; units shorter
than four content words (headings, page furniture) are damped in proportion, and numbered
headings ("2.1 ASN.1 syntax") and lead-ins ending in a colon count half: they introduce an
answer rather than give it. With an ``embedder`` (any object with ``embed_query(str)`` and
``embed_documents(list[str])`` returning vectors, e.g. a sentence-transformers text embedder)
the cosine similarity is blended in with weight ``semantic_weight`` for the
``semantic_candidates`` lexically best units (embedding every sentence of a long context
costs seconds on a CPU: all-MiniLM-L6-v2 took 2.3 s for 64 sentences on a busy 2-core machine).

The answer leads with the unit whose passage (it and the running text after it, up to the next
heading: answers follow the words that match the question) covers the question's terms best,
IDF-weighted, with a mild rank prior (:meth:`ExtractiveGenerator._lead`): a sentence holding
'inspect' and 'inverter' from hit 3 beats a caption sharing 'inverter' from hit 1. Then come
up to ``max_sentences - 1`` more units that score at least ``min_ratio`` of the best (never a
caption or a title: :func:`generators.compose.supports`), each followed by the ``[n]`` marker of the item it came from, and
citations to those items (page and box). Cited items are numbered 1, 2, ... in the order the
answer first cites them. Deterministic: ties break by marker and position.
When no unit shares a content word with the question and no unit reaches a cosine of
``min_similarity`` (or there is no embedder) the answer is :data:`generators.base.NO_ANSWER`
without citations.

:meth:`ExtractiveGenerator.complete` raises :class:`rag.errors.GeneratorError`: an extractive
generator cannot complete free-form prompts.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from rag.errors import GeneratorError
from rag.types import Answer, Hit

from generators.base import NO_ANSWER, ContextItem, Stopwatch, TokenCallback, build_context
from generators.compose import LEAD_WORDS, MAX_WORDS, compose, lead_passage, supports
from generators.furniture import furniture_lines, strip_furniture
from generators.markers import cited_answer
from generators.spans import HEADING, is_flattened, named_number, numbered_as, reflow_rows, tokenize
from generators.units import Unit, looks_like_text, row_text, split_pieces, split_units
from rag.phrases import holds, quoted_phrases

__all__ = ["ExtractiveGenerator", "Unit", "split_units", "tokenize", "looks_like_text"]

logger = logging.getLogger(__name__)

_SHORT = 4


def _bm25(query: list[str], docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> list[float]:
    n = len(docs)
    avg = sum(len(d) for d in docs) / n if n else 0.0
    df = Counter(t for d in docs for t in set(d))
    scores = []
    for doc in docs:
        tf = Counter(doc)
        s = 0.0
        for t in set(query):
            if tf[t]:
                idf = math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5))
                s += idf * tf[t] * (k1 + 1) / (tf[t] + k1 * (1 - b + b * len(doc) / (avg or 1.0)))
        scores.append(s)
    return scores


def _cosines(embedder: Any, question: str, texts: list[str]) -> list[float]:
    import numpy as np

    from rag.vectors import l2_normalize

    q = np.asarray(embedder.embed_query(question), dtype=np.float32).reshape(-1)
    d = np.asarray(embedder.embed_documents(texts), dtype=np.float32).reshape(len(texts), -1)
    q, d = l2_normalize(q), l2_normalize(d)
    return [float(x) for x in d @ q]


def _form(unit: str, heading: bool = False) -> float:
    """Damping for units that introduce rather than say: a heading line (``heading``), a
    numbered heading without a full stop ("2.1 ASN.1 syntax") or a lead-in to a list or example
    ("... are:", "... below:")."""
    text = unit.rstrip()
    if heading or text.endswith(":"):
        return 0.5
    if HEADING.match(text) and len(text.split()) <= 8 and not text.endswith((".", "!", "?")):
        return 0.5
    return 1.0


#: a flattened run of table cells or diagram labels scores this share of its match
FLAT_WEIGHT = 0.5

#: a unit's score is divided by 1 + RANK_DECAY x (the 0-based rank of the hit it comes from)
RANK_DECAY = 0.6
#: the lead's score is divided by 1 + LEAD_DECAY x (its hit's 0-based rank): a passage that
#: covers the question's terms from hit 3 beats a caption sharing one word from hit 1
LEAD_DECAY = 0.2
#: a lead with fewer content words than this beyond the question's own (numbers aside) counts half
LEAD_NOVEL_WORDS = 2
#: share of the lead's lexical score that is the unit's own BM25 match (short, dense sentences);
#: the rest is its passage's IDF-weighted coverage of the question's terms
BM25_SHARE = 0.3


#: weight, in the lead's coverage, of a question term found in the heading line a unit stands
#: under (:func:`_headings_above`) rather than in the unit itself
HEADING_SHARE = 0.5


#: the least weight a question term found on every page of the evidence keeps in the lead's coverage
TOPIC_FLOOR = 0.25


def _specificity(query: set[str], units: Sequence[Unit], docs: Sequence[Sequence[str]]) -> dict[str, float]:
    """Each question term's weight by how few of the evidence's pages hold it, from
    :data:`TOPIC_FLOOR` (on every page) to 1 (on one page): a term on every page the search
    returned names what the question is about ("TraceMonkey", "Boots self-locking nut"),
    which every sentence there shares; a term on one page ("experiments", "connects") names
    what it asks, and the sentence that holds it answers."""
    pages: dict[str, set[tuple[str, int]]] = {t: set() for t in query}
    every: set[tuple[str, int]] = set()
    for unit, doc in zip(units, docs):
        page = (unit.item.doc_id, unit.item.page)
        every.add(page)
        for t in query.intersection(doc):
            pages[t].add(page)
    n = len(every)
    if n <= 1:
        return {t: 1.0 for t in query}
    return {t: TOPIC_FLOOR + (1.0 - TOPIC_FLOOR) * (n - max(len(p), 1)) / (n - 1) for t, p in pages.items()}


def _headings_above(units: Sequence[Unit], docs: Sequence[Sequence[str]]) -> dict[int, set[str]]:
    """For each unit under a heading line of its item (:attr:`Unit.heading`), the heading's
    words: a section's heading ("Country") names what the text below it gives ("USA, UK,
    Taiwan, ..."), as a table's header names its cells."""
    last: dict[int, set[str]] = {}
    above: dict[int, set[str]] = {}
    for i, unit in enumerate(units):
        key = id(unit.item)
        if unit.heading:
            last[key] = set(docs[i])
        elif unit.is_row or unit.flat:
            last.pop(key, None)
        elif key in last:
            above[i] = last[key]
    return above


class ExtractiveGenerator:
    """Answers with the best-matching evidence sentences and their citations. No model needed."""

    name = "extractive"

    def __init__(
        self,
        *,
        embedder: Any | None = None,
        semantic_weight: float = 0.5,
        max_sentences: int = 3,
        min_ratio: float = 0.5,
        max_items: int = 8,
        semantic_candidates: int = 32,
        min_similarity: float = 0.3,
        rank_decay: float = RANK_DECAY,
        max_words: int = MAX_WORDS,
        lead_decay: float = LEAD_DECAY,
    ) -> None:
        if embedder is not None and not (hasattr(embedder, "embed_query") and hasattr(embedder, "embed_documents")):
            raise TypeError("embedder must have embed_query(str) and embed_documents(list[str])")
        if not 0.0 <= semantic_weight <= 1.0:
            raise ValueError(f"semantic_weight must be within 0..1, got {semantic_weight}")
        if max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
        self.embedder = embedder
        self.semantic_weight = semantic_weight if embedder is not None else 0.0
        self.max_sentences = max_sentences
        self.min_ratio = min_ratio
        self.max_items = max_items
        self.semantic_candidates = semantic_candidates
        self.min_similarity = min_similarity
        if rank_decay < 0:
            raise ValueError(f"rank_decay must be >= 0, got {rank_decay}")
        self.rank_decay = rank_decay
        if lead_decay < 0:
            raise ValueError(f"lead_decay must be >= 0, got {lead_decay}")
        self.lead_decay = lead_decay
        if max_words < 1:
            raise ValueError(f"max_words must be >= 1, got {max_words}")
        self.max_words = max_words

    def load(self) -> ExtractiveGenerator:
        """Nothing to load; present for symmetry with model-based generators."""
        return self

    def _units(self, items: Sequence[ContextItem]) -> list[Unit]:
        """The candidate units of ``items``: page furniture dropped, flattened numeric tables
        re-rowed where their shape allows, other flattened runs flagged."""
        repeated = furniture_lines(items)
        units: list[Unit] = []
        for item in items:
            position = 0
            for text, header, cells, heading in split_pieces(strip_furniture(item.text, repeated)):
                if not looks_like_text(text):
                    continue
                flat = not cells and is_flattened(text)
                rows = reflow_rows(text) if flat else None
                if rows is not None:
                    for row in rows.rows:
                        cells_ = tuple(row)
                        head = rows.header if len(rows.header) == len(cells_) else ()
                        units.append(Unit(item, position, row_text(head, cells_), head, cells_))
                        position += 1
                    continue
                units.append(Unit(item, position, text, header, cells, flat, heading and not cells))
                position += 1
        return units

    def _ranked(
        self, question: str, items: Sequence[ContextItem], phrases: Sequence[str] | None
    ) -> tuple[list[Unit], list[float], list[float], list[int], list[list[str]]]:
        """Units, their scores (relative to the best), rank-weighted scores, the order to take
        them in, and their tokens. Empty when nothing matches."""
        units = self._units(items)
        if not units:
            return [], [], [], [], []
        query = tokenize(question)
        docs = [tokenize(u.text) for u in units]
        # headings and page furniture ("162 FREE CULTURE") are short: damp units under _SHORT words;
        # a flattened run of cells or labels counts half: it is a last resort, never prose
        lexical = [
            s * min(1.0, len(d) / _SHORT) * _form(u.text, u.heading) * (FLAT_WEIGHT if u.flat else 1.0)
            for s, d, u in zip(_bm25(query, docs), docs, units)
        ]
        top = max(lexical)
        scores = [s / top if top > 0 else 0.0 for s in lexical]
        bm25 = scores
        best_cosine = 0.0
        cosine = [0.0] * len(units)
        if self.embedder is not None and self.semantic_weight > 0:
            # embed only the lexically best candidates: embedding every sentence costs seconds on a CPU
            order = sorted(range(len(units)), key=lambda i: (-scores[i], units[i].item.marker, units[i].position))
            candidates = order[: self.semantic_candidates]
            for i, c in zip(candidates, _cosines(self.embedder, question, [units[i].text for i in candidates])):
                cosine[i] = max(c, 0.0) * (FLAT_WEIGHT if units[i].flat else 1.0)
            best_cosine = max(cosine, default=0.0)
            w = self.semantic_weight
            scores = [(1 - w) * s + w * c for s, c in zip(scores, cosine)]
        if top <= 0 and best_cosine < self.min_similarity:
            return [], [], [], [], []  # no shared content word and nothing semantically close: no answer
        # retrieval already ranked the pages: a sentence from the first hit beats an equally
        # matching sentence from the fifth. The prior orders the sentences; whether a further
        # sentence is worth adding is judged on its own match, so a strong one from a lower hit
        # (the figure the first hit only mentions) still joins the answer.
        ordered = [s / (1.0 + self.rank_decay * u.item.rank) for s, u in zip(scores, units)]
        # words the question quotes are the words the user read on the page: sentences holding
        # them come first (as pages holding them do in search, retrievers.pipeline.promote)
        if phrases is None:
            phrases = quoted_phrases(question)
        held = [holds(u.text, phrases) for u in units] if phrases else [0] * len(units)
        # the same sentence in a chunk (or figure) and in its whole page: cite the chunk, whose box
        # is the passage rather than the page
        ranked = sorted(
            range(len(units)),
            key=lambda i: (-held[i], -ordered[i], units[i].item.kind == "page", units[i].item.marker, units[i].position),
        )
        if scores[ranked[0]] <= 0:
            return [], [], [], [], []
        lead = self._lead(question, units, docs, bm25, cosine, held)
        numbered = self._numbered(question, units, bm25, held)
        if numbered is not None:
            lead = numbered
        ranked.remove(lead)
        return units, scores, ordered, [lead, *ranked], docs

    def _lead(
        self, question: str, units: list[Unit], docs: list[list[str]], bm25: list[float], cosine: list[float], held: list[int]
    ) -> int:
        """The unit the answer starts with: the one whose passage (it and the running text after
        it, :func:`generators.compose.lead_passage`) covers most of the question's terms, each
        weighted by its IDF over the units (a term found only after the unit counts half; a unit
        matching none is judged on its own text), mixed with its own BM25 match
        (:data:`BM25_SHARE`) and blended with the unit's cosine similarity to the question,
        under a mild rank prior (``lead_decay``). A unit that says nothing beyond
        the question's own words (a heading repeating them) counts half."""
        query = set(tokenize(question))
        df = Counter(t for d in docs for t in set(d) if t in query)
        n = len(units)
        idf = {t: math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) * s for t, s in _specificity(query, units, docs).items() if t in df}
        total = sum(idf.values())
        w = self.semantic_weight
        above = _headings_above(units, docs)
        best, best_key = 0, None
        for i, unit in enumerate(units):
            own = set(docs[i])
            matched = sum(v for t, v in idf.items() if t in own)
            cover = matched
            # the heading it stands under says what it is about
            titled = above.get(i, set()) - own
            cover += HEADING_SHARE * sum(v for t, v in idf.items() if t in titled)
            if matched > 0 and not unit.is_row and not unit.flat:
                _, covered = lead_passage(unit, units, query, LEAD_WORDS)
                rest = {t for u in covered[1:] for t in tokenize(u.text)} - own - titled
                cover += 0.5 * sum(v for t, v in idf.items() if t in rest)
            lexical = (1 - BM25_SHARE) * (cover / total if total > 0 else 0.0)
            lexical *= min(1.0, len(docs[i]) / _SHORT) * _form(unit.text, unit.heading) * (FLAT_WEIGHT if unit.flat else 1.0)
            lexical += BM25_SHARE * bm25[i]
            if len([t for t in own if t not in query and not t.isdigit()]) < LEAD_NOVEL_WORDS:
                lexical *= 0.5
            score = ((1 - w) * lexical + w * cosine[i]) / (1.0 + self.lead_decay * unit.item.rank)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("lead %.3f lex %.3f cos %.3f rank %d: %s", score, lexical, cosine[i], unit.item.rank, unit.text[:90])
            # a heading line says nothing itself: it leads only when nothing else matches
            key = (not unit.heading and score > 0, held[i], score, unit.item.kind != "page", -unit.item.marker, -unit.position)
            if best_key is None or key > best_key:
                best, best_key = i, key
        return best

    def _numbered(self, question: str, units: list[Unit], bm25: list[float], held: list[int]) -> int | None:
        """For a question that names an entry by its number ("What is item 7 in Davis's scale
        items ...?"): the unit that is that entry ("7 The electronic mail system is rigid ...",
        or a table row whose first cell is 7) in the list the question is about, i.e. the one
        under the best-matching text above it in its item (the list's caption, heading or
        header), with the rank prior; ``None`` when the question names no number or no
        matching list holds that entry. The caption repeats the question's words and the entry
        hardly any, so the match alone would lead with the caption."""
        number = named_number(question)
        if number is None:
            return None
        best, best_key = None, None
        for i, unit in enumerate(units):
            if unit.is_row:
                first = unit.cells[0].strip().rstrip(".):").lstrip("(#").lstrip("0") or "0"
                if first != number:
                    continue
            elif unit.flat or not numbered_as(unit.text, number):
                continue
            above = max(
                (bm25[j] for j, other in enumerate(units) if other.item is unit.item and other.position < unit.position),
                default=0.0,
            )
            if unit.is_row:
                above = max(above, bm25[i])  # a row repeats its header's words
            if above <= 0:
                continue
            key = (held[i], above / (1.0 + self.lead_decay * unit.item.rank), unit.item.kind != "page", -unit.item.marker, -unit.position)
            if best_key is None or key > best_key:
                best, best_key = i, key
        return best

    def select(
        self, question: str, items: Sequence[ContextItem], phrases: Sequence[str] | None = None
    ) -> list[tuple[Unit, float]]:
        """The chosen units with their scores, best first; units holding more of the quoted
        ``phrases`` (``None``: those quoted in ``question``) first."""
        units, scores, ordered, ranked, docs = self._ranked(question, items, phrases)
        if not units:
            return []
        return [(units[i], ordered[i]) for i in self._choose(units, scores, ranked, docs)]

    def _choose(self, units: list[Unit], scores: list[float], ranked: list[int], docs: list[list[str]]) -> list[int]:
        best = max(scores[i] for i in ranked)
        chosen: list[int] = []
        seen: list[set[str]] = []
        for i in ranked:
            if len(chosen) == self.max_sentences:
                break
            if chosen and (scores[i] < self.min_ratio * best or scores[i] <= 0 or not supports(units[i])):
                continue  # the lead always stays; after it only what can support (no captions, titles)
            words = set(docs[i])
            # the same sentence reached through a chunk and through its page (perhaps with a heading glued on)
            if any(len(words & other) >= 0.8 * min(len(words), len(other)) for other in seen if other and words):
                continue
            seen.append(words)
            chosen.append(i)
        return chosen

    def _answer(
        self, question: str, items: Sequence[ContextItem], phrases: Sequence[str] | None = None
    ) -> tuple[list[str], list[ContextItem]]:
        """The answer in pieces and the cited items, renumbered 1, 2, ... in the order the answer
        first cites them (the evidence's own numbers follow hit rank, so an answer would
        otherwise read "... [2] ... [1]"). See :mod:`generators.compose` for how it is written."""
        units, scores, _, ranked, docs = self._ranked(question, items, phrases)
        if not units:
            return [NO_ANSWER], []
        chosen = self._choose(units, scores, ranked, docs)
        return compose(
            question,
            [units[i] for i in chosen],
            [units[i] for i in ranked if scores[i] >= self.min_ratio * max(scores)],
            items,
            max_words=self.max_words,
            units=units,
        )

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[str]:
        """The answer text in pieces (one per sentence)."""
        yield from self._answer(question, build_context(hits, max_items=self.max_items))[0]

    def generate(
        self, question: str, hits: Sequence[Hit], *, on_token: TokenCallback | None = None, phrases: Sequence[str] | None = None
    ) -> Answer:
        watch = Stopwatch()
        pieces, cited = self._answer(question, build_context(hits, max_items=self.max_items), phrases)
        raw = "".join(watch.iterate(iter(pieces), on_token))
        watch.lap("generate")
        return cited_answer(self.name, question, raw, cited, hits, watch.timings)

    def complete(self, prompt: str) -> str:
        """Always raises :class:`rag.errors.GeneratorError`: there is no model to complete prompts."""
        raise GeneratorError(
            "the extractive generator cannot complete free-form prompts (it has no language model); "
            "use the 'local' or 'openai' generator for an LLM router"
        )

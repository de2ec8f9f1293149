"""The default generator: picks the evidence sentences that answer the question. No model.

The evidence given (see :func:`generators.base.build_context`) is split into units: sentences
of running text, and rows of markdown tables (a row is rendered with its header,
``Month: March | Output: 420``); garbled text-layer debris is dropped. Each unit is scored
against the question with BM25 over crudely stemmed content words, whose IDF comes from the
units themselves, so words that appear everywhere in the evidence count little; units shorter
than four content words (headings, page furniture) are damped in proportion, and numbered
headings ("2.1 ASN.1 syntax") and lead-ins ending in a colon count half: they introduce an
answer rather than give it. With an ``embedder`` (any object with ``embed_query(str)`` and
``embed_documents(list[str])`` returning vectors, e.g. a sentence-transformers text embedder)
the cosine similarity is blended in with weight ``semantic_weight`` for the
``semantic_candidates`` lexically best units (embedding every sentence of a long context
costs seconds on a CPU: all-MiniLM-L6-v2 took 2.3 s for 64 sentences on a busy 2-core machine).

The answer is the best unit plus up to ``max_sentences - 1`` more that score at least
``min_ratio`` of the best, each followed by the ``[n]`` marker of the item it came from, and
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
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag.errors import GeneratorError
from rag.types import Answer, Hit

from generators.base import NO_ANSWER, ContextItem, Stopwatch, TokenCallback, build_context
from generators.markers import cited_answer
from generators.matching import MATCH_CHARS, plain_text
from rag.phrases import holds, quoted_phrases

__all__ = ["ExtractiveGenerator", "Unit", "split_units", "tokenize", "looks_like_text"]

logger = logging.getLogger(__name__)

_SHORT = 4
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?$")
# inside a paragraph whose lines were joined: a command-line option pair ("-b, --benchmark ...")
# starts a unit. (Splitting at bullet glyphs too made single-word bullets win answers they do
# not hold: "• Ultra-fast 3½" disk drive ..." for a question about mounted disks.)
_ITEM_INSIDE = re.compile(r"\s+(?=-[A-Za-z0-9],\s+--[A-Za-z])")
# a list number the sentence rule cut off its item ("2." of "2. Portability")
_NUMBER_ONLY = re.compile(r"^\(?\d{1,2}[.)]$")
# a line that starts a list item: a bullet, a command-line option ("-b, --benchmark ..."), or
# "1." / "a)" numbering; an item is a unit of its own even without a full stop before it
_LIST_ITEM = re.compile(r"^\s*(?:[•●▪■◦‣∙·*–—-]\s+\S|-{1,2}[A-Za-z0-9][\w-]*(?:[,=\s]|$)|\(?(?:\d{1,2}|[a-z])[.)]\s+\S)")
# a numbered heading ("2.1 ASN.1 syntax", "A.3 Examples")
_HEADING = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.?|[A-Z]\.\d{1,2}(?:\.\d{1,2})*\.?)\s+\S")
_STOPWORDS = frozenset(
    "a an the of to in on at for and or but is are was were be been being by with from as it its this that these "
    "those what which who whom whose how many much where when why does do did done has have had can could should "
    "would will shall may might must i you he she we they me my your our their there here than then so such not no "
    "yes if into onto about over under between per all any each some most more less very also only just show shows "
    "tell give list describe explain please according document page".split()
)


_SUFFIXES = ("ings", "ing", "ed", "es", "s")


def _stem(word: str) -> str:
    """A crude suffix stripper so ``connects``/``connected`` and ``section``/``sections`` meet."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, crudely stemmed content words (letters or digits) without stopwords."""
    return [_stem(w) for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOPWORDS]


@dataclass(frozen=True, slots=True)
class Unit:
    """A sentence or a table row of one context item."""

    item: ContextItem
    position: int
    text: str


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table_units(lines: list[str]) -> list[str]:
    rows = [ln for ln in lines if not _TABLE_SEPARATOR.match(ln.strip())]
    if not rows:
        return []
    header = _cells(rows[0])
    units = []
    for row in rows[1:]:
        cells = _cells(row)
        if len(cells) == len(header) and any(header):
            units.append(" | ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells)))
        else:
            units.append(" | ".join(cells))
    return units or [" | ".join(header)]


def split_units(text: str) -> list[str]:
    """Split evidence text into sentences and table rows (markdown ``| a | b |`` lines)."""
    units: list[str] = []
    prose: list[str] = []
    table: list[str] = []

    def flush_prose() -> None:
        joined = re.sub(r"-\s*\n\s*(?=[a-z])", "", "\n".join(prose))
        joined = " ".join(joined.split())
        parts = [p.strip() for s in _SENTENCE_END.split(joined) for p in _ITEM_INSIDE.split(s) if p.strip()]
        for i, part in enumerate(parts):  # "2." cut off its item by the sentence rule goes back in front of it
            if i + 1 < len(parts) and _NUMBER_ONLY.match(part):
                parts[i + 1] = f"{part} {parts[i + 1]}"
            else:
                units.append(part)
        prose.clear()

    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith("|"):
            if prose:
                flush_prose()
            table.append(line)
            continue
        if table:
            units.extend(_table_units(table))
            table.clear()
        if not line.strip():
            flush_prose()
        else:
            if prose and _LIST_ITEM.match(line):
                flush_prose()
            prose.append(line)
            following = lines[index + 1].strip() if index + 1 < len(lines) else ""
            if following[:1].isupper() and is_heading_line(line):
                flush_prose()  # a numbered heading ends its unit: it never opens the sentence below it
    if table:
        units.extend(_table_units(table))
    flush_prose()
    return units


def is_heading_line(line: str) -> bool:
    """A numbered heading line ("2. Inspection schedule", "4.1 Tools"): at most 10 words and no
    closing punctuation. (Title-case titles were tried too: they also split infobox rows such as
    "Stable release" and lowered the paraphrased answers' gold words, 0.289 -> 0.239.)"""
    text = line.strip()
    if not text or len(text.split()) > 10 or text.endswith((".", "!", "?", ":", ";", ",")):
        return False
    return bool(_HEADING.match(text))


def _passage_holding(unit: Unit, items: Sequence[ContextItem]) -> ContextItem:
    """The item to cite for ``unit``: a sentence taken from a whole page's text is cited from a
    chunk (or figure) of the same page in the context that holds it too, so its box is the
    passage, and the answer does not give one passage two markers (the page's box is narrowed
    to that same chunk later)."""
    if unit.item.kind != "page":
        return unit.item
    wanted = plain_text(unit.text)[:MATCH_CHARS]
    for other in items:
        if (other.kind != "page" and other.doc_id == unit.item.doc_id and other.page == unit.item.page
                and wanted and wanted in plain_text(other.text)):
            return other
    return unit.item


def looks_like_text(unit: str) -> bool:
    """False for garbled text-layer debris (``.  @!3  @  6 "(@6")``): too few letters and digits."""
    chars = [c for c in unit if not c.isspace() and c != "|"]
    alnum = sum(c.isalnum() for c in chars)
    return alnum >= 2 and alnum >= 0.6 * len(chars)


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


def _form(unit: str) -> float:
    """Damping for units that introduce rather than say: a numbered heading without a full
    stop ("2.1 ASN.1 syntax") or a lead-in to a list or example ("... are:", "... below:")."""
    text = unit.rstrip()
    if text.endswith(":"):
        return 0.5
    if _HEADING.match(text) and len(text.split()) <= 8 and not text.endswith((".", "!", "?")):
        return 0.5
    return 1.0


#: a unit's score is divided by 1 + RANK_DECAY x (the 0-based rank of the hit it comes from)
RANK_DECAY = 0.6


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

    def load(self) -> ExtractiveGenerator:
        """Nothing to load; present for symmetry with model-based generators."""
        return self

    def select(
        self, question: str, items: Sequence[ContextItem], phrases: Sequence[str] | None = None
    ) -> list[tuple[Unit, float]]:
        """The chosen units with their scores, best first; units holding more of the quoted
        ``phrases`` (``None``: those quoted in ``question``) first."""
        units = [
            Unit(item, i, text) for item in items for i, text in enumerate(split_units(item.text)) if looks_like_text(text)
        ]
        if not units:
            return []
        query = tokenize(question)
        docs = [tokenize(u.text) for u in units]
        # headings and page furniture ("162 FREE CULTURE") are short: damp units under _SHORT words
        lexical = [s * min(1.0, len(d) / _SHORT) * _form(u.text) for s, d, u in zip(_bm25(query, docs), docs, units)]
        top = max(lexical)
        scores = [s / top if top > 0 else 0.0 for s in lexical]
        best_cosine = 0.0
        if self.embedder is not None and self.semantic_weight > 0:
            # embed only the lexically best candidates: embedding every sentence costs seconds on a CPU
            order = sorted(range(len(units)), key=lambda i: (-scores[i], units[i].item.marker, units[i].position))
            candidates = order[: self.semantic_candidates]
            cos = _cosines(self.embedder, question, [units[i].text for i in candidates])
            best_cosine = max(cos, default=0.0)
            w = self.semantic_weight
            blended = [(1 - w) * s for s in scores]
            for i, c in zip(candidates, cos):
                blended[i] += w * max(c, 0.0)
            scores = blended
        if top <= 0 and best_cosine < self.min_similarity:
            return []  # no shared content word and nothing semantically close: no answer
        # retrieval already ranked the pages: a sentence from the first hit beats an equally
        # matching sentence from the fifth. The prior orders the sentences; whether a further
        # sentence is worth adding is judged on its own match, so a strong one from a lower hit
        # (the figure the first hit only mentions) still joins the answer.
        ordered = [s / (1.0 + self.rank_decay * u.item.rank) for s, u in zip(scores, units)]
        # the same sentence in a chunk (or figure) and in its whole page: cite the chunk, whose box
        # is the passage rather than the page
        # words the question quotes are the words the user read on the page: sentences holding
        # them come first (as pages holding them do in search, retrievers.pipeline.promote)
        if phrases is None:
            phrases = quoted_phrases(question)
        held = [holds(u.text, phrases) for u in units] if phrases else [0] * len(units)
        ranked = sorted(
            range(len(units)),
            key=lambda i: (-held[i], -ordered[i], units[i].item.kind == "page", units[i].item.marker, units[i].position),
        )
        best = scores[ranked[0]]
        if best <= 0:
            return []
        chosen: list[int] = []
        seen: list[set[str]] = []
        for i in ranked:
            if len(chosen) == self.max_sentences:
                break
            if scores[i] < self.min_ratio * best or scores[i] <= 0:
                continue
            words = set(docs[i])
            # the same sentence reached through a chunk and through its page (perhaps with a heading glued on)
            if any(len(words & other) >= 0.8 * min(len(words), len(other)) for other in seen if other and words):
                continue
            seen.append(words)
            chosen.append(i)
        return [(units[i], ordered[i]) for i in chosen]

    def _answer(
        self, question: str, items: Sequence[ContextItem], phrases: Sequence[str] | None = None
    ) -> tuple[list[str], list[ContextItem]]:
        """The answer in pieces (one per sentence) and the cited items, renumbered 1, 2, ... in
        the order the answer first cites them (the evidence's own numbers follow hit rank, so an
        answer would otherwise read "... [2] ... [1]")."""
        chosen = self.select(question, items, phrases)
        if not chosen:
            return [NO_ANSWER], []
        renumbered: dict[int, ContextItem] = {}
        pieces = []
        for i, (unit, _) in enumerate(chosen):
            source = _passage_holding(unit, items)
            item = renumbered.setdefault(source.marker, replace(source, marker=len(renumbered) + 1))
            text, end = (unit.text[:-1], unit.text[-1]) if unit.text[-1] in ".!?" else (unit.text, ".")
            pieces.append(("" if i == 0 else " ") + f"{text} [{item.marker}]{end}")
        return pieces, list(renumbered.values())

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

"""Navigation pages as pointers: a contents line or an index entry that matches the question
lends score to the page it points to, and the navigation page itself stops competing.

A table of contents or a back-of-book index holds every topic word of its document, so by
words alone it ranks high for any question and answers none. Its entries (stored with the page
at ingest, :mod:`ingest.navigation`, ``nav_entries`` of :class:`retrievers.payloads.PagePayload`)
say which page does. :func:`follow_pointers` is a pure function of the fused hits, the
navigation pages among them and the records of the pages they point to:

- an entry matches by its terms (:func:`words`, plurals folded): its **strength** is the
  geometric mean of the share of the entry's term weight the question holds (a term shared by
  many entries of the same page, "color" in a colour package's contents, weighs little;
  numbering weighs nothing) and the share of the question's terms the entry holds;
- the best entries (at most :data:`MAX_ENTRIES`, strength at least :data:`MIN_STRENGTH` and
  :data:`NEAR_BEST` of the best one's) lend
  ``LEND * strength * score`` of the navigation page's score to their target, split evenly
  among the pages one entry text points to (an index term with ten references is vaguer
  than one with one); a target not among the hits joins them;
- the navigation page's score is multiplied by :data:`DEMOTE` (kept, not removed), unless the
  question names what it is ("where is the index?").

A page reached this way says so in :attr:`rag.types.Hit.via` ("via contents p.3: Threads").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from rag.ids import point_id
from rag.types import Evidence, Hit, NavEntry
from retrievers.embedders.sparse import ENGLISH_STOPWORDS, split_words
from retrievers.payloads import PagePayload

__all__ = ["follow_pointers", "lend", "apply_lending", "Lending", "entry_strengths", "words", "LEND", "DEMOTE", "MIN_STRENGTH", "MAX_ENTRIES", "NEAR_BEST"]

LEND = 0.8
DEMOTE = 0.5
MIN_STRENGTH = 0.35
MAX_ENTRIES = 3
NEAR_BEST = 0.75
_NAMES = {"contents": "contents table of contents", "index": "index", "list": "list of figures tables"}
_KIND_WORDS = {"contents": "contents", "index": "index", "list": "list of figures"}

Terms = Callable[[str], Sequence[str]]
Key = tuple[str, int]


def words(text: str) -> list[str]:
    """The terms an entry and a question are matched by: case-folded words without stopwords, a
    plural ``s`` dropped ("Shades" matches "shade"); no stemmer, so no model or package is needed."""
    return list(_words(text))


@lru_cache(maxsize=8192)
def _words(text: str) -> tuple[str, ...]:
    """:func:`words`, memoised: a question meeting an index page matches it entry by entry, and the
    same entries meet question after question."""
    out = []
    for w in split_words(text):
        w = w.removesuffix("'s").replace("'", "")
        if not w or w in ENGLISH_STOPWORDS:
            continue
        out.append(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return tuple(out)


def entry_strengths(question_terms: set[str], entries: Sequence[NavEntry], terms: Terms) -> list[tuple[float, NavEntry]]:
    """How well each entry of one navigation page matches the question (0..1), best first;
    entries sharing no term with the question are left out."""
    if not question_terms or not entries:
        return []
    # numbering ("3.2", "IV") names no topic
    entry_terms = [{t for t in terms(e.text) if not t.isdigit()} for e in entries]
    texts: dict[str, set[str]] = {}
    for e, ts in zip(entries, entry_terms):
        texts.setdefault(e.text, ts)
    df: dict[str, int] = {}
    for ts in texts.values():
        for t in ts:
            df[t] = df.get(t, 0) + 1
    n = len(texts)

    def weight(t: str) -> float:
        return math.log(1.0 + n / df.get(t, 1))

    out = []
    for e, ts in zip(entries, entry_terms):
        matched = ts & question_terms
        if not matched or not ts:
            continue
        covered = sum(weight(t) for t in matched) / sum(weight(t) for t in ts)
        asked = len(matched) / len(question_terms)
        out.append((math.sqrt(covered * asked), e))
    out.sort(key=lambda pair: -pair[0])
    return out


@dataclass(frozen=True)
class Lending:
    """What the navigation pages among a question's hits do (:func:`lend`): each hit page's score
    after demotion, the score lent to each pointed-to page, and why (the best entry's share and text)."""

    scores: Mapping[Key, float]
    lent: Mapping[Key, float]
    via: Mapping[Key, tuple[float, str]]

    @property
    def missing(self) -> list[Key]:
        """The pointed-to pages that are not among the hits: the records :func:`apply_lending` needs."""
        return sorted(key for key in self.lent if key not in self.scores)


def lend(hits: Sequence[Hit], navigation: Mapping[Key, PagePayload], question: str, terms: Terms = words) -> Lending:
    """The first half of :func:`follow_pointers`: which pages the matching entries of the
    navigation pages among ``hits`` lend score to, and how much, before any of their records is read."""
    asked = set(terms(question))
    scores = {(h.doc_id, h.page): h.score for h in hits}
    via: dict[Key, tuple[float, str]] = {}
    lent: dict[Key, float] = {}
    for h in hits:
        key = (h.doc_id, h.page)
        nav = navigation.get(key)
        if nav is None or nav.navigation is None:
            continue
        if asked & set(terms(_NAMES.get(nav.navigation, nav.navigation))):
            continue  # the question asks for the navigation page itself
        scores[key] = h.score * DEMOTE
        ranked = entry_strengths(asked, nav.entries, terms)
        best = [(s, e) for s, e in ranked if s >= MIN_STRENGTH and s >= NEAR_BEST * ranked[0][0]]
        chosen = {e.text for _, e in best[:MAX_ENTRIES]}
        fan = {t: sum(1 for e in nav.entries if e.text == t) for t in chosen}
        for strength, entry in best:
            if entry.text not in chosen:
                continue
            target = (h.doc_id, entry.page)
            share = LEND * strength * h.score / fan[entry.text]
            if share > lent.get(target, 0.0):
                lent[target] = share
            if share > via.get(target, (0.0, ""))[0]:
                where = f"p.{nav.page}" + (f" ({nav.label})" if nav.label and nav.label != str(nav.page) else "")
                via[target] = (share, f"via {_KIND_WORDS.get(nav.navigation, nav.navigation)} {where}: {entry.text} … {entry.printed}")
    return Lending(scores, lent, via)


def apply_lending(hits: Sequence[Hit], lending: Lending, targets: Mapping[Key, PagePayload]) -> list[Hit]:
    """The second half of :func:`follow_pointers`: ``hits`` rescored by ``lending``, and the
    pointed-to pages missing from them (``targets``: their records, :attr:`Lending.missing`) added,
    best first; a target without a record is skipped."""
    scores, lent, via = lending.scores, lending.lent, lending.via
    out: list[Hit] = []
    present = set(scores)
    for h in hits:
        key = (h.doc_id, h.page)
        extra = lent.get(key, 0.0)
        out.append(replace(h, score=round(scores[key] + extra, 6), via=via[key][1] if key in via else h.via))
    for key, share in lent.items():
        record = targets.get(key)
        if key in present or record is None:
            continue
        out.append(_hit(record, share, via[key][1]))
    out.sort(key=lambda h: -h.score)
    return out


def follow_pointers(
    hits: Sequence[Hit],
    navigation: Mapping[Key, PagePayload],
    targets: Mapping[Key, PagePayload],
    question: str,
    terms: Terms = words,
) -> list[Hit]:
    """``hits`` with score lent from navigation pages (``navigation``: the records of those
    among the hits) to the pages their matching entries point to, best first. ``targets``: the
    records of pointed-to pages, so one missing from the hits can join them (a target without a
    record is skipped; only :attr:`Lending.missing` of :func:`lend` are looked up, so a caller
    reading records from a store reads those: :func:`lend` then :func:`apply_lending`).
    ``terms``: a text's search terms. Unchanged when no hit is a navigation page."""
    if not navigation:
        return list(hits)
    return apply_lending(hits, lend(hits, navigation, question, terms), targets)


def _hit(record: PagePayload, score: float, reason: str) -> Hit:
    """A hit for a page reached only through a pointer: its page record is its evidence."""
    image = record.image
    evidence = Evidence("pages", "page", record.text, round(score, 6), record.bbox,
                        None if image is None else Path(image), point_id(record.doc_id, record.page, "page"),
                        start=record.start, end=record.end)
    return Hit(
        doc_id=record.doc_id, source=record.source, page=record.page, score=round(score, 6), corpus="pages",
        evidence=(evidence,), label=record.label,
        image_path=None if record.page_image is None else Path(record.page_image),
        path=None if record.path is None else Path(record.path),
        page_width=record.page_width, page_height=record.page_height, via=reason, start=record.start, end=record.end,
    )

"""Sentence granularity at query time: the top text chunks rescored by their best sentence window.

A chunk's vector is the mean of its sentences' meaning (about 1,000 characters, several
sentences), so a question about one sentence of it matches the whole chunk weakly, and a chunk
that is about the question's topic throughout can outrank the chunk holding the one sentence
that answers it. With ``[ask] sentences = true`` the :data:`CANDIDATES` best chunks of the text
corpus are cut into windows of :data:`WINDOW` consecutive sentences (:func:`sentence_windows`),
each window is embedded with the text model (the embedder's document cache keeps them, so a
chunk seen by an earlier question costs nothing), and each candidate's best window similarity,
on the scale score fusion adds (:func:`retrievers.search.normalise`, minus the list's floor), is
added to its chunk score times :data:`WEIGHT`. Candidates below the first :data:`CANDIDATES`
keep their score; the page-level vector (the ``pages`` corpus: the mean of a page's chunks) is
the third granularity and is unchanged.

Measured (BENCHMARKS.md, session 14; `bench/bench_granular.py`): see there for every weight,
window and candidate count tried, and why this is off by default (embedding the windows of
chunks no question has met before costs 200-400 CPU ms per question).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from retrievers.base import ScoredPoint, TextEmbedder

__all__ = ["CANDIDATES", "WEIGHT", "WINDOW", "Rescored", "sentence_windows", "rescore_by_sentences"]

#: How many of the text corpus's best chunks are rescored.
CANDIDATES = 24
#: The share of a candidate's best window similarity (normalised within the candidates) added to its score.
WEIGHT = 0.2
#: Sentences per window (windows overlap: one starts at every sentence).
WINDOW = 2
#: A sentence shorter than this (a heading, "Fig. 3.", a list label) is joined to the next.
MIN_SENTENCE_CHARS = 40

_SENTENCE_END = re.compile(r"(?<=[.!?;:])[)\]\"”’]?\s+(?=[A-Z0-9(\[\"“‘•\-])|\n\s*\n")


def _sentences(text: str) -> list[str]:
    out: list[str] = []
    for part in _SENTENCE_END.split(text):
        part = re.sub(r"\s+", " ", part).strip()
        if not part:
            continue
        if out and len(out[-1]) < MIN_SENTENCE_CHARS:
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


def sentence_windows(text: str, size: int = WINDOW) -> list[str]:
    """The windows of ``size`` consecutive sentences of ``text``, one starting at each sentence
    (a text of ``size`` sentences or fewer is one window; an empty text has none). A sentence
    ends at ``.``, ``!``, ``?``, ``;`` or ``:`` followed by a capital, a digit or an opening
    bracket or quote, or at a blank line; sentences shorter than :data:`MIN_SENTENCE_CHARS` join
    the next."""
    if size < 1:
        raise ValueError(f"a sentence window holds at least one sentence, got {size}")
    parts = _sentences(text)
    if len(parts) <= size:
        return [" ".join(parts)] if parts else []
    return [" ".join(parts[i : i + size]) for i in range(len(parts) - size + 1)]


@dataclass(frozen=True)
class Rescored:
    """The text corpus's points rescored, best first, and, for each chunk that its best window
    moved up the list, that window (point id -> window text)."""

    points: list[ScoredPoint]
    lifted: dict[str, str]


def rescore_by_sentences(
    points: Sequence[ScoredPoint],
    query: np.ndarray,
    embedder: TextEmbedder,
    candidates: int = CANDIDATES,
    weight: float = WEIGHT,
    size: int = WINDOW,
) -> Rescored:
    """``points`` (best first, with payloads holding ``text``) with the first ``candidates``
    rescored by their best sentence window's cosine similarity to ``query`` (a unit vector from
    the same ``embedder``), then sorted again. See the module doc."""
    from retrievers.search import normalise

    head = list(points[:candidates])
    if not head:
        return Rescored(list(points), {})
    per_point = [sentence_windows(str(p.payload.get("text", "")), size) for p in head]
    flat = [w for wins in per_point for w in wins]
    sims = np.asarray(embedder.embed_documents(flat), dtype=np.float32) @ np.asarray(query, dtype=np.float32) if flat else np.zeros(0)
    best: list[float] = []
    window: list[str] = []
    at = 0
    for wins in per_point:
        if not wins:
            best.append(0.0)
            window.append("")
            continue
        chunk = sims[at : at + len(wins)]
        i = int(np.argmax(chunk))
        best.append(float(chunk[i]))
        window.append(wins[i])
        at += len(wins)
    norm = np.asarray(normalise(best))
    bonus = norm - norm.min()
    rescored = [ScoredPoint(p.id, round(p.score + weight * float(b), 6), p.payload) for p, b in zip(head, bonus)]
    out = sorted(rescored, key=lambda p: (-p.score, p.id)) + list(points[candidates:])
    before = {p.id: i for i, p in enumerate(head)}
    lifted = {p.id: window[before[p.id]] for i, p in enumerate(out[: len(head)]) if i < before[p.id] and window[before[p.id]]}
    return Rescored(out, lifted)

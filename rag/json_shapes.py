"""The JSON shapes of routes, hits, citations and answers: what ``mmrag search|ask --json``, the
HTTP server and the search result's ``to_json`` print. One function per record; callers that
show more (the server's image URLs, the CLI's highlight files) add keys on top.

Times are milliseconds rounded to 0.01, except ``start``/``end`` of hits, evidence and citations:
seconds into a video or audio file (rounded to 0.001; ``null`` for every other document); boxes are ``[x0, y0, x1, y1]`` in PDF points; images
are file paths (the server swaps them for URLs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rag.types import Answer, Citation, Evidence, Hit, Route

__all__ = ["route_json", "evidence_json", "hit_json", "citation_json", "answer_json", "timings_json", "requery_json", "thesaurus_json"]

#: Evidence listed per hit, and the characters of each evidence text shown.
EVIDENCE_SHOWN = 5
EVIDENCE_CHARS = 300


def timings_json(timings: Mapping[str, float]) -> dict[str, float]:
    """Seconds -> milliseconds."""
    return {k: round(v * 1000, 2) for k, v in timings.items()}


def requery_json(requery: Any) -> dict[str, Any] | None:
    """Whether and how a search requeried (a :class:`retrievers.requery.Requery`): the first
    round's margin that made it weak, ``how`` (``expansion`` or ``parts``) and the queries
    searched; ``None`` when one round sufficed or requerying is off."""
    if requery is None:
        return None
    return {"margin": requery.margin, "how": requery.how, "queries": list(requery.queries)}


def _span(start: float | None, end: float | None) -> dict[str, float | None]:
    """``start``/``end`` in seconds (video and audio), ``None`` for other documents."""
    return {
        "start": None if start is None else round(start, 3),
        "end": None if end is None else round(end, 3),
    }


def route_json(route: Route) -> dict[str, Any]:
    return {
        "corpora": list(route.corpora),
        "weights": {c: round(w, 4) for c, w in zip(route.corpora, route.weights)},
        "top_k": route.top_k,
        "reason": route.reason,
        "router": route.router,
    }


def evidence_json(ev: Evidence) -> dict[str, Any]:
    return {
        "corpus": ev.corpus,
        "kind": ev.kind,
        "score": round(ev.score, 6),
        "bbox": ev.bbox.as_list() if ev.bbox else None,
        "text": ev.text[:EVIDENCE_CHARS],
        "section": list(ev.section),
        **_span(ev.start, ev.end),
        **({"sentence": ev.sentence} if ev.sentence is not None else {}),
    }


def hit_json(hit: Hit) -> dict[str, Any]:
    return {
        "source": hit.source,
        "doc_id": hit.doc_id,
        "page": hit.page,
        "label": hit.label,
        "score": hit.score,
        "corpus": hit.corpus,
        "granularity": hit.granularity,
        "bbox": hit.bbox.as_list() if hit.bbox else None,
        "image_path": str(hit.image_path) if hit.image_path else None,
        **_span(hit.start, hit.end),
        "evidence": [evidence_json(e) for e in hit.evidence[:EVIDENCE_SHOWN]],
        **({"via": hit.via} if hit.via is not None else {}),
    }


def citation_json(citation: Citation, max_text: int | None = None) -> dict[str, Any]:
    """A citation; ``max_text`` cuts its quoted text (``None``: all of it)."""
    c = citation
    return {
        "marker": c.marker,
        "source": c.source,
        "doc_id": c.doc_id,
        "page": c.page,
        "label": c.label,
        "bbox": c.bbox.as_list() if c.bbox else None,
        "text": c.text if max_text is None else c.text[:max_text],
        "crop_path": str(c.crop_path) if c.crop_path is not None else None,
        "section": list(c.section),
        **_span(c.start, c.end),
    }


def thesaurus_json(added: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]] | None:
    """The related words the thesaurus added to the sparse query, by the question's word that
    brought them; ``None`` when the thesaurus is off."""
    return None if added is None else {word: list(words) for word, words in added.items()}


def answer_json(
    answer: Answer,
    *,
    hit: Callable[[Hit], dict[str, Any]] = hit_json,
    citation: Callable[[Citation], dict[str, Any]] = citation_json,
) -> dict[str, Any]:
    """An answer with its citations, the route and hits it came from, and timings; ``hit`` and
    ``citation`` shape those records (the server's add image URLs)."""
    return {
        "question": answer.question,
        "rewritten": answer.rewritten,
        "answer": answer.text,
        "answered": answer.answered,
        "why_unanswered": answer.why_unanswered,
        "unsupported": list(answer.unsupported),
        "citations": [citation(c) for c in answer.citations],
        "route": route_json(answer.route) if answer.route else None,
        "hits": [hit(h) for h in answer.hits],
        "generator": answer.generator,
        "thesaurus": thesaurus_json(answer.thesaurus),
        "timings_ms": timings_json(answer.timings),
    }

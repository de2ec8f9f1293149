"""Copy a knowledge base's points into new collections with their dense text vectors made again.

After a text model changes (``mmrag tune``), every dense text vector must come from the new
model, but nothing else changes: the payloads, sparse, image and late-interaction vectors
are copied as they are. The texts are those the payloads keep, embedded as
:func:`retrievers.corpora.build_points` embedded them: a chunk's text; a figure's caption
and body (with a second vector of the caption's title, the two averaged); a page's vector is
the mean of its chunks' (the page text itself when it has no chunks).

The copy goes to *other* collections (``target`` specs): the old ones stay untouched and
searchable until the caller switches to the new ones, so a run stopped half-way changes
nothing a search sees.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.vectors import l2_normalize
from retrievers.base import CollectionSpec, Point, ScoredPoint, TextEmbedder, VectorStore
from retrievers.corpora import DENSE, caption_title

__all__ = ["ReembedReport", "reembed"]

logger = logging.getLogger(__name__)

#: points upserted per store call
BATCH = 256


@dataclass(frozen=True)
class ReembedReport:
    points: dict[str, int]
    texts: int
    seconds: float


class _Caption:
    """The one field :func:`caption_title` reads."""

    __slots__ = ("caption",)

    def __init__(self, caption: str | None) -> None:
        self.caption = caption


def _page_of(payload: Mapping[str, Any]) -> tuple[str, int]:
    return str(payload.get("doc_id", "")), int(payload.get("page") or 0)


def reembed(
    store: VectorStore,
    source: Mapping[str, CollectionSpec],
    target: Mapping[str, CollectionSpec],
    embedder: TextEmbedder,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> ReembedReport:
    """Write every point of the ``source`` corpora into the ``target`` ones (created here), its
    dense vector from ``embedder``. ``on_progress(n)`` is told of each ``n`` texts embedded."""
    started = time.perf_counter()
    counts: dict[str, int] = {}
    texts = 0

    def embed(batch: list[str]) -> np.ndarray:
        nonlocal texts
        out = embedder.embed_documents(batch)
        texts += len(batch)
        if on_progress is not None:
            on_progress(len(batch))
        return out

    for spec in target.values():
        store.ensure_collection(spec)

    # text chunks first: the pages' vectors are their means
    per_page: dict[tuple[str, int], list[np.ndarray]] = {}
    counts["text"] = _copy(store, source["text"].name, target["text"].name, lambda pts: _chunk_vectors(pts, embed, per_page))
    counts["figures"] = _copy(store, source["figures"].name, target["figures"].name, lambda pts: _figure_vectors(pts, embed))
    counts["pages"] = _copy(store, source["pages"].name, target["pages"].name, lambda pts: _page_vectors(pts, embed, per_page))
    store.flush()  # the new corpora on disk before the caller switches to them
    report = ReembedReport(counts, texts, time.perf_counter() - started)
    logger.info("re-embedded %d texts into %s in %.1f s", texts, counts, report.seconds)
    return report


def _copy(store: VectorStore, source: str, target: str, vectors_of: Callable[[list[ScoredPoint]], list[np.ndarray]]) -> int:
    n = 0
    batch: list[ScoredPoint] = []

    def flush() -> None:
        dense = vectors_of(batch)
        store.upsert(target, [Point(p.id, {**p.vectors, DENSE: v}, p.payload) for p, v in zip(batch, dense)])

    for point in store.scroll(source, with_vectors=True):
        batch.append(point)
        if len(batch) == BATCH:
            flush()
            n += len(batch)
            batch = []
    if batch:
        flush()
        n += len(batch)
    return n


def _chunk_vectors(points: list[ScoredPoint], embed: Callable[[list[str]], np.ndarray], per_page: dict[tuple[str, int], list[np.ndarray]]) -> list[np.ndarray]:
    vecs = list(embed([str(p.payload.get("text") or "") or " " for p in points]))
    for p, v in zip(points, vecs):
        per_page.setdefault(_page_of(p.payload), []).append(v)
    return vecs


def _figure_vectors(points: list[ScoredPoint], embed: Callable[[list[str]], np.ndarray]) -> list[np.ndarray]:
    texts = [str(p.payload.get("text") or "") or f"{p.payload.get('kind', 'figure')} on page {p.payload.get('page')}" for p in points]
    titles = [caption_title(_Caption(p.payload.get("caption"))) for p in points]  # type: ignore[arg-type]
    titled = [i for i, t in enumerate(titles) if t and t != texts[i]]
    dense = embed(texts + [titles[i] for i in titled])
    vecs = list(dense[: len(texts)])
    for j, i in enumerate(titled):
        vecs[i] = l2_normalize(np.asarray(vecs[i]) + np.asarray(dense[len(texts) + j]))
    return vecs


def _page_vectors(points: list[ScoredPoint], embed: Callable[[list[str]], np.ndarray], per_page: dict[tuple[str, int], list[np.ndarray]]) -> list[np.ndarray]:
    empty = [i for i, p in enumerate(points) if _page_of(p.payload) not in per_page]
    own = embed([str(points[i].payload.get("text") or "") or " " for i in empty]) if empty else []
    fallback = {i: own[j] for j, i in enumerate(empty)}
    return [
        fallback[i] if i in fallback else l2_normalize(np.mean(per_page[_page_of(p.payload)], axis=0))
        for i, p in enumerate(points)
    ]

"""The reranker role and what every reranker shares: ordering, the text of a hit, loading."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from rag.errors import ConfigError
from rag.types import Hit

__all__ = ["Reranker", "NoReranker", "ranked", "check_top_k", "hit_text", "page_image"]


@runtime_checkable
class Reranker(Protocol):
    """Rescores hits for a question; returns new hits, best first."""

    name: str

    def rerank(self, question: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]: ...


TIE_DECIMALS = 4


def check_top_k(top_k: int | None) -> int | None:
    if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
        raise ConfigError(f"rerank top_k must be None or an integer >= 0, got {top_k!r}")
    return top_k


def ranked(hits: Sequence[Hit], scores: Sequence[float], top_k: int | None = None) -> list[Hit]:
    """New hits carrying ``scores``, best first; ties (and NaNs, last) keep the input order.

    Scores equal to ``TIE_DECIMALS`` places tie: a model scores the same page a few 1e-6 apart
    in batches of different padding, and that noise must not reorder equal pages."""
    check_top_k(top_k)
    if len(hits) != len(scores):
        raise ValueError(f"{len(hits)} hits but {len(scores)} scores")
    keyed = [(-round(float(s), TIE_DECIMALS) if not math.isnan(float(s)) else math.inf, i) for i, s in enumerate(scores)]
    order = [i for _, i in sorted(keyed)]
    out = [replace(hits[i], score=float(scores[i])) for i in order]
    return out if top_k is None else out[:top_k]


def hit_text(hit: Hit, max_chars: int | None = None) -> str:
    """The text a text reranker reads: the evidence texts, best first, one per line."""
    seen: list[str] = []
    for ev in hit.evidence:
        text = ev.text.strip()
        if text and text not in seen:
            seen.append(text)
    joined = "\n".join(seen)
    return joined if max_chars is None else joined[:max_chars]


def page_image(hit: Hit) -> Path | None:
    """The page image of a hit: ``hit.image_path``, else the image of its page evidence."""
    if hit.image_path is not None:
        return Path(hit.image_path)
    for ev in hit.evidence:
        if ev.kind == "page" and ev.image_path is not None:
            return Path(ev.image_path)
    return None


class NoReranker:
    """Keeps the retrieval order and scores (cut to ``top_k``)."""

    name = "none"

    def load(self) -> None:
        """Nothing to load."""

    def rerank(self, question: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        check_top_k(top_k)
        out = list(hits)
        return out if top_k is None else out[:top_k]

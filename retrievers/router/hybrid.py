"""Hybrid routing: rules and embedding similarity mixed per corpus."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rag.errors import ConfigError
from rag.types import CORPORA, Route
from retrievers.base import TextEmbedder
from retrievers.router._base import Router, check_top_k, describe_weights, make_route
from retrievers.router.embedding import embedding_router
from retrievers.router.rules import RulesRouter

__all__ = ["HybridRouter", "hybrid_router"]


class HybridRouter:
    """``alpha * rules + (1 - alpha) * embedding`` per corpus; the reason quotes both."""

    name = "hybrid"

    def __init__(self, rules: Router, embedding: Router, alpha: float = 0.5, top_k: int | None = None) -> None:
        if not 0 <= alpha <= 1:
            raise ConfigError(f"HybridRouter alpha must be within [0, 1], got {alpha}")
        self.rules = rules
        self.embedding = embedding
        self.alpha = float(alpha)
        self.top_k = None if top_k is None else check_top_k(top_k)

    def load(self) -> None:
        for part in (self.rules, self.embedding):
            load = getattr(part, "load", None)
            if callable(load):
                load()

    def route(self, question: str) -> Route:
        a, b = self.rules.route(question), self.embedding.route(question)
        weights = {c: self.alpha * a.weight(c) + (1 - self.alpha) * b.weight(c) for c in CORPORA}
        top_k = self.top_k if self.top_k is not None else max(a.top_k, b.top_k)
        mix = describe_weights({c: w for c, w in weights.items() if w > 0})
        reason = f"{mix} = {self.alpha:g} x [{a.reason}] + {1 - self.alpha:g} x [{b.reason}]"
        return make_route(weights, top_k, reason, self.name)


def hybrid_router(
    *,
    embedder: TextEmbedder | None = None,
    descriptions: Mapping[str, Sequence[str]] | None = None,
    centroids: Mapping[str, np.ndarray] | None = None,
    top_k: int = 10,
    temperature: float = 0.1,
    floor: float = 0.05,
    alpha: float = 0.5,
    exclusive: bool = False,
) -> HybridRouter:
    """The ``hybrid`` router kind: :class:`RulesRouter` and :func:`embedding_router` with the same ``top_k``."""
    rules = RulesRouter(top_k, exclusive=exclusive)
    embedding = embedding_router(embedder=embedder, descriptions=descriptions, centroids=centroids, top_k=top_k,
                                 temperature=temperature, floor=floor)
    return HybridRouter(rules, embedding, alpha=alpha, top_k=top_k)

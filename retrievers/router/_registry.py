"""Hybrid routing and :func:`build_router`, the explicit table of router kinds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rag.errors import ConfigError
from rag.types import CORPORA, Route
from retrievers.base import TextEmbedder
from retrievers.router._base import AllRouter, Router, check_top_k, describe_weights, make_route
from retrievers.router.embedding import EmbeddingRouter
from retrievers.router.llm import LLMRouter
from retrievers.router.rules import RulesRouter

__all__ = ["HybridRouter", "ROUTERS", "SHARED_DEPS", "build_router"]


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


# ----------------------------------------------------------------------------- factory
def _default_embedder(deps: dict[str, Any]) -> TextEmbedder:
    embedder = deps.pop("embedder", None)
    if embedder is None:
        from retrievers.registry import build

        embedder = build("all-MiniLM-L6-v2", "text")
    return embedder


def _build_rules(deps: dict[str, Any]) -> Router:
    return RulesRouter(deps.pop("top_k", 10), exclusive=deps.pop("exclusive", False))


def _build_embedding(deps: dict[str, Any]) -> Router:
    embedder = _default_embedder(deps)
    kwargs = {k: deps.pop(k) for k in ("descriptions", "top_k", "temperature", "floor") if k in deps}
    centroids = deps.pop("centroids", None)
    if centroids is not None:
        kwargs.pop("descriptions", None)
        return EmbeddingRouter.from_centroids(embedder, centroids, **kwargs)
    return EmbeddingRouter(embedder, **kwargs)


def _build_hybrid(deps: dict[str, Any]) -> Router:
    alpha = deps.pop("alpha", 0.5)
    top_k = deps.get("top_k", 10)
    rules = _build_rules({"top_k": top_k, "exclusive": deps.pop("exclusive", False)})
    return HybridRouter(rules, _build_embedding(deps), alpha=alpha, top_k=top_k)


def _build_llm(deps: dict[str, Any]) -> Router:
    completer = deps.pop("completer", None)
    if completer is None:
        raise ConfigError("build_router('llm') needs completer=<object with complete(prompt) -> str>")
    top_k = deps.pop("top_k", 10)
    fallback = deps.pop("fallback", None)
    if fallback is None:  # the default router when an embedder is at hand, else the rules
        embedder = deps.pop("embedder", None)
        fallback = RulesRouter(top_k) if embedder is None else _build_hybrid({"embedder": embedder, "top_k": top_k})
    kwargs = {k: deps.pop(k) for k in ("exclusive", "floor", "prompt") if k in deps}
    return LLMRouter(completer, fallback, top_k, **kwargs)


def _build_all(deps: dict[str, Any]) -> Router:
    return AllRouter(deps.pop("top_k", 10))


#: kind -> (factory, the keyword arguments it accepts)
ROUTERS: dict[str, tuple[Callable[[dict[str, Any]], Router], frozenset[str]]] = {
    "rules": (_build_rules, frozenset({"top_k", "exclusive"})),
    "embedding": (_build_embedding, frozenset({"embedder", "descriptions", "centroids", "top_k", "temperature",
                                               "floor"})),
    "hybrid": (_build_hybrid, frozenset({"embedder", "descriptions", "centroids", "top_k", "temperature", "floor",
                                         "alpha", "exclusive"})),
    "llm": (_build_llm, frozenset({"completer", "embedder", "fallback", "top_k", "exclusive", "floor", "prompt"})),
    "all": (_build_all, frozenset({"top_k"})),
}


#: Dependencies every kind accepts (and ignores when it has no use for them), so one bag of
#: dependencies built from the configuration fits whichever kind is asked for.
SHARED_DEPS = frozenset({"embedder", "completer", "top_k"})


def build_router(kind: str, **deps: Any) -> Router:
    """Build the router called ``kind`` (see :data:`ROUTERS`); models load on first use.

    Dependencies set to ``None`` count as not given; :data:`SHARED_DEPS` that a kind does
    not use are ignored; any other unknown keyword is a :class:`ConfigError`.
    """
    deps = {k: v for k, v in deps.items() if v is not None}
    if kind not in ROUTERS:
        raise ConfigError(f"unknown router {kind!r}; known: {', '.join(ROUTERS)}")
    factory, accepted = ROUTERS[kind]
    unknown = sorted(set(deps) - accepted - SHARED_DEPS)
    if unknown:
        raise ConfigError(f"router {kind!r} does not take {unknown}; it takes {sorted(accepted)}")
    return factory({k: v for k, v in deps.items() if k in accepted})

"""The router kinds: one :class:`rag.registry.Registry` row each (``build_router(kind, ...)``)."""

from __future__ import annotations

from typing import Any

from rag.registry import Registry, Spec
from retrievers.router._base import Router

__all__ = ["ROUTERS", "SHARED_DEPS", "build_router"]

_EMBEDDING = frozenset({"embedder", "descriptions", "centroids", "top_k", "temperature", "floor"})

#: kind -> its loader and the options it takes
ROUTERS = Registry(
    "router",
    (
        Spec("rules", "retrievers.router.rules:RulesRouter", frozenset({"top_k", "exclusive"}),
             description="phrase and keyword cues leaning every corpus's weight (the default)", role="router"),
        Spec("embedding", "retrievers.router.embedding:embedding_router", _EMBEDDING,
             description="the question against example phrasings or corpus centroids", role="router"),
        Spec("hybrid", "retrievers.router.hybrid:hybrid_router", _EMBEDDING | {"alpha", "exclusive"},
             description="rules and embedding mixed", role="router"),
        Spec("llm", "retrievers.router.llm:llm_router",
             frozenset({"fallback", "top_k", "exclusive", "floor", "prompt"}), ("completer",),
             description="a language model's JSON answer, validated, with a fallback", role="router"),
        Spec("all", "retrievers.router._base:AllRouter", frozenset({"top_k"}),
             description="every corpus, equal weights", role="router"),
    ),
)

#: Dependencies every kind accepts (and ignores when it has no use for them), so one bag of
#: dependencies built from the configuration fits whichever kind is asked for.
SHARED_DEPS = frozenset({"embedder", "completer", "top_k"})


def build_router(kind: str, **deps: Any) -> Router:
    """Build the router called ``kind`` (see :data:`ROUTERS`); models load on first use.

    Dependencies set to ``None`` count as not given; :data:`SHARED_DEPS` that a kind does
    not use are ignored; any other unknown keyword is a :class:`rag.errors.ConfigError`.
    """
    spec = ROUTERS.spec(kind)
    given = {k: v for k, v in deps.items() if v is not None}
    unused_shared = (set(given) & SHARED_DEPS) - spec.options
    return ROUTERS.build(kind, **{k: v for k, v in given.items() if k not in unused_shared})

"""Routers: which corpora a question goes to, with what weight, and why.

A :class:`Router` turns a question into a :class:`rag.types.Route`. Weights sum to 1 and
the corpora are listed best first. Unless a router is built ``exclusive=True`` every
corpus keeps some weight, so routing can lower recall but never make it impossible; and
fusion (:func:`retrievers.search.fuse_pages`) lets the lean lift pages of one document only,
the one ranked first with every corpus alike (:func:`retrievers.search.lean_within`).

- :class:`RulesRouter`: a table of cues (the default). A phrase that points at a figure or
  a table ("in the chart", "Table 2") leans the weights toward that intent; a bare cue word
  ("picture", "colour", "how many") leans them a quarter as far; no cue, equal weights. The
  weights move at most half way from equal, so a cue never takes a corpus away.
- :class:`EmbeddingRouter`: the question against example phrasings per corpus (or a
  knowledge base's own corpus centroids), softmax over cosine similarities.
- :class:`LLMRouter`: asks any :class:`Completer` for a constrained JSON answer, validates
  it, and falls back to another router on anything it cannot use.
- :class:`HybridRouter`: rules and embedding combined.
- :class:`AllRouter`: every corpus, equal weights.

:func:`build_router` builds one by name from an explicit table (:data:`ROUTERS`, a
:class:`rag.registry.Registry`).
"""

from retrievers.router._base import AllRouter, Completer, Router
from retrievers.router._registry import ROUTERS, SHARED_DEPS, build_router
from retrievers.router.embedding import DEFAULT_DESCRIPTIONS, EmbeddingRouter
from retrievers.router.hybrid import HybridRouter
from retrievers.router.llm import LLM_PROMPT, LLMRouter
from retrievers.router.rules import CUES, PROFILES, Cue, RulesRouter

__all__ = [
    "Router",
    "Completer",
    "Cue",
    "CUES",
    "PROFILES",
    "DEFAULT_DESCRIPTIONS",
    "LLM_PROMPT",
    "RulesRouter",
    "EmbeddingRouter",
    "LLMRouter",
    "HybridRouter",
    "AllRouter",
    "ROUTERS",
    "SHARED_DEPS",
    "build_router",
]

"""The reranker kinds: one :class:`rag.registry.Registry` row each (``build_reranker(kind, ...)``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.registry import Registry, Spec
from rag.types import Hit
from retrievers.base import LateInteractionEmbedder
from retrievers.rerank._base import Reranker
from retrievers.rerank.late_interaction import LateInteractionReranker

__all__ = ["RERANKERS", "build_reranker", "late_interaction_reranker"]

_VLM_OPTIONS = frozenset({"preset", "device", "yes_token", "no_token", "prompt", "score", "batch_size", "max_text_chars"})

#: kind -> its loader and the options it takes
RERANKERS = Registry(
    "reranker",
    (
        Spec("none", "retrievers.rerank._base:NoReranker", description="keep the retrieval order", role="reranker"),
        Spec(
            "late-interaction", "retrievers.rerank._registry:late_interaction_reranker",
            frozenset({"embedder", "model", "multivectors", "device", "batch_size", "pool_factor"}),
            description="MaxSim of the question against page multivectors (ColPali family)", role="reranker",
        ),
        Spec(
            "cross-encoder", "retrievers.rerank.cross_encoder:CrossEncoderReranker",
            frozenset({"device", "batch_size", "max_length"}), ("model",),
            description="a sequence-classification model reads (question, evidence text)", role="reranker",
        ),
        Spec(
            "vlm", "retrievers.rerank.vlm:vlm_reranker", _VLM_OPTIONS, ("model",),
            description="a vision-language model answers yes/no for (page image, question)", role="reranker",
        ),
    ),
)


def late_interaction_reranker(
    *,
    embedder: LateInteractionEmbedder | None = None,
    model: str | None = None,
    multivectors: Callable[[Hit], np.ndarray | None] | None = None,
    **model_options: Any,
) -> LateInteractionReranker:
    """MaxSim reranking with ``embedder``, or with the late-interaction model ``model`` (a
    registered name or a ColPali-family folder; ``device``/``batch_size``/``pool_factor`` apply to it)."""
    if (embedder is None) == (model is None):
        raise ConfigError("reranker 'late-interaction' needs exactly one of embedder=<LateInteractionEmbedder> "
                          "or model=<registered name or ColPali-family folder>")
    if embedder is None:
        from retrievers import registry  # the model catalogue; imported on use, never at module level

        embedder = registry.build(str(model), "late_interaction", **model_options)
    return LateInteractionReranker(embedder, multivectors)


def build_reranker(kind: str, **options: Any) -> Reranker:
    """Build the reranker called ``kind`` (see :data:`RERANKERS`); weights load on first use.

    Options set to ``None`` count as not given (so a config can pass ``model=None`` to ``"none"``).
    """
    return RERANKERS.build(kind, **{k: v for k, v in options.items() if v is not None})

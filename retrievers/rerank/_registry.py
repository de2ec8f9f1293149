"""`build_reranker`: the explicit table of reranker kinds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rag.errors import ConfigError
from retrievers.rerank._base import NoReranker, Reranker
from retrievers.rerank.cross_encoder import CrossEncoderReranker
from retrievers.rerank.late_interaction import LateInteractionReranker
from retrievers.rerank.vlm import VLMReranker

__all__ = ["RERANKERS", "build_reranker"]


def _need_model(kind: str, options: dict[str, Any]) -> str:
    model = options.pop("model", None)
    if not model:
        raise ConfigError(f"reranker {kind!r} needs model=<hub id or local folder>")
    return str(model)


def _none(options: dict[str, Any]) -> Reranker:
    return NoReranker()


def _late_interaction(options: dict[str, Any]) -> Reranker:
    embedder = options.pop("embedder", None)
    model = options.pop("model", None)
    if (embedder is None) == (model is None):
        raise ConfigError("reranker 'late-interaction' needs exactly one of embedder=<LateInteractionEmbedder> "
                          "or model=<registered name or ColPali-family folder>")
    if embedder is None:
        from retrievers.registry import build

        extra = {k: options.pop(k) for k in ("device", "batch_size", "pool_factor") if k in options}
        embedder = build(str(model), "late_interaction", **extra)
    return LateInteractionReranker(embedder, options.pop("multivectors", None))


def _cross_encoder(options: dict[str, Any]) -> Reranker:
    return CrossEncoderReranker(_need_model("cross-encoder", options), **options)


def _vlm(options: dict[str, Any]) -> Reranker:
    model = _need_model("vlm", options)
    return VLMReranker.from_preset(options.pop("preset", "default"), model, **options)


#: kind -> (factory, the options it accepts)
RERANKERS: dict[str, tuple[Callable[[dict[str, Any]], Reranker], frozenset[str]]] = {
    "none": (_none, frozenset()),
    "late-interaction": (_late_interaction, frozenset({"embedder", "model", "multivectors", "device", "batch_size",
                                                       "pool_factor"})),
    "cross-encoder": (_cross_encoder, frozenset({"model", "device", "batch_size", "max_length"})),
    "vlm": (_vlm, frozenset({"model", "preset", "device", "yes_token", "no_token", "prompt", "score", "batch_size",
                             "max_text_chars"})),
}


def build_reranker(kind: str, **options: Any) -> Reranker:
    """Build the reranker called ``kind`` (see :data:`RERANKERS`); weights load on first use.

    Options set to ``None`` count as not given (so a config can pass ``model=None`` to ``"none"``).
    """
    options = {k: v for k, v in options.items() if v is not None}
    if kind not in RERANKERS:
        raise ConfigError(f"unknown reranker {kind!r}; known: {', '.join(RERANKERS)}")
    factory, accepted = RERANKERS[kind]
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(f"reranker {kind!r} does not take {unknown}; it takes {sorted(accepted)}")
    return factory(dict(options))

"""Build the configured models, routers, rerankers and generators (the composition root)."""

from __future__ import annotations

import logging
import time
from typing import Any

from rag.config import Config, ModelsConfig

__all__ = ["build_embedders", "build_router_for", "build_reranker_for", "build_generator_for"]

log = logging.getLogger("mmrag.models")


def build_embedders(models: ModelsConfig) -> Any:
    """Construct and load every configured embedder (an idempotent, explicit load)."""
    from retrievers import registry
    from retrievers.corpora import Embedders

    started = time.perf_counter()
    if models.image or models.late_interaction:
        _quiet_weight_loading()
    common = {"device": models.device, "batch_size": models.batch_size}
    text_options: dict[str, Any] = {"dimension": models.text_dimension, **common}
    if registry.resolve(models.text, "text").family == "sentence-transformers":
        text_options["precision"] = models.text_precision
    text = registry.build(models.text, "text", **text_options)
    sparse = registry.build(models.sparse, "sparse") if models.sparse else None
    image = registry.build(models.image, "image", dimension=models.image_dimension, **common) if models.image else None
    late = (
        registry.build(models.late_interaction, "late_interaction", pool_factor=models.pool_factor, **common)
        if models.late_interaction
        else None
    )
    # The text model loads on first use: a plain folder (the bundled default) then answers
    # questions through ONNX without importing torch at all.
    for model in (image, late):
        if model is not None:
            model.load()
    log.info("models loaded in %.1f s", time.perf_counter() - started)
    return Embedders(text=text, sparse=sparse, image=image, late=late, page_images=models.page_image_vectors)


def _quiet_weight_loading() -> None:
    """transformers draws a "Loading weights" bar for every model; show it only when logging at INFO."""
    if logging.getLogger("mmrag").getEffectiveLevel() > logging.INFO:
        try:
            from transformers.utils import logging as hf_logging
        except ImportError:  # the text extra without transformers: nothing to silence
            return
        hf_logging.disable_progress_bar()


def build_router_for(kind: str, embedders: Any, config: Config) -> Any:
    from retrievers.router import build_router

    deps: dict[str, Any] = {"embedder": embedders.text, "top_k": max(config.ask.top_k * 4, 20)}
    if kind in ("llm", "all"):
        deps["completer"] = build_generator_for(config.ask.generator, embedders, config)
    return build_router(kind, **deps)


def build_reranker_for(kind: str, embedders: Any, config: Config) -> Any:
    from retrievers.rerank import build_reranker

    options: dict[str, Any] = {}
    if kind == "late-interaction":
        if embedders.late is None:
            from rag.errors import ConfigError

            raise ConfigError(
                "reranker 'late-interaction' needs a late-interaction model: set models.late_interaction "
                "(e.g. colqwen2 or a local folder) when building the knowledge base"
            )
        options["embedder"] = embedders.late
    elif kind in ("cross-encoder", "vlm"):
        if not config.ask.reranker_model:
            from rag.errors import ConfigError

            raise ConfigError(f"reranker {kind!r} needs a model: set ask.reranker_model (hub id or folder)")
        options["model"] = config.ask.reranker_model
        options["device"] = config.models.device
        registered = _registered(config.ask.reranker_model, "reranker") if kind == "vlm" else None
        if registered is not None:  # e.g. monoqwen2-vl: its hub id and its prompt/yes-no preset
            from retrievers.registry import RERANKER_PRESETS

            options["model"], family = registered
            options["preset"] = RERANKER_PRESETS[family]
    return build_reranker(kind, **options)


def _registered(name: str | None, role: str) -> tuple[str, str] | None:
    """(hub id, family) when ``name`` is a registered short name (``mmrag models``) of ``role``.

    Hub ids and folders give ``None`` (they load as given). A registered name of another role
    or of an unsupported family raises :class:`rag.errors.ModelError` saying why.
    """
    from retrievers import registry

    if name is None or name not in registry.MODELS:
        return None
    resolved = registry.resolve(name, role)  # type: ignore[arg-type]
    return resolved.source, resolved.family


def build_generator_for(kind: str, embedders: Any, config: Config) -> Any:
    from generators import build_generator

    ask = config.ask
    options: dict[str, Any] = {}
    if kind == "extractive":
        options["embedder"] = embedders.text
    elif kind == "local":
        options["model"] = ask.generator_model
        options["device"] = config.models.device
        registered = _registered(ask.generator_model, "generator")
        if registered is not None:  # e.g. smolvlm-256m -> HuggingFaceTB/SmolVLM-256M-Instruct, family idefics3
            options["model"], options["family"] = registered
    elif kind == "openai":
        options["model"] = ask.api_model
        options["base_url"] = ask.api_base
    return build_generator(kind, **options)

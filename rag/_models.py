"""Build the configured models, routers, rerankers and generators (the composition root).

Every role's table lives in its stage, in one shape (:class:`rag.registry.Registry`): embedder
and reranker model families in ``retrievers.registry``, reranker kinds in
``retrievers.rerank.RERANKERS``, router kinds in ``retrievers.router.ROUTERS``, generators and
generator models in ``generators.registry``. This module adds data only: where each option's
value comes from in the configuration (:data:`ROUTER_OPTIONS`, :data:`RERANKER_OPTIONS`,
:data:`GENERATOR_OPTIONS`), and :func:`list_models`, the ``mmrag models`` listing of both
model catalogues.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.config import PROFILE_MODELS, Config, ModelsConfig
from rag.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from generators.base import Generator
    from retrievers.base import AnyImageEmbedder, LateInteractionEmbedder, SparseEncoder, TextEmbedder
    from retrievers.corpora import Embedders
    from retrievers.rerank import Reranker
    from retrievers.router import Router

__all__ = [
    "FromConfig",
    "ROUTER_OPTIONS",
    "RERANKER_OPTIONS",
    "GENERATOR_OPTIONS",
    "LISTING_ROLES",
    "build_embedders",
    "build_router_for",
    "build_reranker_for",
    "build_generator_for",
    "list_models",
]

log = logging.getLogger("mmrag.models")


@dataclass(frozen=True)
class FromConfig:
    """Where one constructor option's value comes from; ``missing`` (when set) is what a
    ``None`` value means the user must do, and turns it into a :class:`ConfigError`."""

    value: Callable[[Embedders, Config], Any]
    missing: str = ""


#: Router options from the configuration; each kind gets the ones its registry row takes.
ROUTER_OPTIONS: dict[str, FromConfig] = {
    "embedder": FromConfig(lambda e, c: e.text),
    "top_k": FromConfig(lambda e, c: max(c.ask.top_k * 4, 20)),
    "completer": FromConfig(lambda e, c: build_generator_for(c.ask.generator, e, c)),
}

_RERANKER_MODEL = "a model: set ask.reranker_model (hub id or folder)"

#: reranker kind -> its options from the configuration
RERANKER_OPTIONS: dict[str, dict[str, FromConfig]] = {
    "none": {},
    "late-interaction": {
        "embedder": FromConfig(
            lambda e, c: e.late,
            "a late-interaction model: set models.late_interaction (e.g. colqwen2 or a local folder) when building "
            "the knowledge base",
        ),
    },
    "cross-encoder": {
        "model": FromConfig(lambda e, c: c.ask.reranker_model, _RERANKER_MODEL),
        "device": FromConfig(lambda e, c: c.models.device),
    },
    "vlm": {
        "model": FromConfig(lambda e, c: _of_role(c.ask.reranker_model, "reranker"), _RERANKER_MODEL),
        "device": FromConfig(lambda e, c: c.models.device),
    },
}

#: generator kind -> its options from the configuration
GENERATOR_OPTIONS: dict[str, dict[str, FromConfig]] = {
    "extractive": {"embedder": FromConfig(lambda e, c: e.text)},
    "local": {
        "model": FromConfig(lambda e, c: _of_role(c.ask.generator_model, "generator")),
        "device": FromConfig(lambda e, c: c.models.device),
    },
    "openai": {
        "model": FromConfig(lambda e, c: c.ask.api_model),
        "base_url": FromConfig(lambda e, c: c.ask.api_base),
    },
}

#: ``mmrag models`` groups its rows by role, in this order (registered names, then folder-only families).
LISTING_ROLES = ("text", "sparse", "image", "image_only", "multimodal", "generator", "reranker", "late_interaction")


def build_embedders(models: ModelsConfig) -> Embedders:
    """Construct and load every configured embedder (an idempotent, explicit load)."""
    from retrievers import registry
    from retrievers.corpora import Embedders

    started = time.perf_counter()
    if models.image or models.late_interaction:
        _quiet_weight_loading()
    common = {"device": models.device, "batch_size": models.batch_size}
    text_options: dict[str, Any] = {"dimension": models.text_dimension, **common}
    # unset outside a Config (which fills it from the ingest profile): the default profile's model
    text_model = models.text if models.text is not None else PROFILE_MODELS["default"]["text"]
    if "precision" in registry.FAMILIES[registry.resolve(text_model, "text").family].options:
        text_options["precision"] = models.text_precision
    text: TextEmbedder = registry.build(text_model, "text", **text_options)
    sparse: SparseEncoder | None = registry.build(models.sparse, "sparse") if models.sparse else None
    image: AnyImageEmbedder | None = (
        registry.build(models.image, "image", dimension=models.image_dimension, **common) if models.image else None
    )
    late: LateInteractionEmbedder | None = (
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
        except ImportError:  # deliberate: the text extra has no transformers, so there is no bar to silence
            return
        hf_logging.disable_progress_bar()


def _options(role: str, kind: str, table: Mapping[str, FromConfig], embedders: Embedders, config: Config) -> dict[str, Any]:
    """The values ``table`` takes from the configuration; a missing one that must be set raises."""
    options = {}
    for key, source in table.items():
        value = source.value(embedders, config)
        if value is None and source.missing:
            raise ConfigError(f"{role} {kind!r} needs {source.missing}")
        options[key] = value
    return options


def build_router_for(kind: str, embedders: Embedders, config: Config) -> Router:
    """The router ``kind`` with the options its :data:`retrievers.router.ROUTERS` row takes."""
    from retrievers.router import ROUTERS, build_router

    takes = ROUTERS.spec(kind).options
    table = {key: source for key, source in ROUTER_OPTIONS.items() if key in takes}
    return build_router(kind, **_options("router", kind, table, embedders, config))


def build_reranker_for(kind: str, embedders: Embedders, config: Config) -> Reranker:
    """The reranker ``kind`` with its :data:`RERANKER_OPTIONS` from ``config``."""
    from retrievers.rerank import build_reranker

    options = _options("reranker", kind, RERANKER_OPTIONS.get(kind, {}), embedders, config)
    return build_reranker(kind, **options)


def build_generator_for(kind: str, embedders: Embedders, config: Config) -> Generator:
    """The generator ``kind`` with its :data:`GENERATOR_OPTIONS` from ``config``."""
    from generators import build_generator

    options = _options("generator", kind, GENERATOR_OPTIONS.get(kind, {}), embedders, config)
    return build_generator(kind, **options)


def _of_role(name: str | None, role: str) -> str | None:
    """``name`` unchanged, unless ``mmrag models`` lists it (short name or hub id) only for another
    role: then :class:`ModelError` says so now rather than a confusing failure at load time."""
    if name is None:
        return None
    rows = [r for r in list_models() if name in (r["name"], r["hub_id"])]
    if rows and all(r["role"] != role for r in rows):
        row = rows[0]
        raise ModelError(f"model {name!r} is a {row['role']} model (family {row['family']}), not a {role} model")
    return name


def list_models() -> list[dict[str, Any]]:
    """``mmrag models``: the embedder/reranker catalogue and the generator catalogue, grouped by
    role (:data:`LISTING_ROLES`), registered names before the families reached by folder."""
    from generators import registry as generator_models
    from retrievers import registry as retriever_models

    rows = [*retriever_models.list_models(), *generator_models.list_models()]
    order = {role: i for i, role in enumerate(LISTING_ROLES)}
    return sorted(rows, key=lambda r: (str(r["name"]).startswith("<folder:"), order.get(r["role"], len(order))))

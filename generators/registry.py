"""Generators by name, and the catalogue of local generator models: explicit tables, never
guessed from strings. Both are :class:`rag.registry.Registry` tables (one row per name).

=============  ==================================================  =========================
name           loader                                              required options
=============  ==================================================  =========================
``extractive`` :class:`generators.extractive.ExtractiveGenerator`  (none)
``local``      :func:`generators.local_vlm.local_vlm_generator`    ``model`` (name, hub id or folder)
``openai``     :class:`generators.openai_api.OpenAIChatGenerator`  ``model``, ``base_url``
=============  ==================================================  =========================

The ``local`` generator's models: :data:`FAMILIES` (Qwen2-VL, Qwen2.5-VL, Idefics3, SmolVLM),
:data:`MODELS` (registered short names and hub ids, listed by ``mmrag models``) and the
``config.json`` rows that recognise a local folder's family (:data:`ARCHITECTURES`, then
:data:`MODEL_TYPES`). How each family is loaded and fed is the loader's data
(``generators.local_vlm.VLM_FAMILIES``).

Loaders are ``"module:callable"`` strings imported only when built, so importing this module
imports neither torch nor httpx. Building does not load weights or open connections.
"""

from __future__ import annotations

from typing import Any

from rag.registry import ModelSpec, Registry, Spec, find_model, model_rows

from generators.base import Generator

__all__ = [
    "GENERATORS",
    "FAMILIES",
    "MODELS",
    "ARCHITECTURES",
    "MODEL_TYPES",
    "build_generator",
    "find",
    "list_models",
]

_LOCAL_OPTIONS = frozenset({
    "family", "device", "max_new_tokens", "max_images", "max_items", "max_image_side", "dtype", "generation_kwargs",
})

#: generator name -> its loader and the options it takes
GENERATORS = Registry(
    "generator",
    (
        Spec(
            "extractive", "generators.extractive:ExtractiveGenerator",
            frozenset({"embedder", "semantic_weight", "max_sentences", "min_ratio", "max_items", "semantic_candidates",
                       "min_similarity", "rank_decay"}),
            description="best evidence sentences, no model", role="generator",
        ),
        Spec("local", "generators.local_vlm:local_vlm_generator", _LOCAL_OPTIONS, ("model",),
             description="local transformers VLM", role="generator"),
        Spec(
            "openai", "generators.openai_api:OpenAIChatGenerator",
            frozenset({"api_key_env", "timeout", "max_retries", "backoff", "transport", "max_images", "max_items",
                       "max_tokens", "temperature"}),
            ("model", "base_url"), description="OpenAI-compatible endpoint", role="generator",
        ),
    ),
)

_VLM = "generators.local_vlm:LocalVLMGenerator"
_VLM_OPTIONS = _LOCAL_OPTIONS | {"model"}

#: local image-text-to-text model families (``generators.local_vlm.VLM_FAMILIES`` says how each loads)
FAMILIES = Registry(
    "generator model family",
    (
        Spec("qwen2-vl", _VLM, _VLM_OPTIONS, description="Qwen2-VL", role="generator"),
        Spec("qwen2.5-vl", _VLM, _VLM_OPTIONS, description="Qwen2.5-VL", role="generator"),
        Spec("idefics3", _VLM, _VLM_OPTIONS, description="Idefics3 (SmolVLM v1)", role="generator"),
        Spec("smolvlm", _VLM, _VLM_OPTIONS, description="SmolVLM2", role="generator"),
    ),
)

#: Registered generator models (``ask --generator local --generator-model NAME``).
MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec("qwen2-vl-2b", "qwen2-vl", "Qwen/Qwen2-VL-2B-Instruct", None, notes="2.2B params; slow on CPU, GPU advised"),
        ModelSpec("qwen2.5-vl-3b", "qwen2.5-vl", "Qwen/Qwen2.5-VL-3B-Instruct", None, notes="3.8B params; GPU advised"),
        ModelSpec("smolvlm-256m", "idefics3", "HuggingFaceTB/SmolVLM-256M-Instruct", None,
                  notes="256M params (Idefics3); CPU-usable"),
        ModelSpec("smolvlm2-256m", "smolvlm", "HuggingFaceTB/SmolVLM2-256M-Video-Instruct", None,
                  notes="256M params (SmolVLM2); CPU-usable; processor needs num2words"),
    )
}

#: ``config.json`` ``architectures`` entry -> family.
ARCHITECTURES: dict[str, str] = {
    "Qwen2VLForConditionalGeneration": "qwen2-vl",
    "Qwen2_5_VLForConditionalGeneration": "qwen2.5-vl",
    "Idefics3ForConditionalGeneration": "idefics3",
    "SmolVLMForConditionalGeneration": "smolvlm",
}

#: ``config.json`` ``model_type`` -> family (used when no architecture is recognised).
MODEL_TYPES: dict[str, str] = {
    "qwen2_vl": "qwen2-vl",
    "qwen2_5_vl": "qwen2.5-vl",
    "idefics3": "idefics3",
    "smolvlm": "smolvlm",
}


def build_generator(name: str, **options: Any) -> Generator:
    """Construct (cheaply, nothing loaded) the generator registered as ``name``.

    ``options`` are the loader's arguments (``model=``, ``base_url=``...). Unknown names,
    missing required options and options the generator does not take raise
    :class:`rag.errors.ConfigError`.
    """
    generator: Generator = GENERATORS.build(name, **options)
    return generator


def find(name: str) -> ModelSpec | None:
    """The generator model registered under ``name`` (short name or hub id), else ``None``."""
    return find_model(MODELS, name)


def list_models() -> list[dict[str, Any]]:
    """This catalogue's ``mmrag models`` rows."""
    return model_rows(MODELS, FAMILIES, (ARCHITECTURES,))

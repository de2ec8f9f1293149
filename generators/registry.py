"""Generators by name: a small explicit table, never guessed from strings.

=============  ==========================================  =========================
name           class                                       required options
=============  ==========================================  =========================
``extractive`` :class:`generators.extractive.ExtractiveGenerator`  (none)
``local``      :class:`generators.local_vlm.LocalVLMGenerator`     ``model`` (folder or hub id)
``openai``     :class:`generators.openai_api.OpenAIChatGenerator`  ``model``, ``base_url``
=============  ==========================================  =========================

Classes are ``"module:Class"`` strings imported only when built, so importing this module
imports neither torch nor httpx. Building does not load weights or open connections.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.errors import ConfigError

if TYPE_CHECKING:
    from rag.config import AskConfig

__all__ = ["GeneratorSpec", "GENERATORS", "build_generator", "generator_from_config"]


@dataclass(frozen=True)
class GeneratorSpec:
    """A registered generator: its loader and the options it cannot do without."""

    name: str
    loader: str
    required: tuple[str, ...] = ()
    description: str = ""


GENERATORS: dict[str, GeneratorSpec] = {
    s.name: s
    for s in (
        GeneratorSpec("extractive", "generators.extractive:ExtractiveGenerator", (), "best evidence sentences, no model"),
        GeneratorSpec("local", "generators.local_vlm:LocalVLMGenerator", ("model",), "local transformers VLM"),
        GeneratorSpec(
            "openai", "generators.openai_api:OpenAIChatGenerator", ("model", "base_url"), "OpenAI-compatible endpoint"
        ),
    )
}


def build_generator(name: str, **options: Any) -> Any:
    """Construct (cheaply, nothing loaded) the generator registered as ``name``.

    ``options`` are the constructor's arguments (``model=``, ``base_url=``...). Unknown names,
    missing required options and unknown options raise :class:`rag.errors.ConfigError`.
    """
    spec = GENERATORS.get(name)
    if spec is None:
        raise ConfigError(f"unknown generator {name!r}; known generators: {', '.join(GENERATORS)}")
    missing = [key for key in spec.required if options.get(key) is None]
    if missing:
        raise ConfigError(f"generator {name!r} needs {', '.join(f'{k}=' for k in missing)} (required: {spec.required})")
    module_name, _, class_name = spec.loader.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    positional = [options.pop("model")] if "model" in spec.required else []
    try:
        return cls(*positional, **options)
    except TypeError as exc:
        raise ConfigError(f"generator {name!r}: bad options {sorted(options)}: {exc}") from exc


def generator_from_config(ask: AskConfig, **options: Any) -> Any:
    """Build the generator an :class:`rag.config.AskConfig` names.

    ``local`` takes its model from ``generator_model``; ``openai`` takes ``api_model`` and
    ``api_base``. ``options`` are passed on (and win over the config).
    """
    from_config: dict[str, Any] = {}
    if ask.generator == "local":
        from_config["model"] = ask.generator_model
    elif ask.generator == "openai":
        from_config["model"] = ask.api_model
        from_config["base_url"] = ask.api_base
    return build_generator(ask.generator, **{**from_config, **options})

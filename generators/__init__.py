"""Answer generators: extractive (no model), local VLM (transformers), OpenAI-compatible API.

Every generator turns a question and page-level :class:`rag.types.Hit` records into a
:class:`rag.types.Answer` whose ``[n]`` markers are resolved to citations (document, page,
box). Importing this package imports neither torch nor httpx; model-backed generators are
built by name with :func:`build_generator` and load their weights in ``load()``.
"""

from __future__ import annotations

from typing import Any

from generators.base import (
    NO_ANSWER,
    SYSTEM_PROMPT,
    ContextItem,
    Generator,
    StreamingGenerator,
    build_context,
    build_prompt,
)
from generators.highlights import write_highlights
from generators.markers import CitationResult, parse_markers, resolve_citations
from generators.extractive import ExtractiveGenerator
from generators.registry import GENERATORS, build_generator

__all__ = [
    "Generator",
    "StreamingGenerator",
    "ContextItem",
    "SYSTEM_PROMPT",
    "NO_ANSWER",
    "build_context",
    "build_prompt",
    "CitationResult",
    "parse_markers",
    "resolve_citations",
    "write_highlights",
    "ExtractiveGenerator",
    "LocalVLMGenerator",
    "OpenAIChatGenerator",
    "GENERATORS",
    "build_generator",
]

_LAZY = {
    "LocalVLMGenerator": "generators.local_vlm",
    "OpenAIChatGenerator": "generators.openai_api",
}


def __getattr__(name: str) -> Any:
    # The model-backed classes live in modules that are cheap to import too, but keep
    # ``import generators`` minimal: they load on first attribute access.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'generators' has no attribute {name!r}")

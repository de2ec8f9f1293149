"""The public API, pinned: what each package exports, and that importing it stays light.

Changing an ``__all__`` is an API change: update the list here on purpose, in the same commit.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

#: the exact ``__all__`` of each public package
EXPORTS: dict[str, list[str]] = {
    "rag": [
        "KnowledgeBase", "SearchResult", "Config", "IngestConfig", "ModelsConfig", "StoreConfig", "AskConfig",
        "load_config", "MmragError", "Answer", "BBox", "Citation", "DocumentInfo", "Figure", "FileReport", "Hit",
        "Page", "PageContent", "Route", "errors", "types", "__version__",
    ],
    "ingest": [
        "FileIdentity", "identify_file", "DocumentReader", "open_document", "scan_paths", "PathScan", "iter_files", "inspect_file", "inspect_batch", "inspect_json",
        "inspect_summary", "summarize_reports", "make_samples", "assess_text", "TextQuality", "SUPPORTED_SUFFIXES",
    ],
    "generators": [
        "Generator", "StreamingGenerator", "ContextItem", "SYSTEM_PROMPT", "NO_ANSWER", "build_context",
        "build_prompt", "CitationResult", "parse_markers", "resolve_citations", "write_highlights",
        "ExtractiveGenerator", "LocalVLMGenerator", "OpenAIChatGenerator", "GENERATORS", "build_generator",
    ],
    "retrievers": ["embedders", "rerank", "router", "store"],
    "retrievers.rerank": [
        "Reranker", "NoReranker", "LateInteractionReranker", "CrossEncoderReranker", "VLMReranker", "VLM_PROMPT",
        "VLM_PRESETS", "SCORES", "RERANKERS", "build_reranker",
    ],
    "retrievers.router": [
        "Router", "Completer", "Cue", "CUES", "PROFILES", "DEFAULT_DESCRIPTIONS", "LLM_PROMPT", "RulesRouter",
        "EmbeddingRouter", "LLMRouter", "HybridRouter", "AllRouter", "ROUTERS", "SHARED_DEPS", "build_router",
    ],
    "retrievers.store": ["EdgeStore", "QdrantServerStore", "open_store", "collection_name", "DEFAULT_RRF_K", "INDEXED_FIELDS"],
}

#: libraries that cost seconds (or a server) to import: none loads on a package import
HEAVY = ("torch", "transformers", "sentence_transformers", "qdrant_client", "qdrant_edge", "fastapi", "uvicorn")


def _loaded_after(code: str) -> set[str]:
    """Top-level names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = code + "\nimport json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} | set(sys.modules))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_all_is_pinned(package: str):
    assert list(importlib.import_module(package).__all__) == EXPORTS[package]


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_every_exported_name_can_be_imported(package: str):
    module = importlib.import_module(package)
    for name in module.__all__:
        if hasattr(module, name):
            continue
        # a package's __all__ may name its submodules without importing them
        importlib.import_module(f"{package}.{name}")


def test_import_rag_loads_no_model_store_or_server_library_and_not_the_facade():
    loaded = _loaded_after("import rag")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "rag.kb" not in loaded  # KnowledgeBase loads on first use


def test_importing_every_public_package_loads_no_model_store_or_server_library():
    loaded = _loaded_after("import " + ", ".join(sorted(EXPORTS)))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_import_retrievers_alone_imports_none_of_its_subpackages():
    loaded = _loaded_after("import retrievers")
    assert not {f"retrievers.{name}" for name in EXPORTS["retrievers"]} & loaded


def test_star_import_of_rag_gives_the_facade_without_torch():
    loaded = _loaded_after("from rag import *\nassert KnowledgeBase.__name__ == 'KnowledgeBase'")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))

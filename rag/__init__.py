"""mmrag: multimodal RAG over PDFs and images, cited down to the page and the box.

``import rag`` is light (no torch, no PDF engine): the facade and the heavy stages
load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag import errors, types
from rag.config import AskConfig, Config, IngestConfig, ModelsConfig, StoreConfig, load_config
from rag.errors import MmragError
from rag.types import Answer, BBox, Citation, DocumentInfo, Figure, FileReport, Hit, Page, PageContent, Route

if TYPE_CHECKING:
    from rag.kb import KnowledgeBase, SearchResult

__version__ = "0.1.0"

__all__ = [
    "KnowledgeBase",
    "SearchResult",
    "Config",
    "IngestConfig",
    "ModelsConfig",
    "StoreConfig",
    "AskConfig",
    "load_config",
    "MmragError",
    "Answer",
    "BBox",
    "Citation",
    "DocumentInfo",
    "Figure",
    "FileReport",
    "Hit",
    "Page",
    "PageContent",
    "Route",
    "errors",
    "types",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in ("KnowledgeBase", "SearchResult"):
        from rag import kb

        return getattr(kb, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")

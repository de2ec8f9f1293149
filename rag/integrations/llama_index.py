"""llama-index adapters: an mmrag knowledge base as a ``BaseRetriever`` and a query engine.

::

    from rag import KnowledgeBase
    from rag.integrations.llama_index import MmragQueryEngine, MmragRetriever
    from llama_index.core.query_engine import RetrieverQueryEngine

    kb = KnowledgeBase.open("kb")
    retriever = MmragRetriever(kb, top_k=5)                      # NodeWithScore: TextNode / ImageNode
    engine = RetrieverQueryEngine.from_args(retriever, llm=my_llm)  # your llama-index LLM
    engine = MmragQueryEngine(kb)                                  # or mmrag's own cited answers

Each hit (a page) becomes one node: a ``TextNode`` with the page's best evidence text, or an
``ImageNode`` pointing at the figure crop or page image when the evidence is visual. Metadata
carries ``file_name``, ``file_path``, ``doc_id``, ``page`` (physical, 1-based), ``page_label``,
``bbox`` (PDF points, origin top-left), ``corpus`` and ``image_path``; the box and paths are kept
out of the text an LLM or embedder sees.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from rag.lazy import require
from rag.types import Answer, Hit

require("llama_index.core", "llama", "rag.integrations.llama_index", package="llama-index-core")

from llama_index.core.base.base_query_engine import BaseQueryEngine  # noqa: E402 - after the install hint
from llama_index.core.base.base_retriever import BaseRetriever  # noqa: E402
from llama_index.core.base.response.schema import Response  # noqa: E402
from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode  # noqa: E402

__all__ = ["MmragRetriever", "MmragQueryEngine", "hit_to_node"]

_NODE_NAMESPACE = uuid.UUID("6f1d4c1e-9a53-4a43-9e0c-6d2b8f0f7a11")
#: Metadata that locates a node but means nothing to a language model or an embedder.
_HIDDEN = ["doc_id", "bbox", "image_path", "file_path", "corpus", "evidence_kind"]
_VISUAL = ("figure", "table", "page")


def _metadata(hit: Hit, kind: str, image: Any) -> dict[str, Any]:
    return {
        "file_name": hit.source,
        "file_path": str(hit.path) if hit.path else None,
        "doc_id": hit.doc_id,
        "page": hit.page,
        "page_label": hit.label or str(hit.page),
        "bbox": hit.bbox.as_list() if hit.bbox else None,
        "corpus": hit.corpus,
        "evidence_kind": kind,
        "image_path": str(image) if image else None,
    }


def hit_to_node(hit: Hit, *, max_chars: int = 2000) -> NodeWithScore:
    """One page hit as a llama-index node: text evidence -> ``TextNode``; a figure, table or
    page image as the best evidence -> ``ImageNode`` (with its text, caption or OCR, as text)."""
    best = hit.evidence[0] if hit.evidence else None
    kind = best.kind if best else "page"
    texts = [e.text for e in hit.evidence if e.text]
    text = "\n\n".join(dict.fromkeys(texts))[:max_chars]
    image = (best.image_path if best and best.image_path else None) or hit.image_path
    node_id = str(uuid.uuid5(_NODE_NAMESPACE, f"{hit.doc_id}:{hit.page}"))
    common = {
        "id_": node_id,
        "text": text,
        "metadata": _metadata(hit, kind, image),
        "excluded_llm_metadata_keys": list(_HIDDEN),
        "excluded_embed_metadata_keys": list(_HIDDEN),
    }
    if kind in _VISUAL and image is not None:
        node: TextNode = ImageNode(image_path=str(image), **common)
    else:
        node = TextNode(**common)
    return NodeWithScore(node=node, score=float(hit.score))


class MmragRetriever(BaseRetriever):
    """Page-level hits of an mmrag knowledge base as llama-index nodes, best first."""

    def __init__(
        self,
        kb: Any,
        *,
        top_k: int | None = None,
        documents: Sequence[str] | None = None,
        pages: tuple[int, int] | None = None,
        router: str | None = None,
        reranker: str | None = None,
        callback_manager: Any = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self.kb = kb
        self.top_k = top_k
        self.documents = documents
        self.pages = pages
        self.router = router
        self.reranker = reranker

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        result = self.kb.search(
            query_bundle.query_str, top_k=self.top_k, documents=self.documents, pages=self.pages,
            router=self.router, reranker=self.reranker,
        )
        return [hit_to_node(h) for h in result.hits]


class MmragQueryEngine(BaseQueryEngine):
    """Answers with mmrag's own generator (extractive by default, or the configured one):
    ``Response.response`` is the cited answer, ``source_nodes`` the hits, and
    ``metadata["citations"]`` maps each ``[n]`` marker to file, page and box."""

    def __init__(self, kb: Any, *, top_k: int | None = None, generator: str | None = None, callback_manager: Any = None) -> None:
        super().__init__(callback_manager=callback_manager)
        self.kb = kb
        self.top_k = top_k
        self.generator = generator

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}

    def _response(self, answer: Answer) -> Response:
        citations = [
            {"marker": c.marker, "file_name": c.source, "doc_id": c.doc_id, "page": c.page,
             "page_label": c.label or str(c.page), "bbox": c.bbox.as_list() if c.bbox else None}
            for c in answer.citations
        ]
        route = answer.route
        return Response(
            response=answer.text,
            source_nodes=[hit_to_node(h) for h in answer.hits],
            metadata={"citations": citations, "route": route.reason if route else None, "generator": answer.generator},
        )

    def _query(self, query_bundle: QueryBundle) -> Response:
        return self._response(self.kb.ask(query_bundle.query_str, top_k=self.top_k, generator=self.generator))

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        import asyncio

        return await asyncio.to_thread(self._query, query_bundle)

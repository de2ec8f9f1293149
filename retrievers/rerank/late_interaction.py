"""Late-interaction reranking: MaxSim between the query and each page's multivector."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.errors import ConfigError, EmbedderMismatchError, QueryError
from rag.types import Hit
from retrievers.base import LateInteractionEmbedder
from retrievers.rerank._base import check_top_k, page_image, ranked
from retrievers.scoring import maxsim_batch

__all__ = ["LateInteractionReranker"]

logger = logging.getLogger(__name__)


class LateInteractionReranker:
    """Rescore hits by ColBERT-style MaxSim with a ColPali-family embedder.

    ``multivectors(hit)`` may return the page multivector stored at indexing time (or
    ``None``); hits without one are encoded fresh from their page image in one batch.
    """

    name = "late-interaction"

    def __init__(
        self,
        embedder: LateInteractionEmbedder,
        multivectors: Callable[[Hit], np.ndarray | None] | None = None,
    ) -> None:
        if not callable(getattr(embedder, "embed_queries", None)) or not callable(
            getattr(embedder, "embed_images", None)
        ):
            raise ConfigError(
                f"LateInteractionReranker needs a late-interaction embedder (embed_queries/embed_images), "
                f"got {type(embedder).__name__}"
            )
        self.embedder = embedder
        self.multivectors = multivectors

    def load(self) -> None:
        """Load the embedder (idempotent)."""
        self.embedder.load()

    def page_vectors(self, hits: Sequence[Hit]) -> list[np.ndarray]:
        """Each hit's page multivector: the stored one, else freshly encoded from its page image."""
        vectors: list[np.ndarray | None] = [
            None if self.multivectors is None else self.multivectors(hit) for hit in hits
        ]
        missing = [i for i, v in enumerate(vectors) if v is None]
        if missing:
            paths: list[Path] = []
            for i in missing:
                path = page_image(hits[i])
                if path is None:
                    h = hits[i]
                    raise QueryError(
                        f"cannot rerank hit {h.source!r} page {h.page}: no stored multivector and no page image; "
                        "index page images (ingest renders them) or pass multivectors="
                    )
                paths.append(path)
            for i, vec in zip(missing, self.embedder.embed_images(paths)):
                vectors[i] = vec
        return [np.asarray(v, dtype=np.float32) for v in vectors]  # type: ignore[arg-type]

    def scores(self, question: str, hits: Sequence[Hit]) -> np.ndarray:
        """MaxSim of the question against each hit's page, float32 ``(len(hits),)``."""
        if not hits:
            return np.zeros(0, dtype=np.float32)
        self.load()
        query = np.asarray(self.embedder.embed_queries([question])[0], dtype=np.float32)
        pages = self.page_vectors(hits)
        for hit, vec in zip(hits, pages):
            if vec.ndim != 2 or vec.shape[1] != query.shape[1]:
                raise EmbedderMismatchError(
                    f"page multivector of {hit.source!r} page {hit.page} has shape {vec.shape} but "
                    f"{getattr(self.embedder, 'name', 'the embedder')} makes {query.shape[1]}-d query vectors; "
                    "rerank with the embedder the knowledge base was indexed with"
                )
        return maxsim_batch(query, pages)

    def rerank(self, question: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        check_top_k(top_k)
        started = time.perf_counter()
        scores = self.scores(question, hits)
        out = ranked(hits, scores.tolist(), top_k)
        logger.info("late-interaction rerank of %d hits in %.2fs", len(hits), time.perf_counter() - started)
        return out

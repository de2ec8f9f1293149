"""Embedding routing: the question against example phrasings or centroids per corpus."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.types import CORPORA, Route
from rag.vectors import l2_normalize
from retrievers.base import TextEmbedder
from retrievers.router._base import check_top_k, describe_weights, make_route

__all__ = ["DEFAULT_DESCRIPTIONS", "DEFAULT_EMBEDDER", "EmbeddingRouter", "embedding_router"]

#: The text model an embedding router uses when none is given (the bundled one: no download).
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


#: Example phrasings per corpus; the question is compared with each.
DEFAULT_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "text": (
        "What does the document say about this topic?",
        "Explain the procedure described in the manual.",
        "Why does this happen according to the text?",
        "What is the definition of this term?",
        "Summarize the paragraph about the method.",
    ),
    "figures": (
        "What does the chart show?",
        "Which bar in the plot is the highest?",
        "What value is in the table for this row and column?",
        "Describe the diagram in the figure.",
        "What trend does the graph's curve show over time?",
        "What is the number listed in the table?",
    ),
    "pages": (
        "What is shown on the page with the screenshot?",
        "Find the page with the photo of the device.",
        "What does the scanned page contain?",
        "Which page has the illustration and its caption?",
        "Look at the layout of the slide.",
    ),
}


class EmbeddingRouter:
    """Softmax over the question's cosine similarity to each corpus.

    A corpus scores the best cosine between the question and its example phrasings
    (``descriptions``), or its centroid vectors (:meth:`from_centroids`). ``temperature``
    sharpens (small) or flattens (large) the softmax; every corpus keeps at least
    ``floor`` of the weight (``floor=0`` is a plain softmax).
    """

    name = "embedding"

    def __init__(
        self,
        embedder: TextEmbedder,
        descriptions: Mapping[str, Sequence[str]] | None = None,
        top_k: int = 10,
        temperature: float = 0.1,
        floor: float = 0.05,
    ) -> None:
        self.top_k = check_top_k(top_k)
        if not temperature > 0:
            raise ConfigError(f"EmbeddingRouter temperature must be > 0, got {temperature!r}")
        descs = {c: tuple(v) for c, v in (DEFAULT_DESCRIPTIONS if descriptions is None else descriptions).items()}
        _check_corpora(descs, "descriptions")
        empty = sorted(c for c, v in descs.items() if not v or not all(isinstance(s, str) and s.strip() for s in v))
        if empty:
            raise ConfigError(f"EmbeddingRouter descriptions for {empty} must be non-empty lists of non-empty strings")
        self.embedder = embedder
        if not 0 <= floor < 1 / len(descs):
            raise ConfigError(f"EmbeddingRouter floor must be within [0, 1/{len(descs)}), got {floor!r}")
        self.temperature = float(temperature)
        self.floor = float(floor)
        self.descriptions = descs
        #: corpus -> what each anchor row is, for the reason
        self._labels = {c: tuple(f"closest example {d!r}" for d in v) for c, v in descs.items()}
        self._anchors: dict[str, np.ndarray] | None = None
        self._loaded = False

    @classmethod
    def from_centroids(
        cls,
        embedder: TextEmbedder,
        centroids: Mapping[str, np.ndarray],
        top_k: int = 10,
        temperature: float = 0.1,
        floor: float = 0.05,
    ) -> EmbeddingRouter:
        """Route by a knowledge base's own centroids: ``{corpus: (dim,) or (k, dim)}``."""
        _check_corpora(centroids, "centroids")
        router = cls(embedder, {c: ("<centroid>",) for c in centroids}, top_k=top_k, temperature=temperature,
                     floor=floor)
        anchors = {}
        for corpus, vec in centroids.items():
            arr = np.atleast_2d(np.asarray(vec, dtype=np.float32))
            if arr.ndim != 2 or arr.shape[0] == 0 or not np.all(np.isfinite(arr)):
                raise ConfigError(
                    f"centroid of {corpus!r} must be a finite (dim,) or (k, dim) array, got shape {arr.shape}"
                )
            anchors[corpus] = l2_normalize(arr)
        dims = {a.shape[1] for a in anchors.values()}
        if len(dims) != 1:
            raise ConfigError(f"centroids have different dimensions: { {c: a.shape[1] for c, a in anchors.items()} }")
        router._anchors = anchors
        router._labels = {c: tuple(f"its centroid {i + 1}/{len(a)}" for i in range(len(a))) for c, a in anchors.items()}
        return router

    def load(self) -> None:
        """Load the embedder and embed the descriptions; a second call does nothing."""
        if self._loaded:
            return
        self.embedder.load()
        if self._anchors is None:
            self._anchors = {
                c: l2_normalize(self.embedder.embed_documents(list(v))) for c, v in self.descriptions.items()
            }
        dim = next(iter(self._anchors.values())).shape[1]
        if dim != self.embedder.dimension:
            raise ConfigError(
                f"EmbeddingRouter anchors have dimension {dim} but embedder {self.embedder.name!r} "
                f"makes {self.embedder.dimension}-d vectors; build the centroids with the same embedder"
            )
        self._loaded = True

    def scores(self, question: str) -> dict[str, tuple[float, int]]:
        """Corpus -> (best cosine, index of the closest description/centroid)."""
        self.load()
        assert self._anchors is not None
        q = l2_normalize(np.atleast_2d(self.embedder.embed_query(question)))[0]
        out = {}
        for corpus, anchors in self._anchors.items():
            sims = anchors @ q
            best = int(np.argmax(sims))
            out[corpus] = (float(sims[best]), best)
        return out

    def route(self, question: str) -> Route:
        scored = self.scores(question)
        names = list(scored)
        sims = np.array([scored[c][0] for c in names], dtype=np.float64)
        z = (sims - sims.max()) / self.temperature
        probs = self.floor + (1 - self.floor * len(names)) * np.exp(z) / np.exp(z).sum()
        weights = dict(zip(names, probs.tolist()))
        top = max(names, key=lambda c: weights[c])
        near = self._labels[top][scored[top][1]]
        cos = ", ".join(f"{c} {scored[c][0]:.2f}" for c in names)
        reason = f"embedding similarity (cosine {cos}); nearest corpus {top} via {near} -> {describe_weights(weights)}"
        return make_route(weights, self.top_k, reason, self.name)


def embedding_router(
    *,
    embedder: TextEmbedder | None = None,
    descriptions: Mapping[str, Sequence[str]] | None = None,
    centroids: Mapping[str, np.ndarray] | None = None,
    top_k: int = 10,
    temperature: float = 0.1,
    floor: float = 0.05,
) -> EmbeddingRouter:
    """The ``embedding`` router kind: by ``centroids`` when given (``descriptions`` then unused),
    else by ``descriptions``; ``embedder`` defaults to :data:`DEFAULT_EMBEDDER`."""
    if embedder is None:
        from retrievers import registry  # the model catalogue; imported on use only

        embedder = registry.build(DEFAULT_EMBEDDER, "text")
    if centroids is not None:
        return EmbeddingRouter.from_centroids(embedder, centroids, top_k=top_k, temperature=temperature, floor=floor)
    return EmbeddingRouter(embedder, descriptions, top_k=top_k, temperature=temperature, floor=floor)


def _check_corpora(mapping: Mapping[str, Any], what: str) -> None:
    unknown = sorted(set(mapping) - set(CORPORA))
    if unknown or not mapping:
        raise ConfigError(f"{what} must name corpora among {list(CORPORA)}; got {sorted(mapping)}")

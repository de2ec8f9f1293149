"""Matryoshka-style truncatable vectors (jina-embeddings-v4, nomic, OpenAI v3 style).

Models trained with a Matryoshka loss keep most of their quality in a prefix of the vector:
keep the first ``dimension`` values and L2-normalise again. :func:`truncate` is the pure
function; :class:`Truncated` wraps any single-vector embedder (text, image, image-only, VLM)
so every vector it returns is truncated, its ``dimension`` is the truncated size, and its
provenance records both sizes (a knowledge base built at 256 refuses a query embedder at 512:
``dimension`` is an identity key of the manifest).

``registry.build(name, role, dimension=256)`` wraps the embedder it builds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.vectors import l2_normalize

__all__ = ["truncate", "Truncated", "TRUNCATED_METHODS"]

#: embedder methods whose output vectors are truncated (the ones the wrapped model has)
TRUNCATED_METHODS = ("embed_documents", "embed_query", "embed_texts", "embed_images", "embed_image_queries", "embed_pairs")


def truncate(vectors: Any, dimension: int) -> np.ndarray:
    """The first ``dimension`` values of each vector (last axis), L2-normalised, float32."""
    arr = np.asarray(vectors, dtype=np.float32)
    if dimension < 1:
        raise ConfigError(f"dimension must be >= 1, got {dimension}")
    if arr.shape[-1] < dimension:
        raise ConfigError(f"cannot truncate {arr.shape[-1]}-d vectors to {dimension} dimensions")
    return l2_normalize(arr[..., :dimension])


class Truncated:
    """A single-vector embedder whose vectors are cut to ``dimension`` and re-normalised.

    ``Truncated(model, n)`` is an instance of a subclass that defines exactly the embedding
    methods the wrapped model has, as real methods of the class (so it satisfies the same
    role protocols, also where ``isinstance`` looks only at the class, as Python 3.12's does);
    every other attribute is the wrapped model's.
    """

    def __new__(cls, inner: Any, dimension: int) -> Truncated:
        if cls is Truncated:
            cls = _truncating_class(tuple(m for m in TRUNCATED_METHODS if callable(getattr(inner, m, None))))
        return super().__new__(cls)

    def __init__(self, inner: Any, dimension: int) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise ConfigError(f"dimension must be a positive integer, got {dimension!r}")
        self.inner = inner
        self._dimension = dimension

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def full_dimension(self) -> int:
        return int(self.inner.dimension)

    def load(self) -> None:
        self.inner.load()
        full = self.full_dimension
        if self._dimension > full:
            raise ConfigError(f"{self.name}: dimension={self._dimension} is larger than the model's {full}")

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":  # not set yet (e.g. during unpickling)
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def provenance(self) -> dict[str, Any]:
        self.load()
        return {**self.inner.provenance(), "dimension": self._dimension, "full_dimension": self.full_dimension,
                "truncation": "matryoshka-prefix"}

    def __repr__(self) -> str:
        return f"Truncated({self.inner!r}, dimension={self._dimension})"


def _truncating(method: str) -> Callable[..., np.ndarray]:
    """``Truncated``'s version of the wrapped model's ``method``."""

    def truncated(self: Truncated, *args: Any, **kwargs: Any) -> np.ndarray:
        self.load()
        return truncate(getattr(self.inner, method)(*args, **kwargs), self._dimension)

    truncated.__name__ = truncated.__qualname__ = method
    truncated.__doc__ = f"The wrapped model's ``{method}``, truncated to ``dimension`` and re-normalised."
    return truncated


@functools.lru_cache(maxsize=None)
def _truncating_class(methods: tuple[str, ...]) -> type[Truncated]:
    """The subclass of :class:`Truncated` with exactly ``methods`` (one class per set of methods)."""
    return type("Truncated", (Truncated,), {m: _truncating(m) for m in methods})

"""Roles and records of the retrieval side: embedders and the vector store.

Roles are small protocols; implementations inherit nothing. Vectors are numpy
arrays: a dense vector is 1-D float32, a multivector is 2-D (tokens x dim), a
sparse vector is a :class:`SparseVector`. numpy is the only import here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "SparseVector",
    "VectorSpec",
    "CollectionSpec",
    "Point",
    "ScoredPoint",
    "Filter",
    "VectorQuery",
    "WithPayload",
    "VectorStore",
    "TextEmbedder",
    "SparseEncoder",
    "ImageOnlyEmbedder",
    "ImageEmbedder",
    "MultimodalEmbedder",
    "AnyImageEmbedder",
    "LateInteractionEmbedder",
]

@dataclass(frozen=True)
class SparseVector:
    """Term weights: parallel tuples of term ids and weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError("SparseVector indices and values differ in length")


@dataclass(frozen=True)
class VectorSpec:
    """One named vector of a collection.

    ``kind``: ``dense`` (one vector), ``sparse`` (term weights; ``idf`` asks the store to
    apply inverse document frequency at query time), ``multi`` (late interaction, MaxSim;
    stored for rescoring only, no HNSW graph). ``datatype`` ``float16`` halves the disk of
    multivectors; ``turbo8`` (``turbo4``) stores 8-bit (4-bit) TurboQuant codes instead of
    floats, a quarter (an eighth) of float32, while the query stays float (scores are close
    estimates of the float ones); ``quantize`` adds int8 scalar quantization where the backend
    supports it.
    """

    name: str
    kind: Literal["dense", "sparse", "multi"]
    size: int = 0
    distance: Literal["cosine", "dot"] = "cosine"
    idf: bool = False
    datatype: Literal["float32", "float16", "turbo8", "turbo4"] = "float32"
    quantize: bool = False


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    vectors: tuple[VectorSpec, ...]

    def vector(self, name: str) -> VectorSpec:
        for spec in self.vectors:
            if spec.name == name:
                return spec
        raise KeyError(f"collection {self.name!r} has no vector {name!r}; it has {[v.name for v in self.vectors]}")


@dataclass(frozen=True)
class Point:
    """A point to upsert. ``id`` is a UUID string (deterministic, see ``point_id``)."""

    id: str
    vectors: Mapping[str, Any]
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ScoredPoint:
    id: str
    score: float
    payload: Mapping[str, Any] = field(default_factory=dict)
    #: Filled by ``VectorStore.scroll(with_vectors=True)``: name -> ndarray or SparseVector.
    vectors: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Filter:
    """Restrict a search: documents, a physical page range (inclusive), payload equality."""

    doc_ids: tuple[str, ...] | None = None
    page_range: tuple[int, int] | None = None
    equals: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VectorQuery:
    """Search one named vector with a query of the matching kind."""

    using: str
    vector: Any
    limit: int = 10


#: Which payload a read returns: ``True`` all of it, ``False`` none (``{}``: ids and scores
#: only), or a sequence of keys (only those; a key a point lacks is absent).
WithPayload = bool | Sequence[str]


class VectorStore(Protocol):
    """The seam between mmrag and Qdrant (embedded edge, or a server through qdrant-client).

    Reads return points best first. Turning a payload into Python costs about as much as the
    search itself, so a caller that only ranks asks for ``with_payload=False`` and fetches
    the payloads of the points it keeps with :meth:`retrieve`.
    """

    def ensure_collection(self, spec: CollectionSpec) -> None: ...

    def upsert(self, collection: str, points: Sequence[Point]) -> None: ...

    def delete(self, collection: str, flt: Filter) -> None: ...

    def flush(self) -> None:
        """Make the writes so far durable (on disk, past a crash of the machine). The indexer
        calls it before it marks a document complete, not after every batch."""
        ...

    def set_payload(self, collection: str, flt: Filter, payload: Mapping[str, Any]) -> None:
        """Set these top-level payload keys (their whole values) on every point ``flt`` matches;
        the vectors and the other keys stay as they are."""
        ...

    def count(self, collection: str, flt: Filter | None = None) -> int: ...

    def search(
        self, collection: str, query: VectorQuery, flt: Filter | None = None, with_payload: WithPayload = True
    ) -> list[ScoredPoint]: ...

    def search_many(
        self, collection: str, queries: Sequence[VectorQuery], flt: Filter | None = None, with_payload: WithPayload = True
    ) -> list[list[ScoredPoint]]:
        """One result list per query, in order, as ``search`` would give each; one request."""
        ...

    def fused(
        self,
        collection: str,
        queries: Sequence[VectorQuery],
        limit: int,
        flt: Filter | None = None,
        with_payload: WithPayload = True,
    ) -> list[ScoredPoint]: ...

    def rescored(
        self,
        collection: str,
        prefetch: VectorQuery,
        final: VectorQuery,
        limit: int,
        flt: Filter | None = None,
        with_payload: WithPayload = True,
    ) -> list[ScoredPoint]: ...

    def retrieve(self, collection: str, ids: Sequence[str], with_payload: WithPayload = True) -> list[ScoredPoint]:
        """The points with these ids (score 0.0), in the order of ``ids``; ids not stored are left out."""
        ...

    def scroll(self, collection: str, flt: Filter | None = None, with_vectors: bool = False) -> Iterator[ScoredPoint]: ...

    def collections(self) -> list[str]: ...

    def close(self) -> None: ...


@runtime_checkable
class TextEmbedder(Protocol):
    """Dense text vectors, L2-normalised float32, shape (n, dimension)."""

    name: str

    @property
    def dimension(self) -> int: ...

    def load(self) -> None: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def provenance(self) -> dict[str, Any]: ...


@runtime_checkable
class SparseEncoder(Protocol):
    """Sparse term weights for Qdrant sparse vectors (IDF applied by the store)."""

    name: str

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]: ...

    def encode_query(self, text: str) -> SparseVector: ...

    def provenance(self) -> dict[str, Any]: ...


@runtime_checkable
class ImageOnlyEmbedder(Protocol):
    """One vector per image, no text side (DINOv2, ViT): figures are found by an example image only."""

    name: str

    @property
    def dimension(self) -> int: ...

    def load(self) -> None: ...

    def embed_images(self, paths: Sequence[Path]) -> np.ndarray: ...

    def provenance(self) -> dict[str, Any]: ...


@runtime_checkable
class ImageEmbedder(ImageOnlyEmbedder, Protocol):
    """One vector per image and per text in a shared space (CLIP, SigLIP): text questions
    search figure images too."""

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class MultimodalEmbedder(ImageEmbedder, Protocol):
    """One vector for a text, an image or a text+image pair (VLM embedders such as GME), with
    a query-side prompt for images."""

    def embed_image_queries(self, paths: Sequence[Path]) -> np.ndarray: ...

    def embed_pairs(self, texts: Sequence[str], paths: Sequence[Path]) -> np.ndarray: ...


#: What fills a knowledge base's ``image`` slot: the widest protocol a model meets decides what
#: it answers (image-only: query by example; dual encoder: text questions too; multimodal: text+image).
AnyImageEmbedder = ImageOnlyEmbedder | ImageEmbedder | MultimodalEmbedder


@runtime_checkable
class LateInteractionEmbedder(Protocol):
    """Multivectors for page images and queries (ColPali family), scored by MaxSim."""

    name: str

    @property
    def dimension(self) -> int: ...

    def load(self) -> None: ...

    def embed_images(self, paths: Sequence[Path]) -> list[np.ndarray]: ...

    def embed_queries(self, texts: Sequence[str]) -> list[np.ndarray]: ...

    def provenance(self) -> dict[str, Any]: ...

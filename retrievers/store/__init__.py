"""The vector store facade: one protocol (:class:`retrievers.base.VectorStore`), two backends.

- :class:`EdgeStore` — embedded and persistent (``qdrant-edge-py``), the default;
- :class:`QdrantServerStore` — a Qdrant server/cluster by URL, or qdrant-client's local mode.

Both import their Qdrant library lazily, on first use.
"""

from __future__ import annotations

from retrievers.store._common import DEFAULT_RRF_K, INDEXED_FIELDS, collection_name
from retrievers.store.edge import EdgeStore
from retrievers.store.factory import open_store
from retrievers.store.qdrant import QdrantServerStore

__all__ = ["EdgeStore", "QdrantServerStore", "open_store", "collection_name", "DEFAULT_RRF_K", "INDEXED_FIELDS"]

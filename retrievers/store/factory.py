"""Build the configured store: ``edge`` in the knowledge-base folder, or ``qdrant`` by URL/local mode."""

from __future__ import annotations

import os
from pathlib import Path

from rag.config import StoreConfig
from rag.errors import ConfigError
from retrievers.store.edge import EdgeStore
from retrievers.store.qdrant import QdrantServerStore

__all__ = ["open_store"]


def open_store(config: StoreConfig, kb_path: str | Path) -> EdgeStore | QdrantServerStore:
    """The store a :class:`~rag.config.StoreConfig` asks for. Cheap: nothing opens until first use.

    ``edge`` -> :class:`EdgeStore` at ``kb_path / "store"``; ``qdrant`` -> :class:`QdrantServerStore`
    from ``url``/``api_key`` (server; the key defaults to ``$QDRANT_API_KEY`` and is never written
    to the manifest) or ``location``/``path`` (local mode; a relative ``path`` is
    taken relative to ``kb_path``).
    """
    if config.backend == "edge":
        # flushed once per document by the indexer (before it is marked complete), not per batch
        return EdgeStore(Path(kb_path) / "store", flush_each_batch=False)
    if config.backend == "qdrant":
        if config.url is None and config.location is None and config.path is None:
            raise ConfigError(
                "store.backend = 'qdrant' needs store.url (a server), store.location = ':memory:' or store.path"
            )
        path = config.path
        if path is not None and not Path(path).is_absolute():
            path = str(Path(kb_path) / path)
        return QdrantServerStore(
            url=config.url,
            api_key=config.api_key if config.api_key is not None else os.environ.get("QDRANT_API_KEY"),
            location=config.location,
            path=path,
            prefix=config.collection_prefix,
            shard_number=config.shard_number,
            replication_factor=config.replication_factor,
            timeout=config.timeout_s,
            tenant=config.tenant,
            shard_by_tenant=config.sharding == "tenant",
            write_consistency_factor=config.write_consistency_factor,
        )
    raise ConfigError(f"store.backend must be edge or qdrant, got {config.backend!r}")


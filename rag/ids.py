"""Deterministic identities: documents by content hash, points by what they hold."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

__all__ = ["sha256_file", "point_id", "NAMESPACE"]

NAMESPACE = uuid.UUID("6f1c3a52-4d0e-4b8e-9a57-0b6c2f4e9d11")


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def point_id(doc_id: str, page: int, kind: str, index: int = 0) -> str:
    """A UUID string fixed by (document, page, kind, index): re-ingesting overwrites, never duplicates."""
    return str(uuid.uuid5(NAMESPACE, f"{doc_id}:{page}:{kind}:{index}"))

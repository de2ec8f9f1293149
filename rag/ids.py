"""Deterministic identities: documents by content hash (and path), points by what they hold.

A document is a path with its content. Its id is the sha256 of its bytes, unless another
path already holds a document with those bytes (a file updated to another file's bytes):
then it is :func:`document_id`'s hash of the bytes' hash and the path, so the two documents
have their own points and image folders and deleting one leaves the other. Point ids derive
from the document id (:func:`point_id`)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["sha256_file", "sha256_stream", "document_id", "point_id", "NAMESPACE"]

NAMESPACE = uuid.UUID("6f1c3a52-4d0e-4b8e-9a57-0b6c2f4e9d11")


def sha256_stream(fh: BinaryIO, first: bytes = b"", chunk_size: int = 1 << 20) -> tuple[str, int]:
    """Hex sha256 and size in bytes of ``first`` followed by the rest of ``fh``, read in chunks
    (constant memory). ``first`` lets a caller that has read the head (to sniff the format)
    hash the file in the same read."""
    digest = hashlib.sha256()
    size = 0
    block = first
    while True:
        digest.update(block)
        size += len(block)
        block = fh.read(chunk_size)
        if not block:
            return digest.hexdigest(), size


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes: a document's id."""
    with open(path, "rb") as fh:
        return sha256_stream(fh, chunk_size=chunk_size)[0]


def point_id(doc_id: str, page: int, kind: str, index: int = 0) -> str:
    """A UUID string fixed by (document, page, kind, index): re-ingesting overwrites, never duplicates."""
    return str(uuid.uuid5(NAMESPACE, f"{doc_id}:{page}:{kind}:{index}"))


def document_id(sha256: str, path: str, taken: Callable[[str], bool]) -> str:
    """The id of a new document of the bytes hashed ``sha256`` at ``path``: ``sha256`` itself,
    or, when ``taken(sha256)`` (another document holds it), the sha256 of ``sha256`` and
    ``path`` (the same for the same bytes at the same path)."""
    if not taken(sha256):
        return sha256
    return hashlib.sha256(f"{sha256}\0{path}".encode("utf-8", "surrogateescape")).hexdigest()

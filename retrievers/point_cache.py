"""The payloads of the points searches keep, read from the store once and kept between questions.

Score fusion ranks a corpus's points on ids and scores, then reads the payloads of the points it
keeps (:func:`retrievers.search.search_corpus`, about 40 per corpus), and fusion turns those of
the pages it returns into evidence (:func:`retrievers.search.fuse_pages`). Reading and decoding
them was about a quarter of a warm search's CPU, and questions to one knowledge base keep finding
the same points: the 30 public questions keep 3,600 points, 836 of them distinct.

:class:`PointCache` keeps each point's stored payload and its decoded record
(:func:`retrievers.payloads.decode`), at most :data:`POINTS` of them, the least recently used
dropped first. The knowledge base hands its searcher one cache per generation of its registry
(which every write, by any process, changes: ingest, delete, new metadata), so a point is never
read from a cache older than the write that changed it. Point ids are unique across a knowledge
base's corpora (:func:`rag.ids.point_id` hashes document, page, kind and index), so one cache
serves every corpus. Payloads handed out are shared between questions: read them, never change them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rag.lru import LRU
from retrievers.base import ScoredPoint, VectorStore
from retrievers.payloads import Payload, decode

__all__ = ["PointCache", "POINTS"]

#: The points a cache keeps. Payload and record take ~5 KB a point (most of it text; measured on
#: the public knowledge base, whose 1,632 points fit): about 10 MB when full.
POINTS = 2048


class PointCache:
    """Stored payloads and their decoded records by point id, the last ``size`` used."""

    def __init__(self, size: int = POINTS) -> None:
        self._items: LRU[str, tuple[Mapping[str, Any], Payload | None]] = LRU(size)

    def __len__(self) -> int:
        return len(self._items)

    def with_payloads(self, store: VectorStore, collection: str, points: Sequence[ScoredPoint]) -> list[ScoredPoint]:
        """The same points and scores with their stored payloads, those not kept read in one
        request; a point no longer stored (deleted since the search) is left out."""
        payloads: dict[str, Mapping[str, Any]] = {}
        missing = []
        for p in points:
            kept = self._items.get(p.id)
            if kept is None:
                missing.append(p.id)
            else:
                payloads[p.id] = kept[0]
        if missing:
            for found in store.retrieve(collection, missing):
                payloads[found.id] = found.payload
                self._items.put(found.id, (found.payload, None))
        return [ScoredPoint(p.id, p.score, payloads[p.id]) for p in points if p.id in payloads]

    def record(self, point: ScoredPoint) -> Payload:
        """The decoded record of ``point``'s payload (:func:`retrievers.payloads.decode`), decoded
        once while the cache keeps the point."""
        kept = self._items.peek(point.id)  # with_payloads has just refreshed it
        if kept is not None and kept[1] is not None and kept[0] is point.payload:
            return kept[1]
        record = decode(point.payload)
        if kept is not None and kept[0] is point.payload:
            self._items.put(point.id, (kept[0], record))
        return record

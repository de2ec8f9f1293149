"""Reads of stored page records: the ``pages`` corpus's page texts, sizes and navigation pages,
and the ``text`` corpus's chunks of one page, through the payload codec (:mod:`retrievers.payloads`).

The searcher reads them for quoted phrases, requery and navigation pointers
(:mod:`retrievers.pipeline`); the knowledge base for citations narrowed to a passage and for
page sizes (:mod:`rag.kb`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import get_args

from rag.ids import point_id
from rag.types import BBox, Hit, NavKind
from retrievers.base import CollectionSpec, Filter, ScoredPoint, VectorStore
from retrievers.payloads import PagePayload, decode
from retrievers.point_cache import PointCache

__all__ = ["navigation_pages", "page_passages", "page_payloads", "page_size", "page_texts"]


def page_payloads(store: VectorStore, spec: CollectionSpec, pages: Sequence[tuple[str, int]],
                  cache: PointCache | None = None) -> dict[tuple[str, int], PagePayload]:
    """The ``pages`` corpus records (page text with figure captions and OCR, size, image path) of
    the given (doc_id, page) pairs, read by point id in one request (``cache``: those it does not
    keep, :mod:`retrievers.point_cache`); pages not indexed are absent."""
    if not pages:
        return {}
    ids = [point_id(doc, page, PagePayload.kind) for doc, page in pages]
    if cache is None:
        records = [PagePayload.from_payload(p.payload) for p in store.retrieve(spec.name, ids)]
    else:
        found = cache.with_payloads(store, spec.name, [ScoredPoint(pid, 0.0) for pid in ids])
        records = [r if isinstance(r := cache.record(p), PagePayload) else PagePayload.from_payload(p.payload) for p in found]
    return {(r.doc_id, r.page): r for r in records}


def navigation_pages(store: VectorStore, specs: Mapping[str, CollectionSpec]) -> dict[tuple[str, int], PagePayload]:
    """The records of every navigation page with entries (contents, index, list of figures) of the
    ``pages`` corpus, by (doc_id, page): one filtered read of a few pages, for
    :func:`retrievers.pointers.follow_pointers` to consult per question without reading the store."""
    spec = specs.get("pages")
    if spec is None:
        return {}
    found = store.scroll(spec.name, Filter(equals={"navigation": list(get_args(NavKind))}))
    records = (PagePayload.from_payload(p.payload) for p in found)
    return {(r.doc_id, r.page): r for r in records if r.navigation is not None and r.entries}


def page_texts(store: VectorStore, specs: Mapping[str, CollectionSpec], hits: Sequence[Hit],
               cache: PointCache | None = None) -> dict[tuple[str, int], str]:
    """The indexed text of each hit's page (page text plus figure captions and OCR)."""
    spec = specs.get("pages")
    if spec is None:
        return {}
    return {key: record.text for key, record in page_payloads(store, spec, [(h.doc_id, h.page) for h in hits], cache).items()}


def page_size(store: VectorStore, specs: Mapping[str, CollectionSpec], doc_id: str, page: int) -> tuple[float, float] | None:
    """A page's width and height in PDF points (pixels for an image file), as indexed; ``None``
    when the knowledge base holds no such page."""
    spec = specs.get("pages")
    if spec is None:
        return None
    record = page_payloads(store, spec, [(doc_id, page)]).get((doc_id, page))
    if record is None or not record.page_width:
        return None
    return float(record.page_width), float(record.page_height or 0.0)


def page_passages(store: VectorStore, specs: Mapping[str, CollectionSpec], doc_id: str, page: int) -> list[tuple[str, BBox]]:
    """The text chunks of one page with their boxes (to narrow a whole-page citation to a passage)."""
    spec = specs.get("text")
    if spec is None:
        return []
    records = (decode(p.payload) for p in store.scroll(spec.name, Filter(doc_ids=(doc_id,), page_range=(page, page))))
    return [(r.text, r.bbox) for r in records if r.bbox is not None]

"""What a stored point carries besides its vectors: the one place payload keys are spelled.

Every point says where it is: ``doc_id``, ``source`` (file name), ``path``, ``page`` (physical,
1-based), ``label`` (printed page label), ``page_image``, ``page_width``, ``page_height``;
then, for a video or audio file only, ``start`` and ``end`` (seconds: a chunk's cues, else its
page's time span; other documents store neither key); then, by corpus:

- ``text``: :class:`ChunkPayload`: ``kind="chunk"``, ``index``, ``bbox``, ``text``, ``section``
  (section titles, outermost first; absent when unknown);
- ``figures``: :class:`FigurePayload`: ``kind`` (``figure`` or ``table``), ``index``, ``bbox``,
  ``caption``, ``text`` (caption and body, what it is searched by), ``image_path`` (its crop),
  ``source_kind`` (raster, vector, table, image), ``section``;
- ``pages``: :class:`PagePayload`: ``kind="page"``, ``index=0``, ``text`` (page text with figure
  captions and OCR), ``ocr``, ``image_path`` (the page image), ``bbox`` (the whole page); a
  navigation page (contents, index, list of figures) adds ``navigation`` (its kind) and
  ``nav_entries`` (``[text, physical page, printed reference]`` each), other pages store neither.

Two keys sit beside these on every point when they apply, added by :func:`scoped`: ``meta``
(:data:`META`), the document's user metadata (``{"team": "finance", "year": 2025}``, filtered on
as ``meta.<key>``, :func:`meta_key`, each key with a payload index of its value's type,
:func:`index_fields`); and ``tenant`` (:data:`TENANT`), the knowledge base's tenant when several
share one Qdrant server's collections (written, indexed and filtered by the server store).

``to_payload()`` gives the dict the store keeps, key for key and in the order knowledge bases
built before this module hold them; :func:`decode` reads any stored payload back. Reading is
lenient, as search always was: a missing key reads as its default (``kind`` as a chunk, a text
as ``""``, a box or an image as none), so points written by older versions still search.
Images are file paths (strings, as stored), never pixels. The store backends read ``doc_id``
and ``page`` on their own, for filters (:class:`retrievers.base.Filter`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rag.pdf_strings import readable_label
from rag.types import BBox, DocumentInfo, Figure, NavEntry, Page, TextChunk

__all__ = [
    "ChunkPayload", "FigurePayload", "PagePayload", "Payload", "decode", "page_key",
    "META", "TENANT", "meta_key", "scoped", "meta_payload", "index_fields",
]

#: The payload key of a document's user metadata (a flat object).
META = "meta"
#: The payload key of the tenant (the knowledge base's name on a shared server).
TENANT = "tenant"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Located:
    """The fields every point carries: which document, which page, and the page's image and size."""

    doc_id: str
    page: int
    source: str = ""
    path: str | None = None
    label: str | None = None
    page_image: str | None = None
    page_width: float | None = None
    page_height: float | None = None
    start: float | None = None
    end: float | None = None

    def _where(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "path": self.path,
            "page": self.page,
            "label": self.label,
            "page_image": self.page_image,
            "page_width": self.page_width,
            "page_height": self.page_height,
            **self._times(),
        }

    def _times(self) -> dict[str, float]:
        """``start``/``end`` of a video or audio point; nothing for other documents (their payloads
        keep the keys knowledge bases built before times hold)."""
        if self.start is None or self.end is None:
            return {}
        return {"start": round(self.start, 3), "end": round(self.end, 3)}

    @staticmethod
    def _read_where(p: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "doc_id": str(p["doc_id"]),
            "page": int(p["page"]),
            "source": str(p.get("source", "")),
            "path": p.get("path"),
            "label": readable_label(p.get("label")),  # knowledge bases from before labels were decoded
            "page_image": p.get("page_image"),
            "page_width": p.get("page_width"),
            "page_height": p.get("page_height"),
            "start": _seconds(p.get("start")),
            "end": _seconds(p.get("end")),
        }

    @staticmethod
    def _where_of(info: DocumentInfo, page: Page) -> dict[str, Any]:
        return {
            "doc_id": info.doc_id,
            "source": info.name,
            "path": str(info.path),
            "page": page.page,
            "label": page.label,
            "page_image": str(page.image_path) if page.image_path else None,
            "page_width": page.width,
            "page_height": page.height,
            "start": page.start,
            "end": page.end,
        }


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)


def _section(p: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(t) for t in p.get("section") or ())


def _section_key(section: tuple[str, ...]) -> dict[str, list[str]]:
    """``{"section": [...]}``, or nothing for an item outside any section (its payload keeps the
    bytes knowledge bases built before sections hold)."""
    return {"section": list(section)} if section else {}


def _bbox(p: Mapping[str, Any]) -> BBox | None:
    box = p.get("bbox")
    return BBox.from_sequence(box) if box else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkPayload(_Located):
    """A text chunk (``text`` corpus)."""

    kind: ClassVar[Literal["chunk"]] = "chunk"
    index: int = 0
    bbox: BBox | None = None
    text: str = ""
    section: tuple[str, ...] = ()

    @property
    def image(self) -> str | None:
        """The image that shows this evidence: the page's."""
        return self.page_image

    @classmethod
    def of(cls, info: DocumentInfo, page: Page, chunk: TextChunk) -> ChunkPayload:
        where = cls._where_of(info, page)
        if chunk.start is not None and chunk.end is not None:  # a transcript chunk's own cues
            where.update(start=chunk.start, end=chunk.end)
        return cls(**where, index=chunk.index, bbox=chunk.bbox, text=chunk.text, section=chunk.section)

    def to_payload(self) -> dict[str, Any]:
        return {
            **self._where(),
            "kind": self.kind,
            "index": self.index,
            "bbox": self.bbox.as_list() if self.bbox else None,
            "text": self.text,
            **_section_key(self.section),
        }

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> ChunkPayload:
        return cls(
            **cls._read_where(p), index=int(p.get("index") or 0), bbox=_bbox(p), text=str(p.get("text") or ""),
            section=_section(p),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FigurePayload(_Located):
    """A figure or table crop (``figures`` corpus); ``text`` is its caption then its body."""

    kind: Literal["figure", "table"] = "figure"
    index: int = 0
    bbox: BBox | None = None
    caption: str | None = None
    text: str = ""
    image_path: str | None = None
    source_kind: str | None = None
    section: tuple[str, ...] = ()

    @property
    def image(self) -> str | None:
        """The image that shows this evidence: its crop, else the page's."""
        return self.image_path or self.page_image

    @classmethod
    def of(cls, info: DocumentInfo, page: Page, fig: Figure, text: str) -> FigurePayload:
        return cls(
            **cls._where_of(info, page),
            kind=fig.kind,
            index=fig.index,
            bbox=fig.bbox,
            caption=fig.caption,
            text=text,
            image_path=str(fig.image_path) if fig.image_path else None,
            source_kind=fig.source,
            section=fig.section,
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            **self._where(),
            "kind": self.kind,
            "index": self.index,
            "bbox": self.bbox.as_list() if self.bbox else None,
            "caption": self.caption,
            "text": self.text,
            "image_path": self.image_path,
            "source_kind": self.source_kind,
            **_section_key(self.section),
        }

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> FigurePayload:
        return cls(
            **cls._read_where(p),
            kind="table" if p.get("kind") == "table" else "figure",
            index=int(p.get("index") or 0),
            bbox=_bbox(p),
            caption=p.get("caption"),
            text=str(p.get("text") or ""),
            image_path=p.get("image_path"),
            source_kind=p.get("source_kind"),
            section=_section(p),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PagePayload(_Located):
    """A whole page (``pages`` corpus); ``text`` is the page text plus figure captions and OCR."""

    kind: ClassVar[Literal["page"]] = "page"
    index: ClassVar[int] = 0
    #: a page may span several sections: it has none of its own
    section: ClassVar[tuple[str, ...]] = ()
    text: str = ""
    ocr: bool = False
    image_path: str | None = None
    bbox: BBox | None = None
    navigation: str | None = None
    entries: tuple[NavEntry, ...] = ()

    @property
    def image(self) -> str | None:
        """The image that shows this evidence: the page image."""
        return self.image_path or self.page_image

    @classmethod
    def of(cls, info: DocumentInfo, page: Page, text: str) -> PagePayload:
        return cls(
            **cls._where_of(info, page),
            text=text,
            ocr=page.ocr,
            image_path=str(page.image_path) if page.image_path else None,
            bbox=BBox(0.0, 0.0, round(page.width, 2), round(page.height, 2)),
            navigation=page.navigation,
            entries=page.entries,
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            **self._where(),
            "kind": self.kind,
            "index": self.index,
            "text": self.text,
            "ocr": self.ocr,
            "image_path": self.image_path,
            "bbox": self.bbox.as_list() if self.bbox else None,
            **self._navigation(),
        }

    def _navigation(self) -> dict[str, Any]:
        if self.navigation is None:
            return {}
        return {"navigation": self.navigation, "nav_entries": [[e.text, e.page, e.printed] for e in self.entries]}

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> PagePayload:
        nav = p.get("navigation")
        return cls(
            **cls._read_where(p),
            text=str(p.get("text") or ""),
            ocr=bool(p.get("ocr", False)),
            image_path=p.get("image_path"),
            bbox=_bbox(p),
            navigation=str(nav) if nav else None,
            entries=tuple(NavEntry(str(t), int(pg), str(pr)) for t, pg, pr in (p.get("nav_entries") or ()) if nav),
        )


Payload = ChunkPayload | FigurePayload | PagePayload

_BY_KIND: dict[str, type[ChunkPayload] | type[FigurePayload] | type[PagePayload]] = {
    "chunk": ChunkPayload,
    "figure": FigurePayload,
    "table": FigurePayload,
    "page": PagePayload,
}


def decode(payload: Mapping[str, Any]) -> Payload:
    """The typed record of a stored payload, by its ``kind`` (an unknown or missing kind reads
    as a chunk). Raises ``KeyError`` when it has no ``doc_id`` or ``page``: such a point was not
    written by mmrag."""
    return _BY_KIND.get(str(payload.get("kind", "chunk")), ChunkPayload).from_payload(payload)


def page_key(payload: Mapping[str, Any]) -> tuple[str, int]:
    """``(doc_id, page)`` of a stored payload, without decoding the rest (fusion groups many
    points by page and keeps the evidence of only a few)."""
    return str(payload["doc_id"]), int(payload["page"])


def meta_key(key: str) -> str:
    """The payload path a filter on the metadata key ``key`` uses: ``meta.team``."""
    return f"{META}.{key}"


def scoped(payload: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` with the document's metadata under :data:`META`; unchanged (key for key) when
    there is none, so knowledge bases without metadata keep the bytes they had."""
    return {**payload, META: dict(metadata)} if metadata else dict(payload)


def meta_payload(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The payload keys that replace a document's metadata on its points (an empty mapping clears it)."""
    return {META: dict(metadata)}


_INDEX_KIND = {bool: "bool", int: "integer", float: "float", str: "keyword"}


def index_fields(payload: Mapping[str, Any]) -> dict[str, str]:
    """The payload index each metadata value of ``payload`` needs: ``{"meta.year": "integer"}``
    (``keyword``, ``integer``, ``float`` or ``bool``, by the value's type)."""
    metadata = payload.get(META)
    if not isinstance(metadata, Mapping):
        return {}
    return {meta_key(k): _INDEX_KIND[type(v)] for k, v in metadata.items() if type(v) in _INDEX_KIND}

"""The vocabulary passed between stages: small, typed, frozen records.

Coordinates: a :class:`BBox` is in PDF points (1/72 inch) with the origin at the
top-left corner of the page, x to the right and y down (PyMuPDF's convention).
For an image document one point is one pixel.

Pages: ``page`` is always the physical 1-based page of the file. The label printed
on the page (roman numerals, chapter-relative numbers) is kept separately as
``label``.

Images travel as file paths, never as pixels or base64.

Times: a video's page is a frame kept at a scene change and an audio file's page is a stretch
of its transcript; their records carry ``start``/``end`` in seconds from the start of the
media (a page: from its frame until the next; a transcript chunk: its cues). Both are None
for every other document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "BBox",
    "DocumentInfo",
    "Page",
    "NavEntry",
    "NavKind",
    "TextBlock",
    "TextChunk",
    "Figure",
    "PageContent",
    "FileReport",
    "Route",
    "Evidence",
    "Hit",
    "Citation",
    "Answer",
    "FigureKind",
    "CorpusName",
    "CORPORA",
]

FigureKind = Literal["figure", "table"]
#: A navigation page: a table of contents, a back-of-book index, a list of figures or tables.
NavKind = Literal["contents", "index", "list"]
CorpusName = Literal["text", "figures", "pages"]
CORPORA: tuple[CorpusName, ...] = ("text", "figures", "pages")


@dataclass(frozen=True, slots=True)
class BBox:
    """A rectangle on a page, in points, origin top-left."""

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        if self.x1 < self.x0 or self.y1 < self.y0:
            raise ValueError(f"BBox corners out of order: {self.as_list()}")

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    def as_list(self) -> list[float]:
        return [round(self.x0, 2), round(self.y0, 2), round(self.x1, 2), round(self.y1, 2)]

    def union(self, other: BBox) -> BBox:
        return BBox(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )

    def intersection_area(self, other: BBox) -> float:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return w * h if w > 0 and h > 0 else 0.0

    @classmethod
    def from_sequence(cls, values: object) -> BBox:
        x0, y0, x1, y1 = (float(v) for v in values)  # type: ignore[attr-defined]
        return cls(x0, y0, x1, y1)


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """One input file. ``doc_id`` is the sha256 of its bytes."""

    doc_id: str
    path: Path
    name: str
    kind: Literal["pdf", "image", "office", "markup", "ebook", "video", "audio"]  # how it is read: ingest._files.DocumentKind
    page_count: int
    size_bytes: int
    title: str | None = None
    #: who the file's own metadata says wrote or published it (a PDF's or e-book's author)
    author: str | None = None


@dataclass(frozen=True, slots=True)
class NavEntry:
    """One line of a navigation page read as a pointer: its text, the physical page it points to,
    and the reference as printed there (a label: "17", "xiii")."""

    text: str
    page: int
    printed: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    """One rendered page and its full text (text layer, or OCR when ``ocr``)."""

    doc_id: str
    page: int
    width: float
    height: float
    text: str
    ocr: bool
    image_path: Path | None = None
    dpi: int | None = None
    label: str | None = None
    #: Set when the page is a table of contents, an index or a list of figures/tables; its
    #: ``entries`` point to the pages that answer (:mod:`ingest.navigation`).
    navigation: NavKind | None = None
    entries: tuple[NavEntry, ...] = ()
    #: seconds: the time span this page shows (a video frame, an audio transcript stretch)
    start: float | None = None
    end: float | None = None
    #: what was refused or skipped on this page and why (an image over ``ingest.max_image_pixels``,
    #: table detection stopped by ``ingest.page_timeout_s``, a page too heavy for layout analysis)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TextBlock:
    """A block of text in reading order with its box."""

    doc_id: str
    page: int
    index: int
    bbox: BBox
    text: str
    ocr: bool = False


@dataclass(frozen=True, slots=True)
class TextChunk:
    """A retrieval unit of text; keeps its page and the boxes it came from."""

    doc_id: str
    page: int
    index: int
    text: str
    bbox: BBox
    block_bboxes: tuple[BBox, ...] = ()
    #: where it sits in its document: section titles, outermost first ("2 ASN.1 structure
    #: handling", "Naming"), from the PDF outline or detected headings; () before any section.
    #: Used for search, never part of ``text`` (which answers quote).
    section: tuple[str, ...] = ()
    #: seconds: when its words are said (transcript) or shown (a frame's OCR), else None
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure or a table on a page: its box, crop, caption and the text inside it.

    ``text`` is OCR text for raster figures, the labels drawn in a vector figure,
    or the markdown of a table. ``source`` says how it was found.
    """

    doc_id: str
    page: int
    index: int
    kind: FigureKind
    bbox: BBox
    caption: str | None = None
    caption_bbox: BBox | None = None
    text: str = ""
    image_path: Path | None = None
    source: Literal["raster", "vector", "table", "image"] = "raster"
    #: the section it sits in (as :attr:`TextChunk.section`)
    section: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PageContent:
    """Everything ingestion extracted from one page."""

    page: Page
    blocks: tuple[TextBlock, ...] = ()
    chunks: tuple[TextChunk, ...] = ()
    figures: tuple[Figure, ...] = ()


@dataclass(frozen=True, slots=True)
class FileReport:
    """The outcome for one file of a batch: never lost, never silent.

    ``skipped``: a folder walk passed over it by rule (not a supported format, hidden, the
    knowledge base's own folder, a symbolic link out of the folder, an unreadable folder);
    ``reason`` says which. A skip is not a failure (``ok`` stays true). ``notes``: what was
    refused or skipped inside an indexed file, page by page (``Page.notes``: an image over
    ``ingest.max_image_pixels``, table detection stopped by ``page_timeout_s``...)."""

    path: Path
    status: Literal["ok", "indexed", "unchanged", "skipped", "failed"]
    doc_id: str | None = None
    pages: int = 0
    error: str | None = None
    error_type: str | None = None
    seconds: float = 0.0
    reason: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True, slots=True)
class Route:
    """Which corpora a question goes to, with what weight and how many hits each, and why."""

    corpora: tuple[CorpusName, ...]
    weights: tuple[float, ...]
    top_k: int
    reason: str
    router: str = "rules"

    def weight(self, corpus: str) -> float:
        for name, w in zip(self.corpora, self.weights):
            if name == corpus:
                return w
        return 0.0


@dataclass(frozen=True, slots=True)
class Evidence:
    """One stored item that supports a hit: a chunk, a figure/table, or the page itself."""

    corpus: CorpusName
    kind: Literal["chunk", "figure", "table", "page"]
    text: str
    score: float
    bbox: BBox | None = None
    image_path: Path | None = None
    point_id: str = ""
    #: the section the item sits in, titles outermost first (() when unknown)
    section: tuple[str, ...] = ()
    #: seconds into a video or audio file (None elsewhere)
    start: float | None = None
    end: float | None = None
    #: the sentence window of a chunk that matched the question best, when it moved the chunk up
    #: its corpus's list (``[ask] sentences``, :mod:`retrievers.sentences`); None otherwise
    sentence: str | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """A page-level search result with the evidence that found it, best evidence first."""

    doc_id: str
    source: str
    page: int
    score: float
    corpus: CorpusName
    bbox: BBox | None = None
    evidence: tuple[Evidence, ...] = ()
    label: str | None = None
    image_path: Path | None = None
    path: Path | None = None
    page_width: float | None = None
    page_height: float | None = None
    #: How the page was reached when a navigation page pointed to it ("via contents p.3: Threads").
    via: str | None = None
    #: seconds into a video or audio file: its best evidence's time span (None elsewhere)
    start: float | None = None
    end: float | None = None

    @property
    def granularity(self) -> Literal["sentence", "chunk", "page", "figure"]:
        """What matched the question best: a text chunk, one of its sentence windows (it moved
        the chunk up, ``[ask] sentences``), the page as a whole (``pages`` corpus), or a figure or table."""
        if self.corpus == "pages":
            return "page"
        if self.corpus == "figures":
            return "figure"
        top = next((e for e in self.evidence if e.corpus == "text"), None)
        return "sentence" if top is not None and top.sentence else "chunk"


@dataclass(frozen=True, slots=True)
class Citation:
    """A marker in an answer mapped to file, page and box."""

    marker: int
    doc_id: str
    source: str
    page: int
    bbox: BBox | None
    text: str = ""
    label: str | None = None
    image_path: Path | None = None
    #: The cited evidence's own image (a figure or table crop) when it has one; ``image_path``
    #: is the whole rendered page.
    crop_path: Path | None = None
    #: the section the cited item sits in, titles outermost first (() when unknown)
    section: tuple[str, ...] = ()
    #: seconds into a video or audio file: when the cited words are said or shown (None elsewhere)
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to a question, its citations, the evidence it was given, and timings."""

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    route: Route | None = None
    timings: dict[str, float] = field(default_factory=dict)
    generator: str = "extractive"
    #: False when the generator judged that the evidence does not answer the question: the text
    #: says so, ``citations`` is empty and ``hits`` are the closest pages, not an answer's sources.
    answered: bool = True
    #: Sentences of ``text`` whose claims were not found in the evidence they cited (a generated
    #: answer checked against its citations); their markers were removed from ``text``.
    unsupported: tuple[str, ...] = ()
    #: A follow-up rewritten with its conversation (:mod:`rag.conversation`): what retrieval
    #: searched for; ``None`` when the question was searched as asked.
    rewritten: str | None = None
    #: Why the evidence does not answer, in a reader's words, when ``answered`` is False and the
    #: judge can say ("No retrieved page mentions “vcovCL”."); ``None`` otherwise.
    why_unanswered: str | None = None
    #: The related words the thesaurus added to the search (question word -> its related
    #: words; ``[ask] thesaurus``); ``None`` when the thesaurus is off.
    thesaurus: dict[str, tuple[str, ...]] | None = None

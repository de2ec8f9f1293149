"""Where each block of a document sits in its structure: the section path ("2 ASN.1 structure
handling > Naming") from the PDF outline, else from headings detected in the text.

One :class:`SectionTracker` reads one document, page after page in order (as
:class:`ingest.reader.DocumentReader` does), and gives every text block of a page its section
path; a figure or table gets the path of the text above it.

- **Outline** (``doc.get_toc(simple=False)``): an entry starts its section at its destination
  (page and height on the page; a destination without a height starts at the top of the page).
  An outline with fewer than two usable entries (TAMReview's single ``htmldoc797.html``) is ignored.
- **Detected headings** (no outline): a short block (at most 12 words, no closing punctuation)
  that is numbered ("2.1 ASN.1 syntax": its level is the depth of the number), or set in a font
  clearly larger than the document's body text (level 1 at 1.4 times the body size, else 2).
  A document read from a page in the middle starts without the headings before it.

Paths are tuples of titles, outermost first; the empty tuple means "before any section".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ingest._layout import RawBlock, is_caption

__all__ = ["Heading", "SectionTracker", "outline_headings", "detect_heading", "section_at", "section_text"]

_MAX_TITLE = 120  # characters of one title kept
_NUMBERED = re.compile(r"^(?P<num>\d{1,2}(?:\.\d{1,2})*|[A-Z](?:\.\d{1,2})+)\.?\s+(?P<title>\S.*)$")
_FILE_NAME = re.compile(r"^\S+\.(?:html?|pdf|docx?|txt|tex|xml)$", re.IGNORECASE)
_LINK_NAMED = 4  # pymupdf.LINK_NAMED; explicit destinations (LINK_GOTO) come top-down
_LARGER = 1.15  # a heading's font is at least this many times the body size
_MUCH_LARGER = 1.4  # ... and a top-level one this many


@dataclass(frozen=True, slots=True)
class Heading:
    """A section start: 0-based page index, height from the top of the page (points), level (1 =
    outermost) and title."""

    page: int
    y: float
    level: int
    title: str


def _clean(title: str) -> str:
    text = " ".join(str(title).split())
    return text[:_MAX_TITLE].rstrip()


def outline_headings(doc: Any) -> list[Heading]:
    """The PDF outline as section starts, in document order; ``[]`` when there is no usable
    outline (none, one entry, or only file names)."""
    try:
        toc = doc.get_toc(simple=False)
    except Exception:  # noqa: BLE001 - a broken outline costs the outline, not the document
        return []
    out: list[Heading] = []
    for entry in toc:
        level, title, page = int(entry[0]), _clean(entry[1]), int(entry[2])
        if not title or _FILE_NAME.match(title) or not 1 <= page <= doc.page_count:
            continue
        y = 0.0
        dest = entry[3] if len(entry) > 3 and isinstance(entry[3], dict) else {}
        to = dest.get("to")
        if to is not None:
            y = float(to.y)
            if dest.get("kind") == _LINK_NAMED:  # PyMuPDF gives named destinations in PDF space (y up)
                y = float(doc[page - 1].mediabox.height) - y
            y = max(0.0, y)
        out.append(Heading(page - 1, y, max(1, level), title))
    if len(out) < 2:
        return []
    return sorted(out, key=lambda h: (h.page, h.y))  # a stable sort: entries at one spot keep their order


def detect_heading(block: RawBlock, body_size: float) -> tuple[int, str] | None:
    """``(level, title)`` when ``block`` reads as a heading (see the module doc), else ``None``.
    ``body_size``: the document's body font size (0 when unknown: only numbered headings count)."""
    text = " ".join(block.text.split())
    if not text or len(text.split()) > 12 or len(block.lines) > 2 or text.endswith((".", ",", ";", ":", "!", "?")):
        return None
    if is_caption(text) or sum(c.isalpha() for c in text) < 3:
        return None
    numbered = _NUMBERED.match(text)
    larger = body_size > 0 and block.size >= _LARGER * body_size
    if numbered is not None:
        num, title = numbered.group("num"), numbered.group("title")
        if not title[:1].isupper():
            return None  # "3 times the rate" is a sentence fragment, not a heading
        if "." not in num and not larger and len(num) > 1 and int(num) > 30:
            return None  # a bare number above 30 is a quantity
        return num.count(".") + 1, _clean(text)
    if larger and text[:1].isupper():
        return (1 if block.size >= _MUCH_LARGER * body_size else 2), _clean(text)
    return None


class SectionTracker:
    """The section path of every block, one document read in page order (see the module doc)."""

    def __init__(self, outline: Sequence[Heading] = ()) -> None:
        self._outline = list(outline)
        self._next = 0  # the first outline entry not applied yet
        self._stack: list[tuple[int, str]] = []
        self._sizes: Counter[float] = Counter()  # characters per font size, for the body size
        self._last_page = -1
        #: the section path the last page read began in
        self.start: tuple[str, ...] = ()

    @property
    def from_outline(self) -> bool:
        return bool(self._outline)

    def _enter(self, level: int, title: str) -> None:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title))

    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self._stack)

    def _body_size(self) -> float:
        return self._sizes.most_common(1)[0][0] if self._sizes else 0.0

    def page(self, index: int, blocks: Sequence[RawBlock]) -> list[tuple[str, ...]]:
        """The section path of each of page ``index``'s blocks (in reading order)."""
        if index != self._last_page + 1 and not self._outline:
            self._stack.clear()  # not the next page: earlier headings are unknown
        self._last_page = index
        if self._outline:
            while self._next < len(self._outline) and self._outline[self._next].page < index:
                h = self._outline[self._next]
                self._enter(h.level, h.title)
                self._next += 1
        else:
            for b in blocks:
                if b.size > 0:
                    self._sizes[round(b.size, 1)] += len(b.text)
        body = self._body_size()
        self.start = self.path()
        out: list[tuple[str, ...]] = []
        for b in blocks:
            if self._outline:
                while (self._next < len(self._outline) and self._outline[self._next].page == index
                       and self._outline[self._next].y <= b.bbox[1] + 2.0):
                    h = self._outline[self._next]
                    self._enter(h.level, h.title)
                    self._next += 1
            else:
                found = detect_heading(b, body)
                if found is not None:
                    self._enter(*found)
            out.append(self.path())
        while self._outline and self._next < len(self._outline) and self._outline[self._next].page == index:
            h = self._outline[self._next]  # starts below the last block: counts from the next page
            self._enter(h.level, h.title)
            self._next += 1
        return out


def section_at(blocks: Sequence[RawBlock], paths: Sequence[tuple[str, ...]], top: float,
               start: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The section of something whose top is at ``top`` on the page: that of the last block above
    it (``paths`` are the blocks'), else ``start`` (the section the page began in)."""
    best: tuple[float, tuple[str, ...]] | None = None
    for b, p in zip(blocks, paths):
        if b.bbox[1] <= top + 1.0 and (best is None or b.bbox[1] >= best[0]):
            best = (b.bbox[1], p)
    return start if best is None else best[1]


def section_text(path: Sequence[str], sep: str = " > ") -> str:
    """``"A > B > C"`` for a section path."""
    return sep.join(path)

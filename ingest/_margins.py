"""Running headers and footers: margin lines that repeat page after page.

"Overview of the Technology Acceptance Model ... M Y Chuttur" at the top of every page, or
"FREE CULTURE" and a page number, is in every chunk of a document if left in: it says
nothing about the page and pulls the embeddings of all pages towards each other. A line in
the top or bottom band of a page is dropped when the same line (digits ignored, so page
numbers match) was in a margin band of at least ``min_pages`` earlier pages of the document.
Pages are seen in order, so the first pages keep theirs; nothing is dropped from the body.

A chapter's running header ("Chapter 2: ASN.1 structure handling  3") changes with every
chapter, so the rule above keeps it on the chapter's first two pages (all of a two-page
chapter). Most such headers carry the printed page number: once bare page numbers in the
margins have shown how printed numbers relate to physical pages (the same offset on
``min_pages`` pages), a margin line that begins or ends with this page's printed number, or
sits on the same row as it (the Libtasn1 manual sets "Chapter 2: ..." left and "3" right), is
dropped too.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ingest._layout import RawBlock, keep_lines

__all__ = ["RunningLines"]

Box = tuple[float, float, float, float]
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")
_BARE_NUMBER = re.compile(r"^\W*(\d{1,4})\W*$")
_NUMBER_AT_AN_END = re.compile(r"^(\d{1,4})\s+\S|\S\s+(\d{1,4})$")


def _key(text: str) -> str:
    return _SPACE.sub(" ", _DIGITS.sub("#", text.lower())).strip()


@dataclass
class RunningLines:
    """Per-document memory of margin lines; :meth:`strip` removes the repeating ones."""

    band: float = 0.12  # share of the page height at the top and at the bottom (1-inch margins are 9%)
    min_pages: int = 2
    seen: Counter[str] = field(default_factory=Counter)
    offsets: Counter[int] = field(default_factory=Counter)  # physical page - printed number
    dropped: int = 0

    def strip(self, blocks: list[RawBlock], height: float, page: int | None = None) -> list[RawBlock]:
        """``blocks`` of one page without its running lines; ``page``: its physical number
        (1-based), which lets headers that carry the printed page number go at once."""
        top, bottom = self.band * height, (1.0 - self.band) * height
        page_keys: set[str] = set()
        page_offsets: set[int] = set()
        printed = self._printed_number(page)
        # the rows that hold this page's printed number: a header beside it is a running header
        number_rows = [] if printed is None else [
            box for b in blocks for box, text in (b.lines or ((b.bbox, b.text),))
            if (box[3] <= top or box[1] >= bottom) and (m := _BARE_NUMBER.match(text)) and int(m.group(1)) == printed
        ]

        def keep(box: Box, text: str) -> bool:
            key = _key(text) if box[3] <= top or box[1] >= bottom else ""
            if not key:
                return True
            page_keys.add(key)
            bare = _BARE_NUMBER.match(text)
            if bare and page is not None:
                page_offsets.add(page - int(bare.group(1)))
            if self.seen[key] >= self.min_pages:
                self.dropped += 1
                return False
            if not bare and printed is not None and (_ends_with(text, printed) or any(_same_row(box, r) for r in number_rows)):
                self.dropped += 1
                return False
            return True

        out = keep_lines(blocks, keep)
        self.seen.update(page_keys)
        self.offsets.update(page_offsets)
        return out

    def _printed_number(self, page: int | None) -> int | None:
        """The number printed on physical ``page``, when bare page numbers seen so far agree."""
        if page is None or not self.offsets:
            return None
        offset, count = self.offsets.most_common(1)[0]
        return page - offset if count >= self.min_pages and page - offset > 0 else None


def _ends_with(text: str, number: int) -> bool:
    m = _NUMBER_AT_AN_END.search(text.strip())
    return m is not None and int(m.group(1) or m.group(2)) == number


def _same_row(a: Box, b: Box) -> bool:
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    return overlap > 0.5 * min(a[3] - a[1], b[3] - b[1])

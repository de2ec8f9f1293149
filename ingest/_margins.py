"""Running headers and footers: margin lines that repeat page after page.

"Overview of the Technology Acceptance Model ... M Y Chuttur" at the top of every page, or
"FREE CULTURE" and a page number, is in every chunk of a document if left in: it says
nothing about the page and pulls the embeddings of all pages towards each other. A line in
the top or bottom band of a page is dropped when the same line (digits ignored, so page
numbers match) was in a margin band of at least ``min_pages`` earlier pages of the document.
Pages are seen in order, so the first pages keep theirs; nothing is dropped from the body.
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


def _key(text: str) -> str:
    return _SPACE.sub(" ", _DIGITS.sub("#", text.lower())).strip()


@dataclass
class RunningLines:
    """Per-document memory of margin lines; :meth:`strip` removes the repeating ones."""

    band: float = 0.12  # share of the page height at the top and at the bottom (1-inch margins are 9%)
    min_pages: int = 2
    seen: Counter[str] = field(default_factory=Counter)
    dropped: int = 0

    def strip(self, blocks: list[RawBlock], height: float) -> list[RawBlock]:
        top, bottom = self.band * height, (1.0 - self.band) * height
        page_keys: set[str] = set()

        def keep(box: Box, text: str) -> bool:
            key = _key(text) if box[3] <= top or box[1] >= bottom else ""
            if not key:
                return True
            page_keys.add(key)
            if self.seen[key] >= self.min_pages:
                self.dropped += 1
                return False
            return True

        out = keep_lines(blocks, keep)
        self.seen.update(page_keys)
        return out

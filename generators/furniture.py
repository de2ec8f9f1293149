"""Page furniture in evidence text: lines that belong to the page, not to what it says.

Running headers and footers, bare page numbers, table-of-contents lines with dot leaders,
and version/date stamps (``xcolor v2.14 (2022/06/12)``) are never an answer. They are found
by general cues, never by word lists:

- **repetition across pages**: a line (digits aside, so "Page 12" and "Page 13" meet) that
  occurs in the evidence of two or more different pages of one document is a running
  header or footer — body text does not repeat itself page after page;
- **shape**: a line that is only a page number (``12``, ``- 12 -``, ``xiv``, ``Page 3 of 9``),
  a dot-leader line (``Introduction ........ 4``), or a short line holding a version number
  and a date (a document stamp).

:func:`furniture_lines` collects the repeated lines of a context; :func:`strip_furniture`
drops furniture lines from one item's text, keeping every other line as it was.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from generators.base import ContextItem

__all__ = ["furniture_key", "furniture_lines", "is_furniture_line", "strip_furniture"]

_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")
_PAGE_NUMBER = re.compile(
    r"^(?:[-–—(\[]\s*)?(?:page\s+)?(?:\d{1,4}|[ivxlcdm]{1,7})(?:\s+of\s+\d{1,4})?(?:\s*[-–—)\]])?$", re.IGNORECASE
)
# "Introduction ....... 4", "2.1 Tools . . . . . 17"
_DOT_LEADER = re.compile(r"(?:\.\s*){4,}\s*(?:\d{1,4}|[ivxlcdm]{1,7})\s*$|(?:\s\.){3,}", re.IGNORECASE)
# a version ("v2.14", "version 3.1.0") and a date ("2022/06/12", "2022-06-12", "12.06.2022")
_VERSION = re.compile(r"\b(?:v|version\s*)\d+(?:\.\d+)+[a-z]?\b", re.IGNORECASE)
_DATE = re.compile(r"\b(?:\d{4}[/-]\d{1,2}[/-]\d{1,2}|\d{1,2}[./]\d{1,2}[./]\d{4})\b")
#: a repeated line must be at most this many words to be taken for a running header/footer
MAX_FURNITURE_WORDS = 12


def furniture_key(line: str) -> str:
    """A line compared across pages: lower-case, spacing collapsed, every number as ``#``."""
    return _DIGITS.sub("#", _SPACE.sub(" ", line.strip().lower()))


def is_furniture_line(line: str, repeated: Iterable[str] = ()) -> bool:
    """True for a page number, a dot-leader line, a version-and-date stamp, or a line whose
    :func:`furniture_key` is in ``repeated`` (see :func:`furniture_lines`)."""
    text = line.strip()
    if not text:
        return False
    if _PAGE_NUMBER.match(text) or _DOT_LEADER.search(text):
        return True
    words = len(text.split())
    if words <= MAX_FURNITURE_WORDS and _VERSION.search(text) and _DATE.search(text):
        return True
    return words <= MAX_FURNITURE_WORDS and furniture_key(text) in set(repeated)


def furniture_lines(items: Sequence[ContextItem]) -> frozenset[str]:
    """Keys (:func:`furniture_key`) of the short lines found on two or more different pages of
    one document in ``items``: running headers and footers."""
    pages: dict[tuple[str, str], set[int]] = defaultdict(set)
    for item in items:
        for line in item.text.splitlines():
            text = line.strip()
            # a line needs a letter to be a header; tables' "| --- |" rows and bare numbers are not
            if text and not text.startswith("|") and len(text.split()) <= MAX_FURNITURE_WORDS and any(c.isalpha() for c in text):
                pages[(item.doc_id, furniture_key(text))].add(item.page)
    return frozenset(key for (_, key), seen in pages.items() if len(seen) >= 2)


def strip_furniture(text: str, repeated: Iterable[str] = ()) -> str:
    """``text`` without its furniture lines (other lines, blank ones included, kept)."""
    repeated = set(repeated)
    return "\n".join(line for line in text.splitlines() if not is_furniture_line(line, repeated))

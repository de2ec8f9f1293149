"""Cited words -> the passage on the page that holds them.

Text is compared as :func:`plain_text` (lower-case letters and digits only), so spacing, line
breaks, punctuation and footnote brackets do not matter; a cited sentence is looked for by its
first :data:`MATCH_CHARS` such characters. The extractive generator compares passages the same
way; :func:`narrow_page_citations` uses it to give a whole-page citation the box of the passage
it quotes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import reduce

from rag.types import Answer, BBox

from generators.base import MARKER_RE

__all__ = ["MATCH_CHARS", "plain_text", "narrow_page_citations"]

_ALNUM = re.compile(r"[^0-9a-z]+")
#: characters of a cited sentence (letters and digits only) that must be found in a passage
MATCH_CHARS = 60


def plain_text(text: str) -> str:
    """Lower-case letters and digits only: spacing, line breaks and punctuation do not matter."""
    return _ALNUM.sub("", text.lower())


def _cited_sentences(text: str, marker: int) -> list[str]:
    """The text before each bracket group that names ``marker``, back to the previous group."""
    out, start = [], 0
    for m in MARKER_RE.finditer(text):
        if marker in (int(n) for n in m.group(1).split(",")):
            out.append(text[start : m.start()])
        start = m.end()
    return out


def narrow_page_citations(
    answer: Answer, passages: Callable[[str, int], Sequence[tuple[str, BBox]]]
) -> Answer:
    """Citations that point at a whole page get the box of the passage that holds the cited
    words: the sentence an extractive answer quotes from a page's full text is looked up in
    that page's chunks (``passages(doc_id, page)`` -> ``(text, bbox)``, letters and digits
    compared, so spacing and footnote brackets do not matter). A citation whose words are
    found in no passage (a paraphrasing LLM, a figure's OCR text) keeps its page box."""
    sizes = {(h.doc_id, h.page): (h.page_width, h.page_height) for h in answer.hits}
    changed = []
    for c in answer.citations:
        w, h = sizes.get((c.doc_id, c.page), (None, None))
        whole = c.bbox is None or (w and h and c.bbox.area >= 0.9 * w * h)
        if not whole:
            changed.append(c)
            continue
        wanted = [plain_text(s)[:MATCH_CHARS] for s in _cited_sentences(answer.text, c.marker)]
        wanted = [x for x in wanted if len(x) >= 12]
        boxes = [bbox for text, bbox in passages(c.doc_id, c.page) if any(x in plain_text(text) for x in wanted)] if wanted else []
        if not boxes:
            changed.append(c)
            continue
        changed.append(replace(c, bbox=reduce(BBox.union, boxes)))
    return replace(answer, citations=tuple(changed))

"""Example questions about the documents a knowledge base holds, for an empty question box.

Made from what ingestion stored, never from a fixed list: a captioned figure or table
("What does Figure 2, "Original TAM proposed by Fred Davis", show?") and a document's title
("What is "Free Culture" about?"), taken round-robin over the documents so each gets a turn.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["example_questions", "caption_question", "title_question"]

# "Figure 2:", "Fig. 3.", "Table 4" and the words after it
_CAPTION = re.compile(r"^\s*(?P<label>(?:Figure|Fig\.|Table|Chart|Exhibit)\s*[A-Z]?\d+(?:[.-]\d+)*)[\s.:—–-]*(?P<body>.*)$", re.I | re.S)
_WORDS = 9


def _short(text: str, words: int = _WORDS) -> str:
    """The first sentence of ``text`` without a trailing reference, at most ``words`` words."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.split(r"(?<=[a-z0-9)])[.;] ", text, maxsplit=1)[0]
    text = re.sub(r"\s*\([^()]*\d{4}[^()]*\)\s*\.?$", "", text)  # "(Davis, 1986, p. 24)"
    parts = text.rstrip(" .:;,").split(" ")
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")


def caption_question(caption: str | None) -> str | None:
    """A question about a figure or table from its caption, or ``None`` if it has no label and words."""
    if not caption:
        return None
    m = _CAPTION.match(caption)
    if m is None:
        return None
    label = re.sub(r"\s+", " ", m.group("label")).strip()
    body = _short(m.group("body"))
    if len(body) < 8:
        return None
    verb = "list" if label.lower().startswith("table") else "show"
    return f"What does {label}, “{body}”, {verb}?"


def title_question(title: str | None, name: str) -> str | None:
    """A question about a document from its title (``None`` when the title is missing or is
    just the file name)."""
    if not title:
        return None
    title = re.sub(r"\s+", " ", title).strip()
    stem = name.rsplit(".", 1)[0]
    if len(title) < 4 or title.lower() in (name.lower(), stem.lower()) or title.lower().startswith("microsoft word"):
        return None
    return f"What is “{_short(title, 12)}” about?"


def example_questions(records: Sequence[Any], figures: Iterable[Mapping[str, Any]], limit: int = 4) -> list[str]:
    """Up to ``limit`` questions: per document (in ``records`` order) its first captioned figure
    or table by page, then its title, round-robin over documents. ``figures`` are stored figure
    payloads (``doc_id``, ``page``, ``caption``)."""
    first_caption: dict[str, tuple[int, str]] = {}
    for p in figures:
        question = caption_question(p.get("caption"))
        doc_id, page = p.get("doc_id"), p.get("page")
        if question is None or not isinstance(doc_id, str) or not isinstance(page, int):
            continue
        if doc_id not in first_caption or page < first_caption[doc_id][0]:
            first_caption[doc_id] = (page, question)
    per_doc: list[list[str]] = []
    for r in records:
        mine = [q for q in (first_caption.get(r.doc_id, (0, None))[1], title_question(r.title, r.name)) if q is not None]
        if mine:
            per_doc.append(mine)
    out: list[str] = []
    for turn in range(2):
        for mine in per_doc:
            if turn < len(mine) and mine[turn] not in out and len(out) < limit:
                out.append(mine[turn])
    return out

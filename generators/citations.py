"""Citation markers in generated text -> :class:`rag.types.Citation` records, and highlights.

Markers are numbers in square brackets: ``[1]``, ``[2, 3]``, ``[1][3]`` (spaces inside the
brackets are allowed: ``[ 2 ]``). Each number names a :class:`generators.base.ContextItem`.

**Invalid markers are stripped from the text.** A number that names no evidence given to the
model (``[7]`` when five items were given, ``[0]``) is removed from its bracket group; a group
left empty is removed with the space before it. The answer text therefore only ever shows
markers that resolve to a citation; the rejected numbers are reported in
:attr:`CitationResult.rejected` and logged as a warning. They are never cited.

:func:`write_highlights` draws each cited box on a crop of its page image.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import reduce
from pathlib import Path
from typing import Any

from rag.types import Answer, BBox, Citation, Page

from generators.base import MARKER_RE, ContextItem

__all__ = ["MARKER_RE", "CitationResult", "parse_markers", "resolve_citations", "cited_answer", "narrow_page_citations",
           "write_highlights", "plain_text", "MATCH_CHARS"]

logger = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class CitationResult:
    """The text with invalid markers stripped, the citations in order of first use, the rejects."""

    text: str
    citations: tuple[Citation, ...]
    rejected: tuple[int, ...] = ()


def parse_markers(text: str) -> list[int]:
    """Every marker number in ``text``, in order of appearance, duplicates kept."""
    return [int(n) for m in MARKER_RE.finditer(text) for n in m.group(1).split(",")]


def _citation(item: ContextItem) -> Citation:
    return Citation(
        marker=item.marker,
        doc_id=item.doc_id,
        source=item.source,
        page=item.page,
        bbox=item.bbox,
        text=item.text,
        label=item.label,
        image_path=item.image_path,
    )


def resolve_citations(text: str, items: Sequence[ContextItem]) -> CitationResult:
    """Map markers in ``text`` to the items they name; strip markers that name no item."""
    by_marker = {item.marker: item for item in items}
    cited: dict[int, Citation] = {}
    rejected: list[int] = []

    def fix(match: re.Match[str]) -> str:
        numbers = [int(n) for n in match.group(1).split(",")]
        valid = [n for n in numbers if n in by_marker]
        rejected.extend(n for n in numbers if n not in by_marker)
        for n in valid:
            cited.setdefault(n, _citation(by_marker[n]))
        if valid == numbers:
            return match.group(0)
        return "[" + ", ".join(str(n) for n in valid) + "]" if valid else "\0"

    cleaned = MARKER_RE.sub(fix, text)
    if rejected:
        cleaned = re.sub(r"[ \t]*\0", "", cleaned)
        logger.warning(
            "rejected citation markers %s: only [1]..[%d] were given as evidence; removed from the answer",
            sorted(set(rejected)),
            len(items),
        )
    return CitationResult(text=cleaned, citations=tuple(cited.values()), rejected=tuple(dict.fromkeys(rejected)))


def _scale(citation: Citation, image_width: int, pages: Mapping[tuple[str, int], Page], dpi: float | None) -> float | None:
    page = pages.get((citation.doc_id, citation.page))
    if page is not None and page.width > 0:
        return image_width / page.width
    if page is not None and page.dpi:
        return page.dpi / 72.0
    if dpi is not None:
        return dpi / 72.0
    return None


def cited_answer(
    generator: str, question: str, raw: str, items: Sequence[ContextItem], hits: Sequence[Any], timings: dict[str, float]
) -> Answer:
    """The generated text with its markers resolved against the evidence given, as an Answer."""
    result = resolve_citations(raw.strip(), items)
    logger.info(
        "%s answer: %d evidence item(s), %d citation(s), %.2fs",
        generator, len(items), len(result.citations), timings.get("generate", 0.0),
    )
    return Answer(
        question=question,
        text=result.text,
        citations=result.citations,
        hits=tuple(hits),
        timings=timings,
        generator=generator,
    )


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


def write_highlights(
    answer: Answer,
    folder: str | Path,
    *,
    pages: Iterable[Page] = (),
    dpi: float | None = None,
    margin: float = 36.0,
    color: tuple[int, int, int] = (230, 30, 30),
    line_width: int = 3,
) -> list[Path]:
    """Write, for each citation with a page image and a box, a PNG crop with the box drawn.

    Box coordinates are PDF points; the scale to page-image pixels is
    ``image_width_px / page.width`` taken from the matching :class:`rag.types.Page` in
    ``pages`` (matched by doc id and page number); without one, ``dpi / 72`` from ``dpi``.
    The crop is the box plus ``margin`` points on every side, clipped to the page.
    Citations without an image, a box or a known scale are skipped with a warning. Files are
    named ``cite-<marker>-p<page>.png``; returns the paths written, in citation order.
    """
    from PIL import Image, ImageDraw

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    by_page = {(p.doc_id, p.page): p for p in pages}
    written: list[Path] = []
    for c in answer.citations:
        if c.image_path is None or c.bbox is None:
            logger.debug("citation [%d] has no page image or box; no highlight", c.marker)
            continue
        try:
            with Image.open(c.image_path) as src:
                image = src.convert("RGB")
        except OSError as exc:
            logger.warning("citation [%d]: cannot read page image %s: %s", c.marker, c.image_path, exc)
            continue
        scale = _scale(c, image.width, by_page, dpi)
        if scale is None:
            logger.warning(
                "citation [%d] (%s page %d): page size unknown; pass pages= or dpi= to write_highlights",
                c.marker, c.source, c.page,
            )
            continue
        box = [c.bbox.x0 * scale, c.bbox.y0 * scale, c.bbox.x1 * scale, c.bbox.y1 * scale]
        pad = margin * scale
        crop = (
            max(0, int(box[0] - pad)),
            max(0, int(box[1] - pad)),
            min(image.width, int(box[2] + pad + 1)),
            min(image.height, int(box[3] + pad + 1)),
        )
        if crop[2] <= crop[0] or crop[3] <= crop[1]:
            logger.warning("citation [%d]: box %s lies outside its page image", c.marker, c.bbox.as_list())
            continue
        ImageDraw.Draw(image).rectangle(box, outline=color, width=line_width)
        path = out / f"cite-{c.marker}-p{c.page}.png"
        image.crop(crop).save(path)
        written.append(path)
    logger.info("wrote %d highlight(s) for %d citation(s) to %s", len(written), len(answer.citations), out)
    return written


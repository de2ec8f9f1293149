"""Cited boxes drawn on their page images: one PNG crop per citation.

Box coordinates are PDF points (origin top-left, see :mod:`rag.types`); they become page-image
pixels by ``image_width_px / page.width`` of the matching :class:`rag.types.Page`, or by
``dpi / 72`` when no page is given. Pillow is imported only when a highlight is drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from rag.types import Answer, Citation, Page

__all__ = ["write_highlights"]

logger = logging.getLogger(__name__)


def _scale(citation: Citation, image_width: int, pages: Mapping[tuple[str, int], Page], dpi: float | None) -> float | None:
    page = pages.get((citation.doc_id, citation.page))
    if page is not None and page.width > 0:
        return image_width / page.width
    if page is not None and page.dpi:
        return page.dpi / 72.0
    if dpi is not None:
        return dpi / 72.0
    return None


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


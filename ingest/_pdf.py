"""Everything extracted from one PDF page: text blocks, chunks, OCR, figures, tables, captions."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.config import IngestConfig
from rag.errors import ResourceLimitError
from rag.types import BBox, Figure, Page, PageContent, TextBlock, TextChunk

from ingest._budget import PageClock, Timeout, measure_page
from ingest import _tables
from ingest._figures import Element, cluster_regions, grow_over_labels, inside_share, is_decoration, match_captions
from ingest._labels import page_labels
from ingest._layout import RawBlock, block_from_lines, is_caption, join_lines, make_chunks, reading_order
from ingest._guards import guard_page, page_objects
from ingest._margins import RunningLines
from ingest._quality import assess_text
from ingest._repair import GlyphRepair
from ingest._sections import SectionTracker, section_at
from ingest._tables import may_have_tables, split_merged_rows
from ingest._render import fit_dpi, max_side_for, pixmap_to_pil, render, save_pil, suffix_for
from ingest._textlayer import _ocr_available, group_ocr_lines, ocr_region, read_plain_text, read_text_layer

__all__ = ["extract_pdf_page", "group_ocr_lines", "ocr_region", "may_have_tables", "split_merged_rows", "caption_from_ocr_block",
           "caption_until_break", "caption_outside"]

logger = logging.getLogger("ingest")
Box = tuple[float, float, float, float]
_DRAWN = {"fill-path", "stroke-path", "fill-shade"}
_IMAGES = {"fill-image", "fill-imgmask"}
_MAX_ELEMENTS = 20_000  # beyond this, a page is a vector drawing too busy to cluster element by element
# a caption's label with no title yet: "Table 2", "Figure 7-26.", "Fig. 3:"
_LABEL_ONLY = re.compile(r"^\s*(?:fig(?:ure)?\.?|table|chart|diagram|plate|exhibit)\s*[\w.-]+[.:]?\s*$", re.IGNORECASE)
_MIN_OCR_FIGURE = (100.0, 50.0)  # points: smaller raster figures are not worth OCR


def _box(b: Any) -> Box:
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def _bbox(b: Box) -> BBox:
    return BBox(b[0], b[1], max(b[2], b[0]), max(b[3], b[1]))


def _elements(page: Any, config: IngestConfig, path: Path, n: int) -> list[Element]:
    elements: list[Element] = []
    images = 0
    for kind, rect in page.get_bboxlog():
        if kind in _IMAGES:
            images += 1
            if images > config.max_images_per_page:
                continue
            elements.append(Element(_box(rect), True))
        elif kind in _DRAWN:
            elements.append(Element(_box(rect), False))
    if images > config.max_images_per_page:
        logger.warning(
            "%s page %d: %d images, above ingest.max_images_per_page=%d; the rest are ignored",
            path.name, n, images, config.max_images_per_page,
        )
    if len(elements) > _MAX_ELEMENTS:
        logger.warning("%s page %d: %d drawn elements; figure detection uses the first %d", path.name, n, len(elements), _MAX_ELEMENTS)
        elements = elements[:_MAX_ELEMENTS]
    return elements


def _centre_in(line: Box, box: Box) -> bool:
    cx, cy = (line[0] + line[2]) / 2, (line[1] + line[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def _lines_in(box: Box, blocks: list[RawBlock]) -> list[str]:
    """Text of the lines whose centre lies inside ``box``."""
    return [text for b in blocks for lb, text in b.lines or ((b.bbox, b.text),) if _centre_in(lb, box)]


def caption_from_ocr_block(block: RawBlock, max_chars: int = 300) -> RawBlock:
    """The caption part of an OCR block that starts with a caption.

    OCR blocks are grouped by spacing alone, so a caption can swallow the table rows under
    it. Keep lines up to the first one that ends a sentence (``.`` or ``)``), at most
    ``max_chars`` characters.
    """
    if not block.lines:
        return block
    kept: list[tuple[Box, str]] = []
    for lb, text in block.lines:
        kept.append((lb, text))
        ends_sentence = text.rstrip().endswith((".", ")")) and (len(kept) > 1 or len(text) > 20)
        if ends_sentence or sum(len(t) for _, t in kept) >= max_chars:
            break
    return block_from_lines(kept)


def caption_until_break(block: RawBlock, gap_ratio: float = 0.7) -> RawBlock:
    """The caption part of a block: its lines up to the first paragraph break.

    A text layer can hold a caption and the paragraph under it in one block (TAMReview's
    "Figure 1: Conceptual model ... (Davis, 1985, p. 10)." then "By relying on prior work ...
    Davis further refined his conceptual model to propose the Technology Acceptance Model",
    which made Figure 1 look like the model it leads to). A break is a vertical gap between
    consecutive lines of at least ``gap_ratio`` times the taller line's height; lines of one
    paragraph are a fraction of a line apart.
    """
    lines = list(block.lines)
    for i in range(1, len(lines)):
        (prev, _), (box, _) = lines[i - 1], lines[i]
        height = max(prev[3] - prev[1], box[3] - box[1])
        if height > 0 and box[1] - prev[3] >= gap_ratio * height:
            return block_from_lines(lines[:i])
    return block


def caption_outside(block: RawBlock, box: Box) -> RawBlock:
    """The caption's lines before the first one whose centre lies inside ``box``, the element it
    captions: a text layer can run a table's title into its rows ("Table 2 Initial scale items
    ... Item No. Candidate item ... 1 I often become confused ..."). A label alone ("Table 2")
    keeps its next line, the title, which a table finder often counts as the first row; a
    caption wholly inside its element (a title drawn in the figure) is kept as it is."""
    lines = list(block.lines)
    if not lines or _centre_in(lines[0][0], box):
        return block
    for i in range(1, len(lines)):
        if _centre_in(lines[i][0], box) and not _LABEL_ONLY.match(join_lines([t for _, t in lines[:i]])):
            return block_from_lines(lines[:i])
    return block


def _in_margin(box: Box, width: float, height: float) -> bool:
    """True when the box lies wholly in a page margin band (outer 10 % on any side)."""
    return box[3] <= 0.1 * height or box[1] >= 0.9 * height or box[2] <= 0.1 * width or box[0] >= 0.9 * width


def extract_pdf_page(
    doc: Any,
    index: int,
    doc_id: str,
    path: Path,
    config: IngestConfig,
    out_dir: Path | None,
    repair: GlyphRepair | None = None,
    margins: RunningLines | None = None,
    labels: Sequence[str | None] | None = None,
    sections: SectionTracker | None = None,
) -> PageContent:
    """Extract one page (0-based ``index``) of an open PyMuPDF document.

    ``repair`` (one per document, kept across its pages) decodes garbled text layers from a
    few OCR'd lines before falling back to OCR of the whole page; ``margins`` (also one per
    document) drops running headers and footers seen on earlier pages; ``labels`` (the document's
    :func:`ingest._labels.page_labels`, read once) gives the printed page label; ``sections`` (one
    per document, fed its pages in order) gives chunks and figures their section path.

    Bounds: every image the page can draw is sized from its own stream header first
    (:func:`ingest._guards.guard_page`); one above ``max_image_pixels`` is left out of the page,
    not decoded, and said in ``Page.notes``. The page's content is measured from its raw
    streams (:func:`ingest._budget.measure_page`); a heavy page (megabytes of text, tens of
    thousands of spans or drawing operators) is read in a child process killed at
    ``page_timeout_s``, with table finding, figure detection and font repair skipped; on other
    pages table detection (only where :func:`ingest._tables.may_have_tables` sees a cue) runs in
    such a child with what remains of ``page_timeout_s``. The budget is CPU seconds, with a
    wall-clock bound of a few times it (:class:`ingest._budget.PageClock`): a busy machine reads
    the same page the same way."""
    clock = PageClock(config.page_timeout_s)
    n = index + 1
    page = doc.load_page(index)
    rect = page.rect
    width, height = float(rect.width), float(rect.height)
    # a page too large for ``max_page_pixels`` at ``dpi`` (a poster, a fold-out drawing) is
    # rendered at the largest dpi that fits, not refused: its text layer does not depend on it
    dpi = fit_dpi(width, height, config.dpi, config.max_page_pixels, max_side_for(config))
    pixels = (width * dpi / 72.0) * (height * dpi / 72.0)
    if pixels > config.max_page_pixels:
        raise ResourceLimitError(
            path,
            f"page {n} is {width:.0f}x{height:.0f} pt: even at {dpi} dpi that is {pixels:,.0f} pixels, "
            f"above ingest.max_page_pixels={config.max_page_pixels:,}",
        )
    if dpi < config.dpi:
        logger.info("%s page %d is %.0fx%.0f pt: page image rendered at %d dpi (ingest.max_page_pixels, or the longest "
                    "side %s can hold)", path.name, n, width, height, dpi, config.image_format)
    walk = page_objects(doc, index)
    notes = [f"page {n}: {note}" for note in guard_page(doc, index, config.max_image_pixels, walk)]
    load = measure_page(doc, index, walk=walk)
    label = (page_labels(doc) if labels is None else labels)[index]
    if load.heavy:
        notes.append(f"page {n}: too heavy for layout analysis ({'; '.join(load.over)}): table finding, figure "
                     f"detection and font repair skipped, plain text kept")
        for note in notes:
            logger.warning("%s %s", path.name, note)
        return _heavy_page(page, doc_id, path, config, out_dir, dpi, label, notes, clock)
    for note in notes:
        logger.warning("%s %s", path.name, note)
    page_box = (float(rect.x0), float(rect.y0), float(rect.x1), float(rect.y1))

    layer = read_text_layer(page, path, n, config, repair)
    blocks, ocr, repaired, quality = layer.blocks, layer.ocr, layer.repaired, layer.quality
    if margins is not None:
        blocks = margins.strip(blocks, height, n)
    ordered = reading_order(blocks, width)
    text_blocks = tuple(
        TextBlock(doc_id, n, i, _bbox(b.bbox), b.text, ocr) for i, b in enumerate(ordered)
    )
    paths = sections.page(index, ordered) if sections is not None else None
    chunks = tuple(make_chunks(list(text_blocks), config.chunk_chars, config.chunk_overlap_chars, paths))

    # -- tables and figures ------------------------------------------------------------
    elements = _elements(page, config, path, n)
    tables: list[tuple[Box, str]] = []
    if config.find_tables and ordered and may_have_tables(
        ordered, elements, width, text_layer=quality.chars > 0, min_cues=config.table_cues,
    ):
        try:
            tables = clock.run(lambda: _tables.find_tables(page, path, n))
        except (Timeout, RuntimeError) as exc:
            notes.append(f"page {n}: table detection skipped, stopped by ingest.page_timeout_s={config.page_timeout_s:g} s ({exc})")
            logger.warning("%s %s", path.name, notes[-1])
    body = [b for b in ordered if not is_caption(b.text)]  # captions are never part of a figure
    all_lines = [ln for b in body for ln in (b.lines or ((b.bbox, b.text),))]
    page_area = width * height
    found: list[dict[str, Any]] = []
    for box, markdown in tables:
        if (ocr or repaired) and not quality.usable:  # the finder read the garbled text layer: use our lines
            markdown = "\n".join(_lines_in(box, ordered))
        found.append({"kind": "table", "source": "table", "box": box, "text": markdown})
    for region in cluster_regions(elements, page_box, exclude=[t[0] for t in tables]):
        core = region.bbox
        if (core[2] - core[0]) * (core[3] - core[1]) >= 0.85 * page_area:
            continue  # the page itself (a scan or a background), not a figure on it
        if is_decoration(region):
            continue
        box = grow_over_labels(core, all_lines)
        w, h = box[2] - box[0], box[3] - box[1]
        if w * h < config.min_figure_area or w < 20 or h < 20:
            continue
        if any(inside_share(box, t[0]) >= 0.5 for t in tables):
            continue
        inner = _lines_in(box, body)
        source = region.source
        if source == "vector" and region.n_drawings <= 4 and sum(len(t) for t in inner) >= 100:
            continue  # a framed or shaded box of text, not a figure
        found.append({"kind": "figure", "source": source, "box": box, "text": "\n".join(inner)})

    captions = match_captions([f["box"] for f in found], ordered)
    found_sorted = sorted(range(len(found)), key=lambda i: (round(found[i]["box"][1]), found[i]["box"][0]))
    figures: list[Figure] = []
    counters = {"figure": 0, "table": 0}
    for i in found_sorted:
        f = found[i]
        box, kind, text = f["box"], f["kind"], f["text"]
        if kind == "figure" and i not in captions and _in_margin(box, width, height):
            continue  # an uncaptioned logo or running-header ornament, not content
        if (
            kind == "figure"
            and f["source"] == "raster"
            and config.ocr_figures
            and config.ocr != "never"
            and not ocr
            and box[2] - box[0] >= _MIN_OCR_FIGURE[0]
            and box[3] - box[1] >= _MIN_OCR_FIGURE[1]
            and not assess_text(text).usable
        ):
            if clock.over():
                notes.append(f"page {n}: figure OCR skipped (figure {len(figures) + 1}), over ingest.page_timeout_s={config.page_timeout_s:g} s")
                logger.warning("%s %s", path.name, notes[-1])
            elif _ocr_available(config):
                text = ocr_region(page, box, config)
        counters[kind] += 1
        image_path = None
        if out_dir is not None:
            tag = "fig" if kind == "figure" else "tab"
            image_path = out_dir / f"p{n:04d}-{tag}{counters[kind]:02d}{suffix_for(config)}"
            pix = render(page, dpi, box)
            save_pil(pixmap_to_pil(pix), image_path, config)
            del pix
        cap = captions.get(i)
        if cap is not None:
            cap = caption_outside(caption_until_break(cap), box)
        if cap is not None and ocr:
            cap = caption_from_ocr_block(cap)
        figures.append(
            Figure(
                doc_id, n, len(figures), kind, _bbox(box),
                caption=cap.text if cap else None,
                caption_bbox=_bbox(cap.bbox) if cap else None,
                text=text, image_path=image_path, source=f["source"],
                section=() if paths is None or sections is None else section_at(ordered, paths, box[1], sections.start),
            )
        )

    image_path = _page_image(page, n, dpi, config, out_dir)
    page_text = "\n\n".join(b.text for b in text_blocks)
    record = Page(
        doc_id, n, width, height, page_text, ocr,
        image_path=image_path, dpi=dpi if image_path else None, label=label, notes=tuple(notes),
    )
    return PageContent(record, text_blocks, chunks, tuple(figures))


def _page_image(page: Any, n: int, dpi: int, config: IngestConfig, out_dir: Path | None) -> Path | None:
    if out_dir is None:
        return None
    image_path = out_dir / f"page-{n:04d}{suffix_for(config)}"
    pix = render(page, dpi)
    save_pil(pixmap_to_pil(pix), image_path, config)
    del pix
    return image_path


def _heavy_page(
    page: Any, doc_id: str, path: Path, config: IngestConfig, out_dir: Path | None, dpi: int, label: str | None,
    notes: list[str], clock: PageClock,
) -> PageContent:
    """A heavy page's bounded read: its plain text in reading order (or OCR), chunks and page
    image, each step in a child process killed when ``page_timeout_s`` runs out (the text is
    kept when only the image is late); no tables, figures, font repair or running-line learning."""
    n = page.number + 1
    width, height = float(page.rect.width), float(page.rect.height)

    def read() -> tuple[tuple[TextBlock, ...], tuple[TextChunk, ...], bool]:
        layer = read_plain_text(page, config)
        blocks = tuple(TextBlock(doc_id, n, i, _bbox(b.bbox), b.text, layer.ocr) for i, b in enumerate(layer.blocks))
        return blocks, tuple(make_chunks(list(blocks), config.chunk_chars, config.chunk_overlap_chars)), layer.ocr

    text_blocks: tuple[TextBlock, ...] = ()
    chunks: tuple[TextChunk, ...] = ()
    ocr = False
    image_path = None
    try:
        text_blocks, chunks, ocr = clock.run(read)
        image_path = clock.run(lambda: _page_image(page, n, dpi, config, out_dir))
    except (Timeout, RuntimeError) as exc:
        what = "page image not rendered" if text_blocks else "text and page image not read"
        notes.append(f"page {n}: {what} within ingest.page_timeout_s={config.page_timeout_s:g} s ({exc})")
        logger.warning("%s %s", path.name, notes[-1])
    record = Page(
        doc_id, n, width, height, "\n\n".join(b.text for b in text_blocks), ocr,
        image_path=image_path, dpi=dpi if image_path else None, label=label, notes=tuple(notes),
    )
    return PageContent(record, text_blocks, chunks)

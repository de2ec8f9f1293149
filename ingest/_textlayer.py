"""A PDF page's text: its text layer, cleaned; decoded where its fonts are broken; OCR where
there is no usable text at all."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import IngestConfig
from rag.errors import MissingDependencyError
from rag.lazy import require

from ingest._layout import RawBlock, block_from_lines, join_lines, keep_lines
from ingest._quality import TextQuality, assess_text
from ingest._render import fit_dpi, pixmap_to_array, render
from ingest._repair import GlyphRepair

__all__ = ["TextLayer", "read_text_layer", "read_plain_text", "group_ocr_lines", "ocr_region"]

logger = logging.getLogger("ingest")
Box = tuple[float, float, float, float]
_warned_missing_ocr = False


@dataclass(frozen=True)
class TextLayer:
    """The page's text blocks and where they came from."""

    blocks: list[RawBlock]
    ocr: bool  # read by OCR of the page
    repaired: bool  # the text layer with broken fonts decoded
    quality: TextQuality  # the verdict on the raw text layer


def read_text_layer(page: Any, path: Path, n: int, config: IngestConfig, repair: GlyphRepair | None) -> TextLayer:
    """Text blocks of page ``n``: the text layer without symbol noise; broken fonts decoded by
    ``repair``; a page OCR when the layer is empty or still garbled (as ``config`` allows)."""
    blocks = _text_blocks(page)
    quality = assess_text("\n".join(b.text for b in blocks))
    want_ocr = config.ocr == "always" or (config.ocr == "auto" and not quality.usable)
    ocr = repaired = False
    if (quality.usable and config.ocr != "never" and config.repair_text and repair is not None
            and any(_symbol_soup(t) for b in blocks for _, t in b.lines) and _ocr_available(config)):
        # a usable page with lines of symbol soup: a chart or formula font with a broken map
        decoded = repair.repair(page)
        if repair.decoded:
            logger.debug("%s page %d: %d characters of broken fonts decoded", path.name, n, repair.decoded)
            blocks, repaired = decoded, True
    if quality.usable:
        blocks = _without_noise(blocks)
    if (want_ocr and quality.verdict == "garbled" and config.ocr != "always" and config.repair_text and repair is not None
            and _ocr_available(config)):
        decoded = repair.repair(page)
        verdict = assess_text("\n".join(b.text for b in decoded))
        if verdict.usable:
            logger.debug("%s page %d: garbled text layer decoded from OCR of %d lines so far", path.name, n, repair.recognised_lines)
            blocks, want_ocr, repaired = decoded, False, True
        else:
            logger.debug("%s page %d: decoding the garbled text layer failed (%s); running OCR", path.name, n, verdict.reason)
    if want_ocr and _ocr_available(config):
        if not quality.usable:
            logger.debug("%s page %d: text layer %s (%s); running OCR", path.name, n, quality.verdict, quality.reason)
        blocks = group_ocr_lines(*_ocr_clip(page, None, config))
        ocr = True
    return TextLayer(blocks, ocr, repaired, quality)


def read_plain_text(page: Any, config: IngestConfig, max_sorted: int = 2_000) -> TextLayer:
    """A heavy page's text, read the cheap way: MuPDF's blocks (one pass, no spans or fonts),
    in reading order when there are at most ``max_sorted`` of them, else top to bottom, left
    to right; OCR when that text is not usable and ``config`` allows it. No repair, no noise
    filtering: each of those costs time per line."""
    from ingest._layout import reading_order

    blocks: list[RawBlock] = []
    for b in page.get_text("blocks", sort=False):
        if len(b) > 6 and b[6] != 0:
            continue
        box, text = _box(b), " ".join(str(b[4]).split())
        if text:
            blocks.append(RawBlock(box, text, ((box, text),)))
    quality = assess_text("\n".join(b.text for b in blocks[:5_000]))
    if config.ocr == "always" or (config.ocr == "auto" and not quality.usable):
        if _ocr_available(config):
            return TextLayer(group_ocr_lines(*_ocr_clip(page, None, config)), True, False, quality)
    if len(blocks) <= max_sorted:
        return TextLayer(reading_order(blocks, float(page.rect.width)), False, False, quality)
    return TextLayer(_packed(sorted(blocks, key=lambda b: (round(b.bbox[1]), b.bbox[0])), config.chunk_chars), False, False, quality)


def _packed(blocks: list[RawBlock], limit: int) -> list[RawBlock]:
    """Consecutive blocks (top to bottom) packed into blocks of about ``limit`` characters: a
    page of 100,000 one-letter spans becomes a few hundred blocks, not 100,000 records."""
    out: list[RawBlock] = []
    texts: list[str] = []
    size = 0
    x0 = y0 = float("inf")
    x1 = y1 = float("-inf")
    row = None
    for b in blocks:
        if texts and size + len(b.text) > limit:
            box = (x0, y0, x1, y1)
            text = "".join(texts).strip()
            out.append(RawBlock(box, text, ((box, text),)))
            texts, size, x0, y0, x1, y1 = [], 0, float("inf"), float("inf"), float("-inf"), float("-inf")
        key = round(b.bbox[1])
        texts.append(("" if not texts else " " if key == row else "\n") + b.text)
        row = key
        size += len(b.text) + 1
        x0, y0, x1, y1 = min(x0, b.bbox[0]), min(y0, b.bbox[1]), max(x1, b.bbox[2]), max(y1, b.bbox[3])
    if texts:
        box = (x0, y0, x1, y1)
        text = "".join(texts).strip()
        out.append(RawBlock(box, text, ((box, text),)))
    return out


def _box(b: Any) -> Box:
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def _text_blocks(page: Any) -> list[RawBlock]:
    import pymupdf

    flags = pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES
    blocks: list[RawBlock] = []
    for b in page.get_text("dict", flags=flags)["blocks"]:
        if b.get("type", 0) != 0:
            continue
        lines: list[tuple[Box, str]] = []
        sizes: dict[float, int] = {}
        for line in b.get("lines", ()):
            spans = line.get("spans", ())
            text = "".join(span["text"] for span in spans).strip()
            if text:
                lines.append((_box(line["bbox"]), text))
                for span in spans:
                    size = round(float(span.get("size", 0.0)), 1)
                    sizes[size] = sizes.get(size, 0) + len(span["text"].strip())
        text = join_lines([t for _, t in lines])
        if text:
            size = max(sizes, key=lambda k: (sizes[k], k)) if sizes else 0.0
            blocks.append(RawBlock(_box(b["bbox"]), text, tuple(lines), size))
    return blocks


def _symbol_noise(text: str) -> bool:
    """A line of mostly punctuation (chart labels in a font without a character map, e.g.
    ``%#"  $!"  &'()*+,"``): noise in chunks, and its figure is found from its drawing."""
    visible = [c for c in text if not c.isspace()]
    alnum = sum(c.isalnum() for c in visible)
    if len(visible) < 6:  # short: noise only when it has no letter or digit at all ('!"', '-./"')
        return len(visible) >= 2 and alnum == 0
    return alnum < 0.3 * len(visible)


def _symbol_soup(text: str) -> bool:
    """A line that reads like a font with a broken map (``<>.5:<91#3$4!56#``): more
    punctuation than a sentence or a number carries."""
    visible = [c for c in text if not c.isspace()]
    if len(visible) < 4:
        return False
    alnum = sum(c.isalnum() for c in visible)
    punct = sum(c in _ASCII_PUNCT for c in visible)
    return alnum < 0.6 * len(visible) and punct > 0.3 * len(visible)


_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _without_noise(blocks: list[RawBlock]) -> list[RawBlock]:
    """Blocks of a usable text layer without their symbol-noise lines."""
    return keep_lines(blocks, lambda _box, text: not _symbol_noise(text))


def group_ocr_lines(lines: Sequence[tuple[Box, str]], layout: Sequence[Box] | None = None) -> list[RawBlock]:
    """Group OCR lines into paragraph blocks: a line joins the block above it when it
    overlaps it horizontally and starts within ~0.8 line heights below its last line.

    ``layout``: one box per line to judge that on instead of the line's own box (a skewed
    scan's lines turned upright, :func:`ingest._ocr.deskewed_boxes`); blocks keep the lines'
    own boxes."""
    geometry = list(layout) if layout is not None else [box for box, _ in lines]
    if len(geometry) != len(lines):
        raise ValueError(f"{len(lines)} lines but {len(geometry)} layout boxes")
    groups: list[list[int]] = []
    for i in sorted(range(len(lines)), key=lambda k: (geometry[k][1], geometry[k][0])):
        box = geometry[i]
        height = box[3] - box[1]
        for g in reversed(groups):
            last = geometry[g[-1]]
            gap = box[1] - last[3]
            overlap = min(box[2], last[2]) - max(box[0], last[0])
            if -0.5 * height <= gap <= 0.8 * height and overlap > 0 and abs(box[0] - last[0]) < 4 * height:
                g.append(i)
                break
        else:
            groups.append([i])
    return [block_from_lines([lines[i] for i in g]) for g in groups]


def _ocr_clip(page: Any, clip: Box | None, config: IngestConfig) -> tuple[list[tuple[Box, str]], list[Box]]:
    """OCR the page (or a clip of it) rendered at ``ocr_dpi``: the lines (boxes in page
    points) and, per line, its box for layout (turned upright when the scan is skewed).

    The render is scaled down to stay within ``max_page_pixels`` (OCR of a huge page at a
    lower resolution rather than a failure), and to the resolution of the raster image(s) it
    shows when they cover it (:func:`native_dpi`): a 187-px logo rendered at 144 dpi is 4x its
    pixels, interpolated, for no new detail (rapidocr scales its detector input to a 736-px
    shorter side either way)."""
    from ingest._ocr import layout_boxes, ocr_array

    import pymupdf

    rect = pymupdf.Rect(clip) if clip else page.rect
    dpi = fit_dpi(rect.width, rect.height, config.ocr_dpi, config.max_page_pixels)
    native = native_dpi(page, rect)
    if native is not None and native < dpi:
        dpi = max(native, min(dpi, _MIN_OCR_DPI))
    pix = render(page, dpi, rect)
    array = pixmap_to_array(pix)
    del pix
    scale = 72.0 / dpi
    found = ocr_array(array)
    lines = [
        ((rect.x0 + ln.x0 * scale, rect.y0 + ln.y0 * scale, rect.x0 + ln.x1 * scale, rect.y0 + ln.y1 * scale), ln.text)
        for ln in found
    ]
    upright = layout_boxes(found)
    if upright is None:
        return lines, [box for box, _ in lines]
    return lines, [(b[0] * scale, b[1] * scale, b[2] * scale, b[3] * scale) for b in upright]


_MIN_OCR_DPI = 72  # a low-resolution image is still rendered at least at this dpi (or ``ocr_dpi`` when lower)
_COVERED = 0.8  # share of the region raster images must cover for their resolution to set its dpi


def native_dpi(page: Any, rect: Any) -> int | None:
    """The highest resolution (pixels per inch, rounded up) of the raster images drawn over
    ``rect`` when together they cover at least 80 % of it (a scan, a photograph, a screenshot);
    None when the region is mostly vector art, or holds text of the text layer (a label drawn
    over a picture): their detail grows with the dpi."""
    import pymupdf

    area = rect.get_area()
    if area <= 0 or page.get_text("words", clip=rect):
        return None
    covered, best = 0.0, 0.0
    for info in page.get_image_info():
        box = pymupdf.Rect(info["bbox"])
        if box.is_empty or not box.intersects(rect):
            continue
        covered += (box & rect).get_area()
        # the transform maps the image's unit square to the page: its columns are the lengths
        # (in points) its width and height are drawn at, turned or not
        a, b, c, d = (float(v) for v in info["transform"][:4])
        across, down = math.hypot(a, b), math.hypot(c, d)
        if across > 0 and down > 0:
            best = max(best, 72.0 * max(info["width"] / across, info["height"] / down))
    if covered < _COVERED * area or best <= 0:
        return None
    return int(-(-best // 1))


def ocr_region(page: Any, clip: Box, config: IngestConfig) -> str:
    return "\n".join(t for _, t in _ocr_clip(page, clip, config)[0])


def _ocr_available(config: IngestConfig) -> bool:
    global _warned_missing_ocr
    try:
        require("rapidocr", extra="ocr", purpose="ingest.ocr='always'")
    except MissingDependencyError:
        if config.ocr == "always":
            raise
        # ocr='auto': a missing OCR engine degrades ingestion (said once), it does not stop it
        if not _warned_missing_ocr:
            logger.warning("rapidocr is not installed: pages without a usable text layer stay without text")
            _warned_missing_ocr = True
        return False
    return True



"""An image file (PNG, JPEG, TIFF, WebP, GIF) read as a document of one page per frame.

A multi-frame TIFF (a scanned stack) or an animated GIF/WebP/PNG gives one page per frame, up
to ``ingest.max_pages`` frames; the frames past it are skipped with a warning that says how
many were read and how many skipped. Coordinates are pixels (one point = one pixel). The page image written to ``image_dir``
is the image itself in the configured format, scaled down to at most ``MAX_SIDE`` pixels
on its longer side; OCR runs on the full-resolution image.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from rag.config import IngestConfig
from rag.errors import CorruptDocumentError, ResourceLimitError
from rag.types import BBox, Figure, Page, PageContent, TextBlock

from ingest._layout import make_chunks, reading_order
from ingest._render import save_pil, suffix_for

__all__ = ["open_image", "frame_count", "extract_image_page", "MAX_SIDE"]

logger = logging.getLogger("ingest")
MAX_SIDE = 4096
_MIN_OCR_SIDE = 8  # pixels: a thinner image holds no line of text (and OCR's resize fails on it)


def open_image(path: Path, config: IngestConfig) -> Any:
    """Open an image lazily (header only) and check its size against ``max_image_pixels``."""
    from PIL import Image, UnidentifiedImageError

    from ingest._guards import pillow_limit

    try:
        with warnings.catch_warnings(), pillow_limit(config.max_image_pixels):  # Pillow's 179 MP must not override ours
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:  # Pillow's own check, at twice our limit
        raise ResourceLimitError(
            path, f"image is a decompression bomb: {exc} (by its header, {_header_pixels(exc)} pixels, "
            f"above ingest.max_image_pixels={config.max_image_pixels:,})",
        ) from exc
    except UnidentifiedImageError as exc:
        raise CorruptDocumentError(path, "image header cannot be decoded") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptDocumentError(path, f"image cannot be opened: {exc}") from exc
    w, h = image.size
    if w <= 0 or h <= 0:
        image.close()
        raise CorruptDocumentError(path, f"image has size {w}x{h}")
    if w * h > config.max_image_pixels:
        image.close()
        raise ResourceLimitError(
            path, f"image is {w}x{h} = {w * h:,} pixels, above ingest.max_image_pixels={config.max_image_pixels:,}"
        )
    return image


def _header_pixels(exc: Exception) -> str:
    import re

    found = re.search(r"\((\d+) pixels\)", str(exc))
    return f"{int(found.group(1)):,}" if found else "more"


def frame_count(image: Any, path: Path, config: IngestConfig) -> int:
    """How many frames of an open image become pages: all of them, at most ``max_pages``
    (the rest are skipped, with a warning that counts them)."""
    try:
        frames = int(getattr(image, "n_frames", 1))
    except Exception as exc:  # Pillow walks the frame chain: a broken one raises
        raise CorruptDocumentError(path, f"image frames cannot be counted: {exc}") from exc
    if frames > config.max_pages:
        logger.warning(
            "%s: %d frames, above ingest.max_pages=%d: frames 1-%d are read as pages, the other %d are skipped",
            path.name, frames, config.max_pages, config.max_pages, frames - config.max_pages,
        )
        return config.max_pages
    return max(frames, 1)


def _load_rgb(image: Any, path: Path, index: int, config: IngestConfig) -> Any:
    try:
        image.seek(index)
        w, h = image.size
        if w * h > config.max_image_pixels:  # each frame of a TIFF has its own size
            raise ResourceLimitError(
                path, f"frame {index + 1} is {w}x{h} = {w * h:,} pixels, above ingest.max_image_pixels={config.max_image_pixels:,}"
            )
        image.load()
        return image.convert("RGB")
    except ResourceLimitError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, struct.error... on broken data
        where = f"frame {index + 1} " if index else ""
        raise CorruptDocumentError(path, f"image {where}data cannot be decoded: {exc}") from exc


def ocr_image(rgb: Any, page: int, config: IngestConfig) -> tuple[list[Any], bool, list[str]]:
    """OCR of a whole RGB image (an image file's frame, a video frame): its text blocks in
    reading order, whether OCR ran, and notes for what was skipped (an image too thin to hold
    a line, an OCR engine failure: the image stays, without text)."""
    w, h = rgb.size
    if config.ocr == "never":
        return [], False, []
    if min(w, h) < _MIN_OCR_SIDE:
        return [], False, [f"page {page}: the image is {w}x{h} pixels, too thin to hold a line of text "
                           f"({_MIN_OCR_SIDE} pixels at least); OCR skipped, the image is indexed without text"]
    import numpy as np

    from ingest._ocr import layout_boxes, ocr_array
    from ingest._pdf import group_ocr_lines

    try:
        found = ocr_array(np.asarray(rgb))
    except Exception as exc:  # noqa: BLE001 - the OCR engine's own failures (a resize it cannot do): the image stays
        return [], False, [f"page {page}: OCR of the {w}x{h} image failed ({type(exc).__name__}: "
                           f"{str(exc) or 'no message'}); the image is indexed without text"]
    lines = [((ln.x0, ln.y0, ln.x1, ln.y1), ln.text) for ln in found]
    return reading_order(group_ocr_lines(lines, layout_boxes(found)), float(w)), True, []


def extract_image_page(
    image: Any, doc_id: str, path: Path, config: IngestConfig, out_dir: Path | None, index: int = 0
) -> PageContent:
    """One page of an image document (its frame ``index``, 0-based): OCR text, blocks, chunks,
    one whole-image figure."""
    rgb = _load_rgb(image, path, index, config)
    n = index + 1
    w, h = rgb.size
    blocks, ocr, notes = ocr_image(rgb, n, config)
    for note in notes:
        logger.warning("%s %s", path.name, note)
    text_blocks = tuple(
        TextBlock(doc_id, n, i, BBox(*b.bbox), b.text, True) for i, b in enumerate(blocks)
    )
    chunks = tuple(make_chunks(list(text_blocks), config.chunk_chars, config.chunk_overlap_chars))
    text = "\n\n".join(b.text for b in text_blocks)
    image_path = None
    if out_dir is not None:
        image_path = out_dir / f"page-{n:04d}{suffix_for(config)}"
        small = rgb
        if max(w, h) > MAX_SIDE:
            small = rgb.resize((max(1, round(w * min(1.0, MAX_SIDE / max(w, h)))), max(1, round(h * min(1.0, MAX_SIDE / max(w, h))))))
        save_pil(small, image_path, config)
    figure = Figure(
        doc_id, n, 0, "figure", BBox(0.0, 0.0, float(w), float(h)),
        text=text, image_path=image_path, source="image",
    )
    page = Page(doc_id, n, float(w), float(h), text, ocr, image_path=image_path, dpi=None, label=None, notes=tuple(notes))
    return PageContent(page, text_blocks, chunks, (figure,))

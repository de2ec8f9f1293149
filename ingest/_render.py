"""Write page images and crops as compact files; turn pixmaps into arrays for OCR."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rag.config import IngestConfig

__all__ = ["suffix_for", "save_pil", "pixmap_to_pil", "pixmap_to_array", "fit_dpi", "max_side_for", "render"]

logger = logging.getLogger("ingest")
_SUFFIX = {"webp": ".webp", "png": ".png", "jpeg": ".jpg"}
#: the longest side each format can encode (WebP: 14-bit sizes; JPEG: 16-bit); PNG has no such limit
_MAX_SIDE = {"webp": 16_383, "jpeg": 65_535, "png": None}


def render(page: Any, dpi: int, clip: Any = None) -> Any:
    """``page.get_pixmap(dpi=dpi, clip=clip, alpha=False)`` in RGB, from one display
    list per page: PyMuPDF's ``get_pixmap`` interprets the page's content into a new display
    list at every call, and a page is rendered several times (its image, each figure crop,
    each line glyph repair reads). The list is kept on the page object while it lives."""
    import pymupdf

    dl = getattr(page, "_mmrag_display_list", None)
    if dl is None:
        dl = page.get_displaylist(annots=True)
        try:
            page._mmrag_display_list = dl
        except AttributeError:  # a page object that takes no attributes: a list per call
            pass
    zoom = dpi / 72
    pix = dl.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB, alpha=False, clip=clip)
    pix.set_dpi(dpi, dpi)
    return pix


def max_side_for(config: IngestConfig) -> int | None:
    """The longest side, in pixels, an image in ``config.image_format`` can have (None: no limit)."""
    return _MAX_SIDE[config.image_format]


def suffix_for(config: IngestConfig) -> str:
    return _SUFFIX[config.image_format]


def pixmap_to_pil(pix: Any) -> Any:
    from PIL import Image

    mode = "RGB" if pix.n == 3 else ("L" if pix.n == 1 else "RGBA")
    return Image.frombytes(mode, (pix.width, pix.height), pix.samples)


def pixmap_to_array(pix: Any) -> Any:
    import numpy as np

    arr = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)
    if pix.n == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif pix.n == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


def save_pil(image: Any, path: Path, config: IngestConfig) -> Path:
    """Save a PIL image in the configured format (webp/jpeg lossy at ``image_quality``, png lossless)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    side = max_side_for(config)
    if side is not None and max(image.size) > side:  # callers size pages with fit_dpi; this catches the rest
        logger.info("%s: %dx%d pixels is more than %s can hold; scaled to fit %d pixels", path.name, *image.size,
                    config.image_format, side)
        image = image.copy()
        image.thumbnail((side, side))
    if config.image_format == "png":
        image.save(path, format="PNG", optimize=False)
    elif config.image_format == "jpeg":
        # Pillow's libjpeg-turbo: ~2 ms a 110 dpi page (PyMuPDF's own pix.tobytes("jpeg") ~34 ms)
        image.save(path, format="JPEG", quality=config.image_quality)
    else:
        # method 2: measured ~2x faster than the default 4 on book and paper pages for ~2% more bytes
        image.save(path, format="WEBP", quality=config.image_quality, method=2)
    return path


def fit_dpi(width_pt: float, height_pt: float, dpi: int, max_pixels: int, max_side: int | None = None) -> int:
    """The largest dpi <= ``dpi`` whose render of a page this size stays within ``max_pixels``
    and, when given, has no side longer than ``max_side`` pixels (an image format's limit)."""
    pixels = (width_pt * dpi / 72.0) * (height_pt * dpi / 72.0)
    fitted = dpi
    if pixels > max_pixels:
        fitted = max(int(dpi * (max_pixels / pixels) ** 0.5), 1)
    longest = max(width_pt, height_pt)
    if max_side is not None and longest * fitted / 72.0 > max_side:
        fitted = max(int(max_side * 72.0 / longest), 1)
    return fitted

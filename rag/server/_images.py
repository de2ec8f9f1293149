"""Highlighted crops of page images: parse a box, scale points to pixels, draw, crop."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi import HTTPException

__all__ = ["parse_bbox", "crop_png"]


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise HTTPException(400, f"bbox must be four numbers x0,y0,x1,y1, got {text!r}") from exc
    if not all(abs(v) < 1e7 for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        raise HTTPException(400, f"bbox must have x0 < x1 and y0 < y1 (PDF points), got {text!r}")
    return x0, y0, x1, y1


def crop_png(
    image_path: Path, box: tuple[float, float, float, float], margin: float, page_width: float | None = None, scale: float = 1.0
) -> bytes:
    """The crop around ``box`` (page coordinates) with the box drawn. Page coordinates become
    the image's pixels by ``image width / page_width`` when the page width is known, else by
    ``scale``."""
    from PIL import Image, ImageDraw

    with Image.open(image_path) as src:
        image = src.convert("RGB")
    scale = image.width / page_width if page_width else scale
    px = [v * scale for v in box]
    m = margin * scale
    left, top = max(0, int(px[0] - m)), max(0, int(px[1] - m))
    right, bottom = min(image.width, int(px[2] + m) + 1), min(image.height, int(px[3] + m) + 1)
    if right <= left or bottom <= top:
        raise HTTPException(400, f"bbox {list(box)} lies outside the page")
    ImageDraw.Draw(image).rectangle(px, outline=(230, 30, 30), width=3)
    buf = io.BytesIO()
    image.crop((left, top, right, bottom)).save(buf, format="PNG")
    return buf.getvalue()

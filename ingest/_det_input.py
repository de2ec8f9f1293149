"""What the OCR text detector is shown: rapidocr's resize of an image, capped both ways.

rapidocr scales an image's shorter side up to 736 px before detection and leaves a larger one
as it is; the detector's CPU grows with the pixels it sees, so :func:`detector_size` stops the
upscaling at a 1,280-px longer side and shrinks a large page render towards it (by at most a
quarter). :func:`cap_upscale` gives rapidocr's detector this input (:class:`_DetInput`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["cap_upscale", "detector_size"]

logger = logging.getLogger("ingest._ocr")

_MAX_UPSCALED_SIDE = 1280  # upscaling for the detector stops when the longer side reaches this (px)
#: a larger image (a page rendered at ``ocr_dpi``: an A4 page at 144 dpi is 1,684 px high) is
#: shrunk towards this longer side for the detector, by at most :data:`_MAX_SHRINK` (a page
#: then reads as at >= 108 dpi; the recogniser still reads each line from the full image)
_MAX_DETECTED_SIDE = 1280
_MAX_SHRINK = 0.75


class _DetInput:
    """The detector's input: rapidocr's resize (:func:`detector_size`) and normalisation, in
    float32 (rapidocr normalises in float64 and casts after: 4 % of detection's CPU).

    rapidocr upscales every image whose shorter side is under 736 px to 736: freeculture.pdf's
    66-px-high logo went to the detector at 2,112 x 736 px (11x its pixels per side, ~1 s of
    CPU for two words) and its wide charts at 1,845 x 736. Upscaling now stops where the
    longer side reaches 1,280 px: on freeculture's 18 OCR'd figures the same lines are found
    (the 4 figures it touches: 9.4 -> 8.1 s of detection CPU in one run; the logo 0.98 ->
    0.35 s) and the words differ in one ("Diotionary" -> "Dictionary"). Tried and rejected: at
    most 2x per side (a noise photograph rendered at its own 72 dpi then showed the detector
    a text box that is not there) and a 1,024-px longer side (figures 589 px wide lost or
    gained lines)."""

    __slots__ = ("limit", "mean", "scale")

    def __init__(self, limit_side_len: int, mean: Sequence[float], std: Sequence[float]) -> None:
        import numpy as np

        self.limit = int(limit_side_len)
        self.scale = (1.0 / (255.0 * np.asarray(std, dtype=np.float32))).astype(np.float32)
        self.mean = (np.asarray(mean, dtype=np.float32) / np.asarray(std, dtype=np.float32)).astype(np.float32)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        import cv2
        import numpy as np

        h, w = img.shape[:2]
        height, width = detector_size(h, w, self.limit)
        if (height, width) != (h, w):
            img = cv2.resize(img, (width, height))
        out = img.astype(np.float32) * self.scale - self.mean
        return np.ascontiguousarray(out.transpose((2, 0, 1))[np.newaxis])


def detector_size(height: int, width: int, limit_side_len: int = 736) -> tuple[int, int]:
    """The (height, width) the detector sees an image of ``height`` x ``width`` pixels at:
    rapidocr's upscaling of the shorter side to ``limit_side_len``, stopped where the longer
    side reaches :data:`_MAX_UPSCALED_SIDE`; an image whose longer side is over
    :data:`_MAX_DETECTED_SIDE` is shrunk towards it by at most :data:`_MAX_SHRINK` (the
    detector's CPU grows with its pixels: 25 % less OCR CPU on the evaluation sets' page scans,
    the same lines found; BENCHMARKS.md, session 17); each side rounded to a multiple of 32
    (at least 32)."""
    short, long = min(height, width), max(height, width)
    ratio = limit_side_len / short if 0 < short < limit_side_len else 1.0
    if ratio > 1.0 and long * ratio > _MAX_UPSCALED_SIDE:
        ratio = max(1.0, _MAX_UPSCALED_SIDE / long)
    elif ratio == 1.0 and long > _MAX_DETECTED_SIDE:
        ratio = max(_MAX_SHRINK, _MAX_DETECTED_SIDE / long)
    return (max(32, round(int(height * ratio) / 32) * 32), max(32, round(int(width * ratio) / 32) * 32))


def cap_upscale(model: Any) -> None:
    """Give rapidocr's text detector :class:`_DetInput` (any other model: unchanged). A
    detector without rapidocr's ``get_preprocess``/``limit_side_len``/``mean``/``std`` keeps
    its own resize (said at debug level)."""
    if not hasattr(model, "get_preprocess"):
        return
    limit_type = getattr(model, "limit_type", None)
    if getattr(limit_type, "value", limit_type) != "min" or not all(
        hasattr(model, a) for a in ("limit_side_len", "mean", "std")
    ):
        logger.debug("rapidocr's detector is not the one known here: its own input size kept")
        return
    det_input = _DetInput(model.limit_side_len, list(model.mean), list(model.std))
    model.get_preprocess = lambda: det_input

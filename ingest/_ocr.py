"""OCR with rapidocr: one engine per process, created on first use, quiet and offline.

rapidocr ships its ONNX models inside the wheel (``rapidocr/models``), so nothing is
downloaded. Its own logger prints at INFO level by default; we create the engine at
``error`` level. Threads per onnxruntime session: one in extraction worker processes (two
workers already keep both cores busy, and rapidocr's default of all cores per session spent
1.5x the CPU time on the same figures through oversubscription: 52 s against 34 s on the 16
raster figures of the shared evaluation set); two in the ingesting process itself, which
extracts alone when it reads a single document: an 11-page scanned PDF went from 83 s to 48 s,
freeculture.pdf (text and 20 OCR'd figures, the embedding thread running beside) from 50.5 s to
45.2 s. :func:`use_in_worker` switches a worker to one thread.

Tried and rejected: detection at the rendered size instead of rapidocr's upscaling of small
images to a 736 px shorter side. It cut figure OCR CPU by another 2x but changed enough
figure text to lower the evaluation set's recall@1 (0.833 -> 0.800).
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.lazy import require

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["OcrLine", "deskewed_boxes", "get_engine", "layout_boxes", "ocr_array", "recognize_lines", "skew_degrees",
           "use_in_worker"]

logger = logging.getLogger(__name__)
_ENGINE: Any = None
_LOCK = threading.Lock()
_THREADS = min(2, os.cpu_count() or 1)


def _params() -> dict[str, Any]:
    return {
        "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": _THREADS,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }


_ABANDONED: list[Any] = []


def use_in_worker() -> None:
    """In an extraction worker process: one OCR thread, and a fresh engine rather than one
    inherited through fork (its onnxruntime thread pool did not survive the fork, and its lock
    may have been held). The inherited engine is kept referenced, never destroyed: tearing down
    its sessions waits on the parent's pool threads, forever (a test run hung there). Workers
    end with ``os._exit``, which skips destructors."""
    global _ENGINE, _LOCK, _THREADS
    if _ENGINE is not None:
        _ABANDONED.append(_ENGINE)
    _ENGINE, _LOCK, _THREADS = None, threading.Lock(), 1


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One recognised line: box in the input image's pixels, text, confidence, and the
    detector's quadrilateral (top-left, top-right, bottom-right, bottom-left) when known."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    score: float
    quad: tuple[tuple[float, float], ...] = ()


def get_engine() -> Any:
    """The process-wide RapidOCR engine (created once; later calls return the same object)."""
    global _ENGINE
    if _ENGINE is None:
        with _LOCK:
            if _ENGINE is None:
                rapidocr = require("rapidocr", extra="ocr", purpose="OCR of scanned pages")
                _ENGINE = rapidocr.RapidOCR(params=_params())
                logger.debug("rapidocr engine created")
    return _ENGINE


def ocr_array(image: np.ndarray, min_score: float = 0.5) -> list[OcrLine]:
    """OCR an RGB uint8 array (H, W, 3); lines in pixel coordinates of ``image``."""
    engine = get_engine()
    result = engine(image)
    boxes = getattr(result, "boxes", None)
    txts = getattr(result, "txts", None)
    if boxes is None or txts is None or len(txts) == 0:
        return []
    scores = getattr(result, "scores", None) or [1.0] * len(txts)
    lines: list[OcrLine] = []
    for box, text, score in zip(boxes, txts, scores):
        text = str(text).strip()
        if not text or float(score) < min_score:
            continue
        quad = tuple((float(p[0]), float(p[1])) for p in box)
        xs = [x for x, _ in quad]
        ys = [y for _, y in quad]
        lines.append(OcrLine(max(min(xs), 0.0), max(min(ys), 0.0), max(xs), max(ys), text, float(score), quad))
    return lines


def skew_degrees(quads: Sequence[Sequence[tuple[float, float]]], min_lines: int = 3, min_degrees: float = 0.3) -> float:
    """The page's skew: the median slope of the top edges of its long lines (at least 4x as wide
    as tall), in degrees, positive when lines fall to the right; 0 when fewer than ``min_lines``
    long lines agree or the slope is under ``min_degrees`` (a straight scan)."""
    slopes = []
    for q in quads:
        if len(q) != 4:
            continue
        (x0, y0), (x1, y1), _, (x3, y3) = q
        width, height = math.hypot(x1 - x0, y1 - y0), math.hypot(x3 - x0, y3 - y0)
        if height > 0 and width >= 4 * height and x1 > x0:
            slopes.append(math.degrees(math.atan2(y1 - y0, x1 - x0)))
    if len(slopes) < min_lines:
        return 0.0
    angle = statistics.median(slopes)
    return angle if abs(angle) >= min_degrees else 0.0


def deskewed_boxes(quads: Sequence[Sequence[tuple[float, float]]], degrees: float) -> list[tuple[float, float, float, float]]:
    """Each quadrilateral turned by ``-degrees`` about the origin, as an upright box.

    On a skewed scan the upright box of a long line spans the height of two or three lines;
    turned back, lines are as tall as their text again, so grouping them into paragraphs and
    columns works as on a straight page. Only for layout: the turned boxes are not page boxes."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    out = []
    for q in quads:
        xs = [x * c + y * s for x, y in q]
        ys = [-x * s + y * c for x, y in q]
        out.append((min(xs), min(ys), max(xs), max(ys)))
    return out


def layout_boxes(lines: Sequence[OcrLine]) -> list[tuple[float, float, float, float]] | None:
    """The lines' boxes turned upright when their page is skewed (input pixels, for grouping
    them into blocks); None on a straight page."""
    quads = [ln.quad for ln in lines]
    skew = skew_degrees(quads)
    return deskewed_boxes(quads, skew) if skew and all(len(q) == 4 for q in quads) else None


def recognize_lines(images: list[np.ndarray]) -> list[tuple[str, float]]:
    """Read single text lines (RGB arrays, one line each) with the recogniser alone: no
    detection, no angle classifier. Returns (text, confidence) per image, in order."""
    if not images:
        return []
    engine = get_engine()
    result = engine.recognize_txt(list(images))
    txts = list(getattr(result, "txts", None) or [])
    scores = list(getattr(result, "scores", None) or [])
    out = []
    for i in range(len(images)):
        text = str(txts[i]).strip() if i < len(txts) else ""
        score = float(scores[i]) if i < len(scores) else 0.0
        out.append((text, score))
    return out

"""OCR with rapidocr: one engine per process, created on first use, quiet and offline.

rapidocr ships its ONNX models inside the wheel (``rapidocr/models``), so nothing is
downloaded. Its own logger prints at INFO level by default; we create the engine at
``error`` level, with one onnxruntime thread per session: ingestion already keeps every core busy
(an embedding thread, extraction worker processes), and rapidocr's default (all cores, per
session) spent 1.5x the CPU time on the same figures through oversubscription (52 s against
34 s on the 16 raster figures of the shared evaluation set).

Tried and rejected: detection at the rendered size instead of rapidocr's upscaling of small
images to a 736 px shorter side. It cut figure OCR CPU by another 2x but changed enough
figure text to lower the evaluation set's recall@1 (0.833 -> 0.800).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.errors import MissingDependencyError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["OcrLine", "get_engine", "ocr_array", "recognize_lines"]

logger = logging.getLogger(__name__)
_ENGINE: Any = None
_LOCK = threading.Lock()
_PARAMS = {
    "Global.log_level": "error",
    "EngineConfig.onnxruntime.intra_op_num_threads": 1,
    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
}


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One recognised line: box in the input image's pixels, text, confidence."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    score: float


def get_engine() -> Any:
    """The process-wide RapidOCR engine (created once; later calls return the same object)."""
    global _ENGINE
    if _ENGINE is None:
        with _LOCK:
            if _ENGINE is None:
                try:
                    from rapidocr import RapidOCR
                except ImportError as exc:
                    raise MissingDependencyError("rapidocr", extra="ocr", purpose="OCR of scanned pages") from exc
                _ENGINE = RapidOCR(params=_PARAMS)
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
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        lines.append(OcrLine(max(min(xs), 0.0), max(min(ys), 0.0), max(xs), max(ys), text, float(score)))
    return lines


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

"""OCR with rapidocr: one engine per process, created on first use, quiet and offline.

rapidocr ships its ONNX models inside the wheel (``rapidocr/models``), so nothing is
downloaded. Its own logger prints at INFO level by default; we create the engine at
``error`` level. Threads per onnxruntime session: one in extraction worker processes (two
workers already keep both cores busy, and rapidocr's default of all cores per session spent
1.5x the CPU time on the same figures through oversubscription: 52 s against 34 s on the 16
raster figures of the shared evaluation set); two in the ingesting process itself, which
extracts alone when it reads a single document: an 11-page scanned PDF went from 83 s to 48 s,
freeculture.pdf (text and 20 OCR'd figures, the embedding thread running beside) from 50.5 s to
45.2 s. :func:`use_in_worker` switches a worker to one thread. Idle onnxruntime threads sleep
rather than spin (:func:`_as_loaded`): spinning cost a third more CPU for the same words.

Identical images are OCR'd once per process (:func:`ocr_array` remembers the last few hundred
by a digest of their pixels): a logo on every page, a blank scanned page, a repeated frame.

Less work per image than rapidocr's own pipeline, for the same or better words
(:func:`_upright_read`, :class:`ingest._det_input._DetInput`): the angle classifier only on lines that may be
upside down, and no upscaling for the detector past a 1,280-px longer side.

Tried and rejected: detection at the rendered size instead of rapidocr's upscaling of small
images to a 736 px shorter side. It cut figure OCR CPU by another 2x but changed enough
figure text to lower the evaluation set's recall@1 (0.833 -> 0.800). Recognition batches of
1 or 12 instead of 6, and padding short lines to 160 or 96 px instead of 320: within the
noise of a shared machine, or ~15 % less recognition CPU for ~25 changed lines.
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

from ingest._det_input import _MAX_DETECTED_SIDE, _MAX_UPSCALED_SIDE, cap_upscale, detector_size  # noqa: F401  (sizes: tests)
from rag.lazy import require
from rag.lru import LRU

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["OcrLine", "deskewed_boxes", "detector_size", "get_engine", "layout_boxes", "ocr_array", "recognize_lines", "skew_degrees",
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
    _READ.after_fork()


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
                engine = rapidocr.RapidOCR(params=_params())
                _as_loaded(engine)
                _ENGINE = engine
                logger.debug("rapidocr engine created")
    return _ENGINE


_MODELS = ("_load_det_model", "_load_cls_model", "_load_rec_model")


def _as_loaded(engine: Any) -> None:
    """Each of ``engine``'s models, as rapidocr loads it on first use, gets an onnxruntime
    session whose idle threads sleep instead of spinning, and the detector gets
    :class:`ingest._det_input._DetInput` (no upscaling past a 1,280-px longer side).

    rapidocr does not expose onnxruntime's ``session.intra_op.allow_spinning``; its default
    keeps the second thread busy-waiting between operators. On freeculture.pdf's 20 raster
    figures that was 34-36 s of CPU against 24 s without spinning and 21-22 s with one
    thread, for the same words (session 12, a loaded 2-core machine). Rebuilding a session
    costs ~0.1 s once per model and process. A rapidocr that no longer has these loaders is
    left as it is (said at debug level)."""
    if not all(callable(getattr(engine, name, None)) for name in _MODELS):
        logger.debug("rapidocr has no per-model loaders: onnxruntime's thread spinning left on")
        return
    done: set[int] = set()
    lock = threading.Lock()
    for name in _MODELS:
        load = getattr(engine, name)

        def loaded(_load: Any = load) -> Any:
            model = _load()
            holder = getattr(model, "session", None)  # rapidocr's OrtInferSession
            if id(model) not in done:
                with lock:
                    if id(model) not in done:
                        _resession(holder)
                        cap_upscale(model)
                        done.add(id(model))
            return model

        setattr(engine, name, loaded)


def _resession(holder: Any) -> None:
    session = getattr(holder, "session", None)
    path = getattr(session, "_model_path", None)
    if session is None or path is None:
        return
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.enable_cpu_mem_arena = False
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = _THREADS
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    holder.session = ort.InferenceSession(path, sess_options=options, providers=session.get_providers())


_READ_SIZE = 256  # images whose OCR is remembered, by pixel digest (a few kB of lines each)
_READ: LRU[bytes, tuple[OcrLine, ...]] = LRU(_READ_SIZE)


def _digest(image: np.ndarray) -> bytes:
    import hashlib

    h = hashlib.blake2b(digest_size=20)
    h.update(repr((image.shape, image.dtype.str)).encode())
    h.update(memoryview(image if image.flags.c_contiguous else image.copy(order="C")).cast("B"))
    return h.digest()


def ocr_array(image: np.ndarray, min_score: float = 0.5) -> list[OcrLine]:
    """OCR an RGB uint8 array (H, W, 3); lines in pixel coordinates of ``image``.

    Identical pixels are read once per process: the OCR of the last few hundred images is
    remembered by a digest of their pixels, so a logo or a blank scan repeated on every page
    of a document costs one OCR (the digest is ~1 ms per megapixel; OCR is seconds)."""
    key = _digest(image)
    found = _READ.get(key)
    if found is None:
        found = _read(image)
        _READ.put(key, found)
    return [ln for ln in found if ln.score >= min_score]


def _read(image: np.ndarray) -> tuple[OcrLine, ...]:
    """Every non-empty line rapidocr reports (its own score floor applies), any confidence."""
    engine = get_engine()
    empty = _nothing_found(engine)
    result = engine(image) if empty is None else _upright_read(engine, image, empty)
    boxes = getattr(result, "boxes", None)
    txts = getattr(result, "txts", None)
    if boxes is None or txts is None or len(txts) == 0:
        return ()
    scores = getattr(result, "scores", None) or [1.0] * len(txts)
    lines: list[OcrLine] = []
    for box, text, score in zip(boxes, txts, scores):
        text = str(text).strip()
        if not text:
            continue
        quad = tuple((float(p[0]), float(p[1])) for p in box)
        xs = [x for x, _ in quad]
        ys = [y for _, y in quad]
        lines.append(OcrLine(max(min(xs), 0.0), max(min(ys), 0.0), max(xs), max(ys), text, float(score), quad))
    return tuple(lines)


_DOUBT = 0.9  # a level line read with less confidence than this is checked for being upside down
_STAGE_METHODS = ("load_img", "preprocess_img", "detect_and_crop", "cls_and_rotate", "recognize_txt", "build_final_output")


def _nothing_found(engine: Any) -> type[Exception] | None:
    """The exception ``engine``'s detector raises when it finds no text, when ``engine`` is the
    rapidocr whose stages :func:`_upright_read` runs one by one; None for another version
    (then ``engine(image)`` runs them as rapidocr does)."""
    import sys

    error = getattr(sys.modules.get(type(engine).__module__), "RapidOCRError", None)
    if not (isinstance(error, type) and issubclass(error, Exception)):
        return None
    return error if all(callable(getattr(engine, name, None)) for name in _STAGE_METHODS) else None


def _stood_up(box: Any) -> bool:
    """Whether rapidocr turns the crop of this detected quadrilateral a quarter to the left
    before reading it: the crop is at least 1.5x as tall as wide (``get_rotate_crop_image``)."""
    import numpy as np

    p = np.asarray(box, dtype=np.float64)
    width = int(max(np.linalg.norm(p[0] - p[1]), np.linalg.norm(p[2] - p[3])))
    height = int(max(np.linalg.norm(p[0] - p[3]), np.linalg.norm(p[1] - p[2])))
    return width > 0 and height / width >= 1.5


def _upright_read(engine: Any, image: np.ndarray, nothing_found: type[Exception]) -> Any:
    """rapidocr's detect -> classify angle -> recognise, with the angle classifier only where a
    line may be upside down: the result rapidocr's ``engine(image)`` returns.

    rapidocr runs the classifier on every line and turns the line when it says "180" with
    more than 0.9 confidence. In figures that did more harm than good: on freeculture's 18
    OCR'd figures it turned a level title read at 1.00 confidence upside down
    ("ON WHICH ITEM HAVE THE COURTS RULED THAT MANUFACTURERS AND" became "O U AND") and
    lost "35 TV stations in 28 cities in", while the lines it had to turn are of two kinds:
    - a line standing on end (rapidocr turns it a quarter to the left, so a label written
      bottom to top, the usual y-axis label, comes out upside down): read both ways, the
      better confidence kept. All five "Norms" axis labels of freeculture's diagrams are read
      ("Nrns" once before: the classifier was 0.89 sure);
    - a level line upside down (an upside-down scan, a label printed turned): it reads
      badly, so only a line read under :data:`_DOUBT` confidence goes to the classifier, and
      one the classifier turns is read again, the better confidence kept.
    The classifier ran on 241 lines of those figures, now on about 30, and no line is turned
    unless its turned reading is the surer one. Scanned pages gain too, for the same CPU: on
    the held-out scans, two level lines of epson.pdf that the classifier had turned ("ritt sor
    ets cts s tet s it.") read "printed texts so that they can be electronically edited,
    searched, stored more compactly,", and c03-29.pdf's "MIST URE." reads "MISS WATSON'S
    LECTURE."."""
    import numpy as np

    original = engine.load_img(image)
    img, op_record = engine.preprocess_img(original)
    try:
        crops, det_res = engine.detect_and_crop(img, op_record)
    except nothing_found:
        return None
    rec_res = engine.recognize_txt(crops)
    txts, scores = list(rec_res.txts), [float(v) for v in rec_res.scores]
    standing = [_stood_up(box) for box in det_res.boxes]
    doubtful = [i for i in range(len(crops)) if not standing[i] and scores[i] < _DOUBT]
    turned: dict[int, np.ndarray] = {i: np.ascontiguousarray(crops[i][::-1, ::-1]) for i in range(len(crops)) if standing[i]}
    if doubtful:
        classified, cls_res = engine.cls_and_rotate([crops[i] for i in doubtful])
        threshold = float(getattr(getattr(engine, "text_cls", None), "cls_thresh", 0.9))
        for k, (label, score) in enumerate(cls_res.cls_res):
            if "180" in str(label) and float(score) > threshold:
                turned[doubtful[k]] = classified[k]
    if turned:
        order = sorted(turned)
        again = engine.recognize_txt([turned[i] for i in order])
        for i, text, score in zip(order, again.txts, again.scores):
            if float(score) > scores[i]:
                txts[i], scores[i] = text, float(score)
    rec_res.txts, rec_res.scores = tuple(txts), tuple(scores)
    from rapidocr.ch_ppocr_cls import TextClsOutput

    return engine.build_final_output(original, det_res, TextClsOutput(), rec_res, crops, op_record)


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

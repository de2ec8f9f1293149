"""Video and audio files as documents: frames at scene changes are pages, subtitles the transcript.

A video (MP4, MOV, MKV, WebM) is decoded once with PyAV (the optional extra ``video``). A frame
becomes a page when more than the share ``ingest.video_scene_change`` of its small copy
(128 x 72) changed colour against the last kept frame's (by over :data:`PIXEL_CHANGE` of full
scale: a cut, or a slide whose words changed on the same background) and ``video_min_gap_s``
seconds have passed; the first frame
always does, and at most ``video_max_frames`` are kept. Each page's image is its frame, OCR'd
like a scanned page (one point = one pixel), so burned-in text is searchable with boxes; a
frame is a page, not a figure (the figures corpus keeps the documents' figures and tables).

The transcript is the sidecar subtitle files beside the video (``NAME.srt``, ``NAME.vtt``,
``NAME.LANG.srt``; :mod:`ingest._subtitles`), else its first text subtitle track. It is cut
into chunks by time (:func:`ingest._subtitles.chunk_cues`, never across a scene change) and
each chunk goes to the page of the frame shown at its start; its box is the whole frame.

An audio file (MP3, WAV, M4A, OGG, FLAC, or a video file without a picture stream) has no
frames: with a transcript, each chunk of it is a page without an image (size 0 x 0); without
one it is refused with :class:`rag.errors.EmptyDocumentError` (no speech model ships offline).

Pages, chunks and figures carry ``start``/``end`` seconds. Kept frames wait in a private
temporary folder (lossless PNG) until their page is read, so memory holds one frame at a time.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from rag.config import IngestConfig
from rag.errors import CorruptDocumentError, EmptyDocumentError, ResourceLimitError
from rag.lazy import require
from rag.types import BBox, Page, PageContent, TextBlock, TextChunk

from ingest._subtitles import Cue, chunk_cues, clean_cue_text, read_sidecars, sidecar_files

__all__ = ["MediaDocument", "open_media", "NO_TRANSCRIPT"]

logger = logging.getLogger("ingest")

NO_TRANSCRIPT = "no transcript: audio has no subtitle track or sidecar .srt/.vtt, and no speech model is available offline"
#: how much a pixel of the small copy must change (0..1 of full scale) to count as changed
PIXEL_CHANGE = 0.12
#: the size of the small copy frames are compared on
_SMALL = (128, 72)
_TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"})


@dataclass(frozen=True, slots=True)
class _Frame:
    file: Path  # the full-size frame, PNG, in the document's temporary folder
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class _Span:
    """A page: a kept frame (video) or a transcript stretch (audio), with its transcript chunks."""

    start: float
    end: float
    frame: _Frame | None
    chunks: tuple[Cue, ...]


def _import_av() -> Any:
    return require("av", "video", "video and audio files")


#: decoding may take the page time bound plus this many seconds per second of video; past
#: that (a stream that decodes far slower than real time) it stops and keeps what it read
REALTIME_FACTOR = 2.0


class MediaDocument:
    """A decoded video or audio file: its pages as time spans. ``page(i, ...)`` extracts one.
    ``notes``: what was cut short while decoding (they go on the first page's notes)."""

    def __init__(
        self, path: Path, kind: Literal["video", "audio"], spans: list[_Span], tmp: Any, notes: tuple[str, ...] = ()
    ) -> None:
        self.path = path
        self.kind = kind
        self.spans = spans
        self._tmp = tmp
        self.notes = notes

    @property
    def page_count(self) -> int:
        return len(self.spans)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def page(self, index: int, doc_id: str, config: IngestConfig, out_dir: Path | None) -> PageContent:
        span = self.spans[index]
        number = index + 1
        if span.frame is None:
            box = BBox(0.0, 0.0, 0.0, 0.0)
            chunks = tuple(TextChunk(doc_id, number, i, c.text, box, start=c.start, end=c.end) for i, c in enumerate(span.chunks))
            text = "\n\n".join(c.text for c in span.chunks)
            page = Page(doc_id, number, 0.0, 0.0, text, False, start=span.start, end=span.end, notes=self.notes if index == 0 else ())
            return PageContent(page, (), chunks, ())
        content = _frame_page(span, span.frame, number, doc_id, config, out_dir)
        if index == 0 and self.notes:
            content = replace(content, page=replace(content.page, notes=(*content.page.notes, *self.notes)))
        return content


def _frame_page(span: _Span, frame: _Frame, number: int, doc_id: str, config: IngestConfig, out_dir: Path | None) -> PageContent:
    """A frame as a page: its image, its OCR'd text with boxes, and the transcript said while it shows."""
    from PIL import Image

    from ingest._image import MAX_SIDE, ocr_image
    from ingest._layout import make_chunks
    from ingest._render import save_pil, suffix_for

    with Image.open(frame.file) as im:
        rgb = im.convert("RGB")
    w, h = float(frame.width), float(frame.height)
    found, ocr, notes = ocr_image(rgb, number, config)  # notes reach the file's report
    blocks = tuple(TextBlock(doc_id, number, i, BBox(*b.bbox), b.text, True) for i, b in enumerate(found))
    shown = [replace(c, start=span.start, end=span.end) for c in make_chunks(list(blocks), config.chunk_chars, config.chunk_overlap_chars)]
    whole = BBox(0.0, 0.0, w, h)
    said = [
        TextChunk(doc_id, number, len(shown) + i, cue.text, whole, start=cue.start, end=cue.end)
        for i, cue in enumerate(span.chunks)
    ]
    ocr_text = "\n\n".join(b.text for b in blocks)
    text = "\n\n".join(t for t in (ocr_text, *(c.text for c in said)) if t)
    image_path = None
    if out_dir is not None:
        image_path = out_dir / f"page-{number:04d}{suffix_for(config)}"
        if max(rgb.size) > MAX_SIDE:
            rgb.thumbnail((MAX_SIDE, MAX_SIDE))
        save_pil(rgb, image_path, config)
    page = Page(doc_id, number, w, h, text, ocr, image_path=image_path, start=span.start, end=span.end, notes=tuple(notes))
    # no whole-frame figure (an image file gets one): a frame is a page, and hundreds of frames as
    # "figures" would crowd out the figures and tables of the documents beside the video
    return PageContent(page, blocks, tuple(shown + said), ())


def _subtitle_cues(av: Any, packet: Any, stream: Any) -> list[Cue]:
    """The cues of one subtitle packet (times from the packet, text from its ASS dialogue)."""
    at = packet.pts if packet.pts is not None else packet.dts
    if at is None:
        return []
    start = float(at * stream.time_base)
    end = start + float((packet.duration or 0) * stream.time_base)
    cues = []
    for sub in packet.decode():
        text = clean_cue_text(" ".join(_texts(sub)))
        if text:
            cues.append(Cue(start, max(start, end), text))
    return cues


def _texts(sub: Any) -> list[str]:
    """The text of a decoded subtitle: PyAV >= 13 gives ``AssSubtitle.dialogue``; older releases a
    set of rects with an ASS event line (``ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text``)
    or plain ``text``. A bitmap subtitle has neither: no text."""
    def plain(value: Any) -> str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")

    dialogue = getattr(sub, "dialogue", None)
    if dialogue is not None:
        return [plain(dialogue)]
    out = []
    for rect in sub if hasattr(sub, "__iter__") else ():
        ass, text = plain(getattr(rect, "ass", "")), plain(getattr(rect, "text", ""))
        out.append(ass.split(",", 8)[-1] if ass.count(",") >= 8 else ass or text)
    return out


class _SceneCuts:
    """Decides which decoded frames become pages, and writes those to ``folder``."""

    def __init__(self, path: Path, config: IngestConfig, folder: Path) -> None:
        self.path, self.config, self.folder = path, config, folder
        self.kept: list[tuple[float, Path, int, int]] = []
        self.last_small: Any = None
        self.capped = False

    def offer(self, frame: Any, t: float) -> None:
        import numpy as np

        if self.kept and t - self.kept[-1][0] < self.config.video_min_gap_s:
            return
        small = frame.reformat(width=_SMALL[0], height=_SMALL[1], format="rgb24").to_ndarray().astype(np.int16)
        if self.kept:
            changed = np.abs(small - self.last_small).max(axis=2) > PIXEL_CHANGE * 255
            if float(changed.mean()) <= self.config.video_scene_change:
                return
            if len(self.kept) >= self.config.video_max_frames:
                if not self.capped:
                    logger.warning(
                        "%s: more scene changes than ingest.video_max_frames=%d; later scenes share the last page",
                        self.path, self.config.video_max_frames,
                    )
                self.capped = True
                return
        w, h = frame.width, frame.height
        if w * h > self.config.max_image_pixels:
            raise ResourceLimitError(
                self.path, f"video frames are {w}x{h} pixels, above ingest.max_image_pixels={self.config.max_image_pixels:,}"
            )
        out = self.folder / f"frame-{len(self.kept) + 1:05d}.png"
        frame.to_image().convert("RGB").save(out, compress_level=1)
        self.kept.append((t, out, w, h))
        self.last_small = small


def _streams(container: Any, av: Any) -> tuple[Any, Any]:
    """The picture stream (not cover art) and the first text subtitle stream, each or None."""
    attached = getattr(av.stream.Disposition, "attached_pic", 0)
    video = next((s for s in container.streams.video if not (s.disposition & attached)), None)
    subtitle = next((s for s in container.streams.subtitles if s.codec_context.name in _TEXT_SUBTITLES), None)
    return video, subtitle


def _duration(container: Any, stream: Any) -> float | None:
    if container.duration is not None:
        return container.duration / 1_000_000
    if stream is not None and stream.duration is not None:
        return float(stream.duration * stream.time_base)
    return None


def open_media(path: Path, config: IngestConfig) -> MediaDocument:
    """Decode a video or audio file into page spans, or raise the DocumentError that says why not."""
    av = _import_av()
    started = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="mmrag-video-")
    try:
        doc = _read(av, path, config, Path(tmp.name), tmp)
    except BaseException:
        tmp.cleanup()
        raise
    frames = sum(1 for s in doc.spans if s.frame is not None)
    logger.info("decoded %s: %s, %d pages (%d frames) in %.1f s", path.name, doc.kind, doc.page_count, frames, time.perf_counter() - started)
    return doc


def _read(av: Any, path: Path, config: IngestConfig, folder: Path, tmp: Any) -> MediaDocument:
    try:
        fh = open(path, "rb")  # a file object: PyAV then never sees a file name that is not UTF-8
    except OSError as exc:
        raise CorruptDocumentError(path, f"cannot read: {exc.strerror or exc}") from exc
    with fh:
        try:
            container = av.open(fh, "r")
        except (av.FFmpegError, ValueError) as exc:
            raise CorruptDocumentError(path, f"video/audio container cannot be opened (damaged or not a media file): {exc}") from exc
        with container:
            video, subtitle = _streams(container, av)
            if video is not None:  # the frame size from the stream's header, before any frame is decoded
                width, height = int(video.codec_context.width or 0), int(video.codec_context.height or 0)
                if width * height > config.max_image_pixels:
                    raise ResourceLimitError(
                        path, f"video frames are {width}x{height} = {width * height:,} pixels (by the stream's header), "
                        f"above ingest.max_image_pixels={config.max_image_pixels:,}",
                    )
            length = _duration(container, video)
            budget = config.page_timeout_s + REALTIME_FACTOR * (length if length is not None else config.page_timeout_s)
            deadline, stopped = time.perf_counter() + budget, ""
            cuts = _SceneCuts(path, config, folder)
            track: list[Cue] = []
            wanted = [s for s in (video, subtitle) if s is not None]
            damaged, first_damage = 0, ""
            decoded, rate = 0, None
            if video is not None:
                video.thread_type = "AUTO"
                rate = video.average_rate or video.guessed_rate
            for packet in container.demux(wanted) if wanted else ():
                try:
                    if packet.stream is subtitle:
                        if packet.size:
                            track.extend(_subtitle_cues(av, packet, subtitle))
                        continue
                    for frame in packet.decode():
                        # a frame without a timestamp: its place at the stream's frame rate
                        t = frame.time if frame.time is not None else decoded / float(rate or 25)
                        decoded += 1
                        cuts.offer(frame, max(0.0, float(t)))
                except (av.FFmpegError, ValueError) as exc:
                    damaged += 1
                    first_damage = first_damage or f"at {packet.pts}: {exc}"
                if cuts.kept and time.perf_counter() > deadline:
                    at = cuts.kept[-1][0]
                    stopped = (f"decoding stopped after {budget:.0f} s (ingest.page_timeout_s plus {REALTIME_FACTOR:g} s per "
                               f"second of video), near {at:.1f} s of {length or 0:.1f} s; the rest of the video is not indexed")
                    logger.warning("%s: %s", path, stopped)
                    break
            duration = _duration(container, video)
    if damaged:
        logger.warning("%s: %d damaged packets skipped (first %s)", path, damaged, first_damage)
    if video is not None and not cuts.kept:
        raise CorruptDocumentError(
            path, f"no frame of its video stream ({video.codec_context.name}) can be decoded: the stream is damaged "
            f"or this PyAV build has no decoder for it ({first_damage or 'no picture data'})",
        )
    sidecars, used = read_sidecars(sidecar_files(path))
    cues = sidecars if sidecars else track
    source = ", ".join(p.name for p in used) if used else ("its subtitle track" if track else "none")
    logger.info("%s: transcript from %s (%d cues)", path.name, source, len(cues))
    if video is None:
        return _audio(path, config, cues, tmp)
    times = [k[0] for k in cuts.kept]
    end_of_video = max([duration or 0.0, times[-1], *(c.end for c in cues)])
    chunks = chunk_cues(cues, times[1:], config.transcript_chunk_s, config.chunk_chars)
    spans = []
    for i, (t, file, w, h) in enumerate(cuts.kept):
        end = times[i + 1] if i + 1 < len(times) else end_of_video
        mine = tuple(c for c in chunks if (c.start >= t or i == 0) and (i + 1 == len(times) or c.start < times[i + 1]))
        spans.append(_Span(t, end, _Frame(file, w, h), mine))
    return MediaDocument(path, "video", spans, tmp, (stopped,) if stopped else ())


def _audio(path: Path, config: IngestConfig, cues: list[Cue], tmp: Any) -> MediaDocument:
    if not cues:
        raise EmptyDocumentError(path, NO_TRANSCRIPT)
    chunks = chunk_cues(cues, (), config.transcript_chunk_s, config.chunk_chars)
    if len(chunks) > config.max_pages:
        raise ResourceLimitError(path, f"transcript makes {len(chunks):,} pages, above ingest.max_pages={config.max_pages:,}")
    return MediaDocument(path, "audio", [_Span(c.start, c.end, None, (c,)) for c in chunks], tmp)

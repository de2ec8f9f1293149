"""Subtitles as a transcript: SRT and WebVTT parsing, sidecar files, chunks by time.

A video or audio file's transcript is its first text subtitle track, or the sidecar files
beside it: ``NAME.srt``, ``NAME.vtt`` and ``NAME.LANG.srt`` / ``NAME.LANG.vtt`` (``talk.mp4`` ->
``talk.srt``, ``talk.en.vtt``). A sidecar is part of its media file, never a document of its
own (:func:`media_of` names the file it belongs to).

Times are seconds from the start of the media. Pure functions, no third-party imports.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Cue",
    "SUBTITLE_SUFFIXES",
    "MEDIA_SUFFIXES",
    "parse_subtitles",
    "clean_cue_text",
    "sidecar_files",
    "read_sidecars",
    "media_of",
    "chunk_cues",
]

logger = logging.getLogger("ingest")

SUBTITLE_SUFFIXES = frozenset({".srt", ".vtt"})
#: the suffixes of the video and audio files a sidecar can belong to
MEDIA_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mkv", ".webm", ".mov", ".mp3", ".wav", ".m4a", ".ogg", ".oga", ".opus", ".flac"}
)
#: the longest language tag between a media name and ``.srt`` (``en``, ``pt-BR``, ``forced``)
_LANG_RE = re.compile(r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$")
_TIME_RE = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2})[,.](\d{1,3})")
_ARROW_RE = re.compile(rf"({_TIME_RE.pattern})\s*-->\s*({_TIME_RE.pattern})")
_TAG_RE = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # <i>, <c.yellow>, <00:01.000>; ASS {\i1}
_MAX_SIDECAR_BYTES = 20 * 1024**2


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle: shown from ``start`` to ``end`` seconds, saying ``text``."""

    start: float
    end: float
    text: str


def _seconds(hours: str | None, minutes: str, seconds: str, fraction: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction.ljust(3, "0")) / 1000


def clean_cue_text(text: str) -> str:
    """Cue text without markup (``<i>``, ``<v Speaker>``, ASS ``{\\i1}``, ``\\N``), one line."""
    text = _TAG_RE.sub("", text.replace("\\N", " ").replace("\\n", " "))
    for entity, char in (("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"), ("&nbsp;", " ")):
        text = text.replace(entity, char)
    return " ".join(text.split())


def parse_subtitles(text: str) -> list[Cue]:
    """The cues of an SRT or WebVTT text, in time order; empty cues and blocks without a
    ``start --> end`` line (numbers, the ``WEBVTT`` header) and WebVTT ``NOTE``/``STYLE``/``REGION``
    blocks are dropped.

    Both formats are read by the same rule: a block is the lines between blank lines, its
    timing is the first line with ``-->``, its text the lines after it. Hours are optional
    (``01:02.500``, WebVTT) and the fraction may follow ``,`` (SRT) or ``.`` (WebVTT)."""
    cues = []
    blocks = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff"))
    for block in blocks:
        lines = block.strip("\n").split("\n")
        if lines[0].split(maxsplit=1)[:1] in (["NOTE"], ["STYLE"], ["REGION"]):  # WebVTT comments, styles
            continue
        for i, line in enumerate(lines):
            match = _ARROW_RE.search(line)
            if match is None:
                continue
            g = match.groups()
            start, end = _seconds(*g[1:5]), _seconds(*g[6:10])
            words = clean_cue_text(" ".join(lines[i + 1 :]))
            if words and end >= start:
                cues.append(Cue(start, end, words))
            break
    cues.sort(key=lambda c: (c.start, c.end))
    return cues


def sidecar_files(media: Path) -> list[Path]:
    """The subtitle files beside ``media``: ``NAME.srt``/``NAME.vtt`` first (``.srt`` before
    ``.vtt``), then ``NAME.LANG.srt``/``.vtt`` sorted by name."""
    media = Path(media)
    stem = media.stem
    plain, tagged = [], []
    try:
        siblings = sorted(media.parent.iterdir())
    except OSError:
        return []
    for sib in siblings:
        if sib.suffix.lower() not in SUBTITLE_SUFFIXES or not sib.is_file():
            continue
        base = sib.name[: -len(sib.suffix)]
        if base == stem:
            plain.append(sib)
        elif base.startswith(stem + ".") and _LANG_RE.match(base[len(stem) + 1 :]):
            tagged.append(sib)
    plain.sort(key=lambda p: p.suffix.lower() != ".srt")
    return plain + tagged


def read_sidecars(files: Iterable[Path]) -> tuple[list[Cue], list[Path]]:
    """The cues of the sidecar files that hold any, and which files those were. A file that
    cannot be read or holds no cue is logged and left out (it is not the media's fault)."""
    cues: list[Cue] = []
    used: list[Path] = []
    for path in files:
        try:
            if path.stat().st_size > _MAX_SIDECAR_BYTES:
                logger.warning("%s: subtitle file above %d bytes, not read", path, _MAX_SIDECAR_BYTES)
                continue
            found = parse_subtitles(path.read_bytes().decode("utf-8", "replace"))
        except OSError as exc:
            logger.warning("%s: subtitle file cannot be read: %s", path, exc)
            continue
        if not found:
            logger.warning("%s: no subtitle cue found (expected SRT or WebVTT 'start --> end' lines)", path)
            continue
        cues.extend(found)
        used.append(path)
    cues.sort(key=lambda c: (c.start, c.end))
    return cues, used


def media_of(subtitle: Path) -> Path | None:
    """The video or audio file a sidecar subtitle file belongs to (``talk.en.srt`` ->
    ``talk.mp4``), or None when there is none beside it."""
    subtitle = Path(subtitle)
    if subtitle.suffix.lower() not in SUBTITLE_SUFFIXES:
        return None
    base = subtitle.name[: -len(subtitle.suffix)]
    stems = [base]
    head, dot, tag = base.rpartition(".")
    if dot and head and _LANG_RE.match(tag):
        stems.append(head)
    for stem in stems:
        for suffix in sorted(MEDIA_SUFFIXES):
            for candidate in (subtitle.with_name(stem + suffix), subtitle.with_name(stem + suffix.upper())):
                if candidate.is_file():
                    return candidate
    return None


def chunk_cues(
    cues: Sequence[Cue], breaks: Sequence[float] = (), max_seconds: float = 45.0, max_chars: int = 1000
) -> list[Cue]:
    """Consecutive cues joined into chunks of at most ``max_seconds`` and ``max_chars``; a
    chunk also ends where a cue starts at or after the next of ``breaks`` (the times of scene
    changes), so that each chunk belongs to the one frame shown at its start."""
    chunks: list[Cue] = []
    bounds = sorted(breaks)
    current: list[Cue] = []

    def close() -> None:
        if current:
            chunks.append(Cue(current[0].start, max(c.end for c in current), " ".join(c.text for c in current)))
            current.clear()

    def next_break(t: float) -> float:
        return next((b for b in bounds if b > t), float("inf"))

    for cue in cues:
        if current:
            first = current[0]
            chars = sum(len(c.text) + 1 for c in current) + len(cue.text)
            if cue.start >= next_break(first.start) or cue.end - first.start > max_seconds or chars > max_chars:
                close()
        current.append(cue)
    close()
    return chunks


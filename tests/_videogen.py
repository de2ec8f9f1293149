"""Videos, audio and subtitles made in the tests: PyAV encodes frames drawn with Pillow.

:func:`make_video` writes scenes of a few seconds, each a flat colour with one large word
burned in; :func:`write_srt` writes a subtitle file; :func:`make_wav` a silent WAV;
:func:`mux_subtitles` puts an SRT inside a video with the ``ffmpeg`` program (PyAV cannot
encode subtitle streams), failing under ``CI`` and skipping elsewhere when ffmpeg is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

#: (word, background colour) per scene: words rapidocr reads back reliably
SCENES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("HARBOUR", (230, 230, 240)),
    ("LIGHTHOUSE", (250, 220, 160)),
    ("GLACIER", (170, 210, 250)),
)


def make_video(
    path: Path, scenes: Sequence[tuple[str, tuple[int, int, int]]] = SCENES, seconds: float = 2.0, fps: int = 10,
    size: tuple[int, int] = (480, 270), codec: str = "mpeg4",
) -> Path:
    """A video of ``scenes``, ``seconds`` each: the word in black on the colour, with a small
    square moving each frame (so frames within a scene differ a little, as real video does)."""
    import av
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=64)
    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        n = 0
        for word, colour in scenes:
            for i in range(int(seconds * fps)):
                im = Image.new("RGB", size, colour)
                draw = ImageDraw.Draw(im)
                draw.text((w // 2, h // 2), word, fill=(0, 0, 0), font=font, anchor="mm")
                draw.rectangle((4 + 3 * i, 4, 14 + 3 * i, 14), fill=(90, 90, 90))
                frame = av.VideoFrame.from_image(im)
                frame.pts = n
                n += 1
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


_AUDIO_CODECS = {".wav": ("pcm_s16le", "s16"), ".mp3": ("libmp3lame", "s16p"), ".flac": ("flac", "s16"), ".m4a": ("aac", "fltp")}


def make_wav(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """A silent mono audio file, encoded by its suffix: WAV, MP3, FLAC or M4A (AAC)."""
    import av
    import numpy as np

    codec, sample_format = _AUDIO_CODECS[path.suffix.lower()]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        size = stream.codec_context.frame_size or 1024
        dtype = np.float32 if sample_format == "fltp" else np.int16
        for start in range(0, int(seconds * rate), size):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, size), dtype=dtype), format=sample_format, layout="mono")
            frame.rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _stamp(t: float, sep: str) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def write_srt(path: Path, cues: Sequence[tuple[float, float, str]]) -> Path:
    blocks = [f"{i}\n{_stamp(a, ',')} --> {_stamp(b, ',')}\n{text}\n" for i, (a, b, text) in enumerate(cues, 1)]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def write_vtt(path: Path, cues: Sequence[tuple[float, float, str]]) -> Path:
    blocks = [f"{_stamp(a, '.')} --> {_stamp(b, '.')}\n{text}\n" for a, b, text in cues]
    path.write_text("WEBVTT\n\n" + "\n".join(blocks), encoding="utf-8")
    return path


def ffmpeg() -> str:
    """The ffmpeg program, or a test failure (``CI`` set) / skip (elsewhere) saying how to get it."""
    found = shutil.which("ffmpeg")
    if found is None:
        message = "ffmpeg is not installed (Debian: apt-get install ffmpeg; scripts/test.sh installs it in CI)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def mux_subtitles(video: Path, srt: Path, out: Path) -> Path:
    """``video`` with ``srt`` as a text subtitle track (mov_text in MP4/MOV, SubRip in MKV)."""
    codec = "mov_text" if out.suffix.lower() in (".mp4", ".mov", ".m4v") else "srt"
    subprocess.run(
        [ffmpeg(), "-loglevel", "error", "-y", "-i", str(video), "-i", str(srt), "-map", "0", "-map", "1",
         "-c", "copy", "-c:s", codec, str(out)],
        check=True, timeout=60,
    )
    return out

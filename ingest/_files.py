"""A file's identity, read once before any engine touches it: readable, size, format by
magic bytes, and the sha256 of its bytes (the document id, ``rag.ids.sha256_file``'s value)."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rag.config import IngestConfig
from rag.errors import (
    EmptyDocumentError,
    ResourceLimitError,
    UnreadableFileError,
    UnsupportedFormatError,
)
from rag.ids import sha256_stream

from ingest._subtitles import MEDIA_SUFFIXES, SUBTITLE_SUFFIXES, media_of

__all__ = ["SUPPORTED_SUFFIXES", "FileFormat", "FileIdentity", "sniff_format", "identify_file"]

FileFormat = Literal["pdf", "png", "jpeg", "tiff", "webp", "video", "audio"]
SUPPORTED_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}) | MEDIA_SUFFIXES
_HEAD_BYTES = 1024
#: ISO-BMFF brands of still images (HEIF, AVIF) and of audio-only files (M4A, M4B, M4P)
_STILL_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P "})


def _sniff_media(head: bytes) -> FileFormat | None:
    """Video (ISO-BMFF ``ftyp``: MP4, MOV; EBML: MKV, WebM) or audio (MP3, WAV, OGG, FLAC,
    M4A) by its first bytes. A "video" may hold only audio: the reader decides by its streams."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _STILL_BRANDS:
            return None
        return "audio" if brand in _AUDIO_BRANDS else "video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE" or head[:4] in (b"OggS", b"fLaC") or head[:3] == b"ID3":
        return "audio"
    if len(head) > 2 and head[0] == 0xFF and head[1] & 0xE6 == 0xE2 and head[1] & 0x18 != 0x08:
        # an MP3 frame: sync, a known MPEG version, layer III, a valid bitrate and sampling rate
        if head[2] >> 4 not in (0, 15) and (head[2] >> 2) & 3 != 3:
            return "audio"
    return None


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """A checked input file: its format (from its bytes), its size and the sha256 of its
    bytes, which is the document id (``DocumentInfo.doc_id``)."""

    path: Path
    format: FileFormat
    size: int
    sha256: str


def sniff_format(head: bytes) -> FileFormat | None:
    """The format named by a file's first bytes, or None. PDFs may have junk before ``%PDF-``."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if b"%PDF-" in head[:_HEAD_BYTES]:
        return "pdf"
    return _sniff_media(head)


def identify_file(path: str | Path, config: IngestConfig) -> FileIdentity:
    """Check a file and hash it in one read, or raise the typed error that says why it cannot
    be read. Nothing is read from a file that is missing, not a regular file, empty or above
    ``ingest.max_file_bytes``; one that is not a supported format is refused after its first
    block."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise UnreadableFileError(path, "no such file") from exc
    except OSError as exc:  # permission on a parent, symlink loop, name too long
        raise UnreadableFileError(path, f"cannot stat: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise UnreadableFileError(path, "is a directory, expected a PDF or image file (folders go to iter_files)")
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the open, a device would never end
        raise UnreadableFileError(path, "not a regular file (a FIFO, socket or device), expected a PDF or image file")
    if st.st_size > config.max_file_bytes:
        raise ResourceLimitError(
            path, f"file is {st.st_size:,} bytes, above ingest.max_file_bytes={config.max_file_bytes:,}"
        )
    if st.st_size == 0:
        raise EmptyDocumentError(path, "file is empty (0 bytes)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
            fmt = sniff_format(head)
            if fmt is None and path.suffix.lower() in SUBTITLE_SUFFIXES:
                owner = media_of(path)
                raise UnsupportedFormatError(
                    path,
                    f"a subtitle file is read as part of its video or audio, not on its own: ingest {owner.name}"
                    if owner is not None
                    else "a subtitle file is read as part of the video or audio file beside it with the same name "
                    f"({path.name.split('.')[0]}.mp4, .mkv, .mp3, ...), and there is none",
                )
            if fmt is None:
                suffix = path.suffix.lower() or "no extension"
                raise UnsupportedFormatError(
                    path,
                    f"not a PDF or a PNG/JPEG/TIFF/WebP image (extension {suffix}, first bytes {head[:8]!r})",
                )
            sha256, size = sha256_stream(fh, head)
    except PermissionError as exc:
        raise UnreadableFileError(path, "permission denied") from exc
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    return FileIdentity(path, fmt, size, sha256)

"""A file's identity, read once before any engine touches it: readable, size, format by
magic bytes, and the sha256 of its bytes (the document id, ``rag.ids.sha256_file``'s value)."""

from __future__ import annotations

import os
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

__all__ = ["SUPPORTED_SUFFIXES", "FileFormat", "FileIdentity", "sniff_format", "identify_file"]

FileFormat = Literal["pdf", "png", "jpeg", "tiff", "webp"]
SUPPORTED_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"})
_HEAD_BYTES = 1024


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """A checked input file: its format (from its bytes), its size and the sha256 of its
    bytes. ``doc_id`` (``DocumentInfo.doc_id``) is the sha256 unless the caller gives the
    document another id (``rag.ids.document_id``: the same bytes at two paths are two
    documents). ``stamp`` is the file's (device, inode, mtime_ns, ctime_ns) when it was hashed:
    :meth:`changed` tells whether the file still holds those bytes."""

    path: Path
    format: FileFormat
    size: int
    sha256: str
    stamp: tuple[int, int, int, int] = (0, 0, 0, 0)
    doc_id: str = ""

    def __post_init__(self) -> None:
        if not self.doc_id:
            object.__setattr__(self, "doc_id", self.sha256)

    def changed(self) -> str | None:
        """Why the file no longer holds the bytes that were hashed, or ``None`` when it does.
        A file whose size, inode or times moved is hashed again (a ``touch`` is no change)."""
        try:
            st = self.path.stat()
        except OSError as exc:
            return f"it went away while it was being read ({exc.strerror or exc})"
        if st.st_size == self.size and _stamp(st) == self.stamp:
            return None
        try:
            with open(self.path, "rb") as fh:
                digest, size = sha256_stream(fh)
        except OSError as exc:
            return f"it could not be read again after it was modified ({exc.strerror or exc})"
        if digest == self.sha256:
            return None
        return f"it was modified while it was being read ({self.size:,} bytes before, {size:,} after)"


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
    return None


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
            if fmt is None:
                suffix = path.suffix.lower() or "no extension"
                raise UnsupportedFormatError(
                    path,
                    f"not a PDF or a PNG/JPEG/TIFF/WebP image (extension {suffix}, first bytes {head[:8]!r})",
                )
            stamp = _stamp(os.fstat(fh.fileno()))
            sha256, size = sha256_stream(fh, head)
    except PermissionError as exc:
        raise UnreadableFileError(path, "permission denied") from exc
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    return FileIdentity(path, fmt, size, sha256, stamp)


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)

"""A file's identity, read once before any engine touches it: readable, size, format by
its bytes, and the sha256 of its bytes (the document id, ``rag.ids.sha256_file``'s value).

The format comes from the bytes first: magic numbers (PDF, images, OLE2, RTF, MOBI), the
member names of a ZIP container (OOXML, ODF's ``mimetype``, EPUB, XPS, CBZ), the root element
of an XML file (SVG, FB2). The extension decides only where the bytes cannot: an OLE2 file is
a DOC, PPT or XLS by its name, and a text file is HTML, Markdown or plain text by its name
once its first block is known to be text.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rag.config import IngestConfig
from rag.errors import (
    CorruptDocumentError,
    EmptyDocumentError,
    ResourceLimitError,
    UnreadableFileError,
    UnsupportedFormatError,
)
from rag.ids import sha256_stream

from ingest._subtitles import MEDIA_SUFFIXES, SUBTITLE_SUFFIXES, media_of

__all__ = [
    "SUPPORTED_SUFFIXES", "SUPPORTED_TEXT", "FileFormat", "DocumentKind", "FileIdentity",
    "sniff_format", "identify_file", "kind_of",
]

FileFormat = Literal[
    "pdf", "png", "jpeg", "tiff", "webp", "gif",
    "docx", "pptx", "xlsx", "odt", "odp", "ods", "rtf", "doc", "ppt", "xls",
    "html", "markdown", "text",
    "epub", "xps", "fb2", "mobi", "cbz", "svg",
    "video", "audio",
]
#: ``DocumentInfo.kind``: how a format is read (pdf: as is; image: pixels, one page per frame;
#: office: LibreOffice -> PDF; markup: laid out by PyMuPDF -> PDF; ebook: PyMuPDF -> PDF;
#: video: frames at scene changes + subtitles; audio: subtitles only, ``ingest._video``)
DocumentKind = Literal["pdf", "image", "office", "markup", "ebook", "video", "audio"]
_KIND: dict[str, DocumentKind] = {
    "pdf": "pdf",
    **dict.fromkeys(("png", "jpeg", "tiff", "webp", "gif"), "image"),
    **dict.fromkeys(("docx", "pptx", "xlsx", "odt", "odp", "ods", "rtf", "doc", "ppt", "xls"), "office"),
    **dict.fromkeys(("html", "markdown", "text"), "markup"),
    **dict.fromkeys(("epub", "xps", "fb2", "mobi", "cbz", "svg"), "ebook"),
    "video": "video",
    "audio": "audio",
}
_TEXT_SUFFIXES: dict[str, FileFormat] = {
    ".html": "html", ".htm": "html", ".xhtml": "html", ".md": "markdown", ".markdown": "markdown", ".txt": "text",
}
_OLE2_SUFFIXES: dict[str, FileFormat] = {".doc": "doc", ".ppt": "ppt", ".xls": "xls"}
_ZIP_SUFFIXES = frozenset({".docx", ".pptx", ".xlsx", ".odt", ".odp", ".ods", ".epub", ".xps", ".oxps", ".cbz"})
_ODF_MIMETYPES: dict[bytes, FileFormat] = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.presentation": "odp",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/epub+zip": "epub",
}
_OOXML_PARTS: tuple[tuple[str, FileFormat], ...] = (
    ("word/document.xml", "docx"), ("ppt/presentation.xml", "pptx"), ("xl/workbook.xml", "xlsx"),
)
_COMIC_IMAGES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")

SUPPORTED_SUFFIXES = frozenset({
    ".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".gif",
    ".docx", ".pptx", ".xlsx", ".odt", ".odp", ".ods", ".rtf", ".doc", ".ppt", ".xls",
    ".html", ".htm", ".xhtml", ".md", ".markdown", ".txt",
    ".epub", ".xps", ".oxps", ".fb2", ".mobi", ".cbz", ".svg",
}) | MEDIA_SUFFIXES
#: what is supported, for messages that refuse a file
SUPPORTED_TEXT = (
    "PDF; images PNG, JPEG, TIFF (every frame), WebP, GIF; Office DOCX, PPTX, XLSX, ODT, ODP, ODS, RTF, DOC, PPT, XLS "
    "(converted by LibreOffice); HTML, Markdown, plain text (.txt); e-books EPUB, MOBI, FB2, XPS, CBZ, SVG; "
    "video MP4, MOV, MKV, WebM (frames and subtitles); audio MP3, WAV, OGG, FLAC, M4A (with subtitles)"
)
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

    @property
    def kind(self) -> DocumentKind:
        return kind_of(self.format)


def kind_of(fmt: FileFormat) -> DocumentKind:
    """How a format is read (``DocumentInfo.kind``)."""
    return _KIND[fmt]


def _is_text(head: bytes) -> bool:
    """No NUL and almost no control characters: UTF-8 or a single-byte text encoding."""
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls <= len(head) // 100


def _xml_root(head: bytes) -> FileFormat | None:
    """SVG or FB2 by the root element named in the first block of an XML/text file."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not text.startswith(b"<"):
        return None
    if b"<svg" in text and b"<html" not in text:
        return "svg"
    if b"<fictionbook" in text:
        return "fb2"
    return None


def sniff_format(head: bytes, suffix: str = "") -> FileFormat | None:
    """The format named by a file's first bytes (and, for OLE2 and text, its extension
    ``suffix``), or None. PDFs may have junk before ``%PDF-``. ZIP containers are told apart by
    their member names (:func:`identify_file`), not here: a ZIP head gives None."""
    suffix = suffix.lower()
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):  # OLE2: old Office, by its name
        return _OLE2_SUFFIXES.get(suffix)
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head[60:68] == b"BOOKMOBI":
        return "mobi"
    if b"%PDF-" in head[:_HEAD_BYTES]:
        return "pdf"
    media = _sniff_media(head)
    if media is not None:
        return media
    if _is_text(head):
        root = _xml_root(head)
        if root is not None and suffix not in _TEXT_SUFFIXES:
            return root
        return _TEXT_SUFFIXES.get(suffix)
    return None


def _zip_format(path: Path, suffix: str) -> FileFormat | None:
    """The format of a ZIP container by its members: ODF/EPUB by the ``mimetype`` member,
    OOXML by its main part, XPS by its document sequence, CBZ by images named ``.cbz``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            mimetype = b""
            if "mimetype" in names:
                with archive.open("mimetype") as fh:
                    mimetype = fh.read(100).strip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, NotImplementedError) as exc:
        if suffix in _ZIP_SUFFIXES:
            raise CorruptDocumentError(path, f"a {suffix} file is a ZIP container, and this one cannot be read: {exc}") from exc
        return None
    if mimetype in _ODF_MIMETYPES:
        return _ODF_MIMETYPES[mimetype]
    members = set(names)
    if "[Content_Types].xml" in members:
        for part, fmt in _OOXML_PARTS:
            if part in members:
                return fmt
    if any(n.lower().endswith(".fdseq") for n in names):
        return "xps"
    if suffix == ".cbz" and any(n.lower().endswith(_COMIC_IMAGES) for n in names):
        return "cbz"
    return None


def identify_file(path: str | Path, config: IngestConfig) -> FileIdentity:
    """Check a file and hash it in one read, or raise the typed error that says why it cannot
    be read. Nothing is read from a file that is missing, not a regular file, empty or above
    ``ingest.max_file_bytes``; one that is not a supported format is refused after its first
    block (a ZIP container: after its member list)."""
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
    suffix = path.suffix.lower()
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
            fmt = sniff_format(head, suffix)
            if fmt is None and head.startswith(b"PK\x03\x04"):
                fmt = _zip_format(path, suffix)
            if fmt is None and suffix in SUBTITLE_SUFFIXES:
                owner = media_of(path)
                raise UnsupportedFormatError(
                    path,
                    f"a subtitle file is read as part of its video or audio, not on its own: ingest {owner.name}"
                    if owner is not None
                    else "a subtitle file is read as part of the video or audio file beside it with the same name "
                    f"({path.name.split('.')[0]}.mp4, .mkv, .mp3, ...), and there is none",
                )
            if fmt is None:
                raise UnsupportedFormatError(
                    path,
                    f"not a PDF, an image or another supported document (extension {suffix or 'no extension'}, "
                    f"first bytes {head[:8]!r}); supported: {SUPPORTED_TEXT}",
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

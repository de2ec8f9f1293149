"""HTML, Markdown and plain text -> a paged PDF (bytes), laid out by PyMuPDF's ``Story``.

Markdown becomes HTML with the ``markdown`` package (tables and fenced code); plain text is
one pre-formatted block that wraps. Headings, lists, tables and images keep their layout and
their text stays a text layer, so the pages are read as any PDF (boxes, tables, figures).

Images: the layout engine reads them from an in-memory archive holding only the images this
document names by a relative path that resolves (symbolic links followed) inside the
document's own folder, each checked as an image within ``ingest.max_image_pixels``. Nothing
else is ever read: ``../secret.png``, absolute paths, ``file:`` and network URLs are refused,
logged, and marked on the page where the image would have been (``data:`` URIs are kept: they
read nothing). Nothing is fetched from the network.
"""

from __future__ import annotations

import html
import io
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from rag.config import IngestConfig
from rag.errors import CorruptDocumentError, ResourceLimitError

__all__ = ["markup_to_pdf", "to_html", "resolve_image", "PAGE_SIZE", "MARGIN"]

logger = logging.getLogger("ingest")
PAGE_SIZE = "a4"
MARGIN = 54.0  # points on every side
_CSS = """
body { font-family: sans-serif; font-size: 11pt; line-height: 1.3; }
pre, code { font-family: monospace; font-size: 9.5pt; }
pre { white-space: pre-wrap; }
table { border-collapse: collapse; }
th, td { border: 1px solid #888; padding: 2px 4px; }
img { max-width: 100%; }
"""
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Refused:
    src: str
    reason: str


def _decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM), else Windows-1252, else Latin-1 (never fails)."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def to_html(text: str, fmt: str) -> str:
    """The HTML to lay out for a document's text: Markdown converted, plain text escaped."""
    if fmt == "markdown":
        import markdown

        return markdown.markdown(text, extensions=["tables", "fenced_code", "sane_lists"], output_format="html")
    if fmt == "text":
        return f"<pre>{html.escape(text)}</pre>"
    return text


def resolve_image(src: str, root: Path) -> Path | _Refused:
    """The file an ``<img src>`` names inside ``root`` (the document's folder, resolved), or why not."""
    parts = urlsplit(src)
    if parts.scheme or parts.netloc:
        return _Refused(src, "a URL: nothing is fetched from the network or read outside the document's folder")
    rel = unquote(parts.path)
    if not rel:
        return _Refused(src, "empty image path")
    if rel.startswith(("/", "\\")):
        return _Refused(src, "an absolute path, outside the document's folder")
    target = (root / rel).resolve()
    if not target.is_relative_to(root):
        return _Refused(src, "outside the document's folder")
    if not target.is_file():
        return _Refused(src, "no such file in the document's folder")
    return target


def _image_bytes(target: Path, src: str, config: IngestConfig) -> bytes | _Refused:
    """The image's bytes when Pillow reads its header as an image within ``max_image_pixels``."""
    from PIL import Image

    try:
        if target.stat().st_size > config.max_file_bytes:
            return _Refused(src, f"above ingest.max_file_bytes={config.max_file_bytes:,}")
        data = target.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            w, h = image.size
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on a non-image
        return _Refused(src, f"not a readable image ({type(exc).__name__})")
    if w * h > config.max_image_pixels:
        return _Refused(src, f"{w}x{h} pixels, above ingest.max_image_pixels={config.max_image_pixels:,}")
    return data


class _ImageTags(HTMLParser):
    """Every ``<img>`` start tag of a document: its offset, its text and its ``src``."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self._starts = [0]
        for line in source.splitlines(keepends=True):
            self._starts.append(self._starts[-1] + len(line))
        self.tags: list[tuple[int, str, str]] = []
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            line, col = self.getpos()
            src = next((v for k, v in attrs if k == "src"), None) or ""
            self.tags.append((self._starts[line - 1] + col, self.get_starttag_text() or "", src.strip()))


_SRC = re.compile(r"""\bsrc\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)


def _with_images(source: str, root: Path, config: IngestConfig) -> tuple[str, dict[str, bytes], list[_Refused]]:
    """The document with each ``<img>`` pointed at an archive entry (an image inside ``root``)
    or replaced by a note saying why it was not read; the archive's entries; what was refused.

    The archive holds nothing but these entries, so an ``<img>`` this parser misses (or one
    the layout engine reads differently) finds nothing to read."""
    names: dict[str, str] = {}
    entries: dict[str, bytes] = {}
    refused: dict[str, _Refused] = {}
    pieces: list[str] = []
    done = 0
    for offset, text, src in _ImageTags(source).tags:
        if not text or source[offset:offset + len(text)] != text or src.lower().startswith("data:"):
            continue  # a data: URI reads nothing; a tag not found where it was parsed is left alone
        if src not in names and src not in refused:
            found = resolve_image(src, root)
            if isinstance(found, Path):
                found = _image_bytes(found, src, config)
            if isinstance(found, bytes):
                names[src] = f"img{len(entries) + 1:04d}"
                entries[names[src]] = found
            else:
                refused[src] = found
        pieces.append(source[done:offset])
        if src in names:
            pieces.append(_SRC.sub(f'src="{names[src]}"', text, count=1))
        else:
            pieces.append(f"<span>[image {html.escape(src)} not read: {html.escape(refused[src].reason)}]</span>")
        done = offset + len(text)
    pieces.append(source[done:])
    return "".join(pieces), entries, list(refused.values())


def markup_to_pdf(path: Path, fmt: str, config: IngestConfig) -> bytes:
    """The paged PDF of an HTML, Markdown or text file (``fmt``: html, markdown, text)."""
    import pymupdf

    data = path.read_bytes()
    source = to_html(_decode(data), fmt)
    root = path.parent.resolve()
    source, entries, refused = _with_images(source, root, config)
    for r in refused:
        logger.warning("%s: image %r not read: %s", path.name, r.src, r.reason)
    archive = pymupdf.Archive()
    for name, blob in entries.items():
        archive.add(blob, name)
    story = pymupdf.Story(source, user_css=_CSS, archive=archive)
    buffer = io.BytesIO()
    writer = pymupdf.DocumentWriter(buffer)
    mediabox = pymupdf.paper_rect(PAGE_SIZE)
    where = mediabox + (MARGIN, MARGIN, -MARGIN, -MARGIN)
    pages, more = 0, 1
    try:
        while more:
            pages += 1
            if pages > config.max_pages:
                raise ResourceLimitError(path, f"laid out as more than ingest.max_pages={config.max_pages:,} pages")
            device = writer.begin_page(mediabox)
            more, _ = story.place(where)
            story.draw(device)
            writer.end_page()
        writer.close()
    except ResourceLimitError:
        raise
    except Exception as exc:  # MuPDF's HTML engine on markup it cannot lay out
        raise CorruptDocumentError(path, f"{fmt} cannot be laid out as pages: {exc}") from exc
    pdf = buffer.getvalue()
    title = _TITLE.search(data[:65536]) if fmt == "html" else None
    if title is not None:
        pdf = _with_title(pdf, html.unescape(_decode(title.group(1))).strip())
    logger.info("%s: laid out as %d pages (%d images, %d refused)", path.name, pages, len(entries), len(refused))
    return pdf


def _with_title(pdf: bytes, title: str) -> bytes:
    import pymupdf

    if not title:
        return pdf
    with pymupdf.open("pdf", pdf) as doc:
        doc.set_metadata({"title": title[:300]})
        return doc.tobytes()

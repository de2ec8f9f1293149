"""E-books and other formats MuPDF reads itself (EPUB, MOBI, FB2, XPS, CBZ, SVG) -> PDF bytes.

MuPDF lays out reflowable formats (EPUB, MOBI, FB2) into pages and keeps their text as a text
layer; the result is read as any PDF. The file is read from memory, so names that are not
UTF-8 work; a book is refused before conversion when its page count is above
``ingest.max_pages``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from rag.config import IngestConfig
from rag.errors import CorruptDocumentError, EmptyDocumentError, MmragError, ResourceLimitError

__all__ = ["ebook_to_pdf"]

logger = logging.getLogger("ingest")


def ebook_to_pdf(path: Path, fmt: str, config: IngestConfig) -> bytes:
    """The PDF MuPDF makes of an e-book (``fmt``: epub, mobi, fb2, xps, cbz, svg)."""
    import pymupdf

    started = time.perf_counter()
    try:
        source = pymupdf.open(stream=path.read_bytes(), filetype=fmt)
    except Exception as exc:  # MuPDF's FileDataError and friends
        raise CorruptDocumentError(path, f"{fmt.upper()} cannot be opened: {exc}") from exc
    try:
        count = source.page_count
        if count == 0:
            raise EmptyDocumentError(path, f"{fmt.upper()} has no pages")
        if count > config.max_pages:
            raise ResourceLimitError(path, f"{fmt.upper()} lays out as {count:,} pages, above ingest.max_pages={config.max_pages:,}")
        meta = source.metadata or {}
        names = {k: meta[k] for k in ("title", "author") if meta.get(k)}
        with pymupdf.open("pdf", source.convert_to_pdf()) as pdf:
            if names:
                pdf.set_metadata(names)
            data = pdf.tobytes()
    except MmragError:
        raise
    except Exception as exc:
        raise CorruptDocumentError(path, f"{fmt.upper()} cannot be converted to pages: {exc}") from exc
    finally:
        source.close()
    logger.info("%s: %d pages laid out by MuPDF in %.1f s", path.name, count, time.perf_counter() - started)
    return data

"""Open a document and stream its pages one by one.

A PDF is read as it is; an image gives one page per frame; Office files (LibreOffice),
HTML/Markdown/text (laid out by PyMuPDF) and e-books (MuPDF) become PDF bytes in memory first
and are then read as any PDF, under their own path, name and id; a video gives one page per
scene (``ingest._video``), its subtitles the text, an audio file its subtitles only.

::

    with open_document("manual.pdf", IngestConfig(), image_dir=Path("kb/images")) as reader:
        print(reader.info.page_count)
        for content in reader.pages():  # or reader.pages(page_range=(3, 7))
            ...

Only one page is alive at a time: no page object, pixmap or image is kept after its
``PageContent`` is yielded. Every failure caused by the file itself is raised as a
:class:`rag.errors.DocumentError` subclass naming the file and the reason.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.config import IngestConfig
from rag.errors import (
    CorruptDocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    MmragError,
    ResourceLimitError,
    UnreadableFileError,
)
from rag.types import DocumentInfo, PageContent

from ingest import _heap
from ingest._engine import import_pymupdf
from ingest._files import FileIdentity, identify_file

__all__ = ["DocumentReader", "open_document"]

logger = logging.getLogger("ingest")
_SHRINK_EVERY = 32  # pages between flushes of MuPDF's resource store


def _open_pdf_file(path: Path) -> Any:
    """``pymupdf.open`` for any path, including names that are not UTF-8.

    MuPDF takes file names as UTF-8 and fails on other bytes (``caf\\xe9.pdf`` from a Latin-1
    system). Such a file is opened through a temporary symlink with a plain name; MuPDF keeps
    its own descriptor, so the link is removed at once.
    """
    pymupdf = import_pymupdf()

    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        with tempfile.TemporaryDirectory(prefix="mmrag-open-") as tmp:
            alias = Path(tmp) / "document.pdf"
            alias.symlink_to(Path(path).absolute())
            return pymupdf.open(alias, filetype="pdf")
    return pymupdf.open(path, filetype="pdf")


def _as_pdf(identity: FileIdentity, config: IngestConfig) -> bytes:
    """The PDF an Office, HTML/Markdown/text or e-book file becomes."""
    if identity.kind == "office":
        from ingest._convert import office_to_pdf

        return office_to_pdf(identity.path, identity.format, config.convert_timeout_s)
    if identity.kind == "markup":
        from ingest._markup import markup_to_pdf

        return markup_to_pdf(identity.path, identity.format, config)
    from ingest._ebook import ebook_to_pdf

    return ebook_to_pdf(identity.path, identity.format, config)


def _said(exc: BaseException) -> str:
    """An exception's message, never empty: its type when it carries no text (rapidocr's
    ``ResizeImgError()`` made a reason of nothing)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else f"{type(exc).__name__} (the library gave no message)"


def _progress_enabled(progress: bool | None) -> bool:
    return logger.isEnabledFor(logging.INFO) if progress is None else progress


#: a metadata value a generating program wrote by mistake: a Perl or C object reference
#: ("ARRAY(0x2c7cf020)", TAMReview's author), not a name
_NOT_A_NAME = re.compile(r"^\w+\(0x[0-9a-fA-F]+\)$")


def _name(value: str | None) -> str | None:
    """A title or author from a file's metadata, ``None`` when empty or not a name."""
    text = (value or "").strip()
    return text if text and not _NOT_A_NAME.match(text) else None


class DocumentReader:
    """A document opened for reading. Cheap to construct; :meth:`open` does the work.

    Use as a context manager, or call :meth:`close`. ``info`` is available after ``open``.
    ``identity``: the file's :class:`FileIdentity` when the caller already has it (the file
    is then not checked and hashed again).
    """

    def __init__(
        self, path: str | Path, config: IngestConfig | None = None, image_dir: Path | None = None,
        identity: FileIdentity | None = None,
    ) -> None:
        self.path = Path(path)
        if identity is not None and identity.path != self.path:
            raise ValueError(f"identity is of {identity.path}, not of {self.path}")
        self.config = IngestConfig() if config is None else config
        self.image_dir = None if image_dir is None else Path(image_dir)
        self._identity = identity
        self._doc: Any = None
        self._image: Any = None
        self._media: Any = None  # a video or audio file (ingest._video.MediaDocument)
        self._info: DocumentInfo | None = None
        self._repair: Any = None  # what this document's broken fonts mean, learned page by page
        self._margins: Any = None  # its running headers and footers, learned page by page
        self._labels: Any = None  # its printed page labels, read once
        self._navigator: Any = None  # its tables of contents and indexes, read as pointers
        self._sections: Any = None  # its section paths, from its outline or its headings

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> DocumentReader:
        """Check and open the file; idempotent. Raises a DocumentError subclass on a bad file."""
        if self._info is not None:
            return self
        if self._identity is None:
            self._identity = identify_file(self.path, self.config)
        identity = self._identity
        kind = identity.kind
        if kind == "image":
            from ingest._image import frame_count, open_image

            self._image = open_image(self.path, self.config)
            (title, author), count = (None, None), frame_count(self._image, self.path, self.config)
        elif kind in ("video", "audio"):
            from ingest._video import open_media

            self._media = open_media(self.path, self.config)
            (title, author), count, kind = (None, None), self._media.page_count, self._media.kind  # a video with no picture is audio
        else:
            self._doc, (title, author), count = self._open_pdf(None if kind == "pdf" else _as_pdf(identity, self.config))
        self._info = DocumentInfo(identity.doc_id, self.path, self.path.name, kind, count, identity.size, title, author)
        return self

    def _open_pdf(self, data: bytes | None = None) -> tuple[Any, tuple[str | None, str | None], int]:
        """Open the file (``data`` None) or the PDF it was converted to: the document, its
        metadata's title and author, its page count."""
        pymupdf = import_pymupdf()

        path = self.path
        try:
            doc = _open_pdf_file(path) if data is None else pymupdf.open("pdf", data)
        except Exception as exc:  # MuPDF raises FileDataError / RuntimeError subclasses
            inner = exc.__cause__ or exc.__context__  # pymupdf wraps MuPDF's own reason
            reason = f"{exc} ({inner})" if inner is not None and str(inner) not in str(exc) else str(exc)
            if "encryption handler" in reason:
                raise EncryptedDocumentError(path, f"PDF uses a security handler MuPDF cannot open: {reason}") from exc
            raise CorruptDocumentError(path, f"PDF cannot be opened: {reason}") from exc
        try:
            if doc.needs_pass:
                password = self.config.password
                if password is None:
                    raise EncryptedDocumentError(path, "PDF is encrypted; set ingest.password to open it")
                if not doc.authenticate(password):
                    raise EncryptedDocumentError(path, "PDF is encrypted and ingest.password is wrong")
            count = doc.page_count
            if count == 0:
                if doc.is_repaired:
                    raise CorruptDocumentError(path, "PDF is broken: MuPDF repaired it and found no pages")
                raise EmptyDocumentError(path, "PDF has no pages")
            if count > self.config.max_pages:
                raise ResourceLimitError(
                    path, f"PDF has {count:,} pages, above ingest.max_pages={self.config.max_pages:,}"
                )
            meta = doc.metadata or {}
            names = (_name(meta.get("title")), _name(meta.get("author")))
        except MmragError:
            doc.close()
            raise
        except Exception as exc:  # e.g. "Invalid number of pages" on a truncated file
            state = "damaged or truncated (MuPDF's repair failed)" if doc.is_repaired else "broken"
            doc.close()
            raise CorruptDocumentError(path, f"PDF is {state}: {exc}") from exc
        return doc, names, count

    def close(self) -> None:
        if self._doc is not None:
            self._doc.close()
            self._doc = None
        if self._image is not None:
            self._image.close()
            self._image = None
        if self._media is not None:
            self._media.close()
            self._media = None

    def __enter__(self) -> DocumentReader:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------
    @property
    def info(self) -> DocumentInfo:
        if self._info is None:
            self.open()
        assert self._info is not None
        return self._info

    def pages(self, progress: bool | None = None, *, page_range: tuple[int, int] | None = None) -> Iterator[PageContent]:
        """Yield one :class:`PageContent` per page, in order (physical page 1, 2, ...).

        ``page_range=(first, last)``: only the physical pages ``first..last`` (1-based,
        inclusive), clipped to the document: ``(3, 99)`` on a 10-page file gives pages 3-10,
        a range past the last page gives nothing. ``progress`` shows a tqdm bar; ``None``
        shows it when the ``ingest`` logger is at INFO or below.
        """
        info = self.info
        if self._doc is None and self._image is None and self._media is None:
            raise UnreadableFileError(self.path, "document is closed")
        out_dir = None if self.image_dir is None else self.image_dir / info.doc_id
        first, last = (1, info.page_count) if page_range is None else page_range
        indices = range(max(1, first) - 1, min(last, info.page_count))
        from tqdm.auto import tqdm

        bar = tqdm(total=len(indices), desc=info.name, unit="page", disable=not _progress_enabled(progress), leave=False)
        started = time.perf_counter()
        stats = {"ocr": 0, "figure": 0, "table": 0}
        try:
            for index in indices:
                content = self._extract(index, info, out_dir)
                stats["ocr"] += int(content.page.ocr)
                for f in content.figures:
                    stats[f.kind] += 1
                bar.update(1)
                yield content
        finally:
            bar.close()
        logger.info(
            "ingested %s: %d pages (%d OCR), %d figures, %d tables in %.1f s",
            info.name, len(indices), stats["ocr"], stats["figure"], stats["table"], time.perf_counter() - started,
        )

    def page(self, number: int) -> PageContent:
        """Extract one page by its physical 1-based number (for previews and spot checks)."""
        info = self.info
        if not 1 <= number <= info.page_count:
            raise IndexError(f"{self.path}: page {number} out of range 1..{info.page_count}")
        if self._doc is None and self._image is None and self._media is None:
            raise UnreadableFileError(self.path, "document is closed")
        out_dir = None if self.image_dir is None else self.image_dir / info.doc_id
        return self._extract(number - 1, info, out_dir)

    def _extract(self, index: int, info: DocumentInfo, out_dir: Path | None) -> PageContent:
        try:
            if self._image is not None:
                from ingest._image import extract_image_page

                return extract_image_page(self._image, info.doc_id, self.path, self.config, out_dir, index)
            if self._media is not None:
                return self._media.page(index, info.doc_id, self.config, out_dir)
            from ingest._pdf import extract_pdf_page

            if self._repair is None:
                from ingest._margins import RunningLines
                from ingest._repair import GlyphRepair

                from ingest._labels import page_labels
                from ingest._sections import SectionTracker, outline_headings

                from ingest.navigation import Navigator

                self._repair, self._margins = GlyphRepair(), RunningLines()
                self._labels = page_labels(self._doc)
                self._navigator = Navigator(self._doc, self._labels)
                self._sections = SectionTracker(outline_headings(self._doc))
            content = extract_pdf_page(
                self._doc, index, info.doc_id, self.path, self.config, out_dir, self._repair, self._margins, self._labels,
                self._sections,
            )
            if not content.page.ocr:
                from ingest.navigation import with_navigation

                content = with_navigation(content, self._navigator.read(index, content.page.text))
            if (index + 1) % _SHRINK_EVERY == 0:
                import pymupdf

                pymupdf.TOOLS.store_shrink(100)
                _heap.trim()  # pages are freed in the embedding thread: glibc keeps them until trimmed
            return content
        except MmragError:
            raise
        except MemoryError as exc:
            raise ResourceLimitError(self.path, f"page {index + 1}: out of memory") from exc
        except OSError as exc:
            if out_dir is not None and exc.filename and str(exc.filename).startswith(str(out_dir)):
                raise  # cannot write the image folder: not the document's fault
            raise CorruptDocumentError(self.path, f"page {index + 1} cannot be read: {_said(exc)}") from exc
        except Exception as exc:  # engine errors on a broken page
            raise CorruptDocumentError(self.path, f"page {index + 1} cannot be read: {_said(exc)}") from exc


def open_document(
    path: str | Path, config: IngestConfig | None = None, image_dir: Path | None = None,
    identity: FileIdentity | None = None,
) -> DocumentReader:
    """Open a document (PDF, image, Office, HTML/Markdown/text, e-book, video, audio) for streaming
    extraction (also a context manager). Office files need LibreOffice (``soffice``); without
    it they raise :class:`rag.errors.MissingDependencyError` naming the Debian packages.

    ``identity``: the file's :func:`identify_file` result when the caller has it, so the
    file is checked and hashed once (``info.doc_id`` is ``identity.doc_id``).

    ``image_dir`` given: page images (at ``config.dpi``, format ``config.image_format``) go
    to ``image_dir/<doc_id>/page-0001.jpg`` and figure/table crops to
    ``image_dir/<doc_id>/p0001-fig01.jpg`` / ``p0001-tab01.jpg`` (the suffix follows the format). ``None``: nothing is
    written (inspect mode); everything else is still extracted.

    Limits: a page whose render at ``config.dpi`` would exceed ``max_page_pixels`` (a poster,
    a fold-out drawing) is rendered at the largest dpi that fits (``Page.dpi`` says which; its
    text comes from the text layer as on any page); OCR renders at ``ocr_dpi`` are scaled down
    the same way.
    ``max_images_per_page``: extra images on a page are ignored for figure detection (logged).
    An image a page draws (an XObject, inline, in a form, a pattern or a Type3 glyph) larger
    than ``max_image_pixels`` by its own stream header (a decompression bomb) is left out of
    the page before anything decodes it; ``Page.notes`` and the log say which and why.
    ``page_timeout_s``: a real bound per page. A page whose raw content is heavy (megabytes of
    text, tens of thousands of spans or drawing operators) is read plainly in child processes
    killed at the deadline, and table detection runs in one on every page with a table cue; what was skipped
    is said in ``Page.notes`` (:mod:`ingest._budget`).
    """
    return DocumentReader(path, config, image_dir, identity).open()

"""Ingestion: PDFs, images, Office files, HTML/Markdown/text and e-books -> pages, text
blocks, chunks, figures, tables, captions (the formats: README's "Supported files").

``identify_file`` checks a file and hashes it once (its ``FileIdentity``: format, size,
sha256 = document id); ``open_document`` streams one document page by page (all pages or a
physical page range); ``scan_paths`` expands folders and says what it skips and why;
``inspect_batch`` reads many files and reports each outcome;
``make_samples`` writes the demo documents. Heavy libraries (PyMuPDF, Pillow, rapidocr) are
imported only when a document is opened.
"""

from ingest._files import SUPPORTED_SUFFIXES, FileIdentity, identify_file
from ingest._quality import TextQuality, assess_text
from ingest.batch import (
    PathScan,
    scan_paths,
    iter_files,
    inspect_batch,
    inspect_file,
    inspect_json,
    inspect_summary,
    summarize_reports,
)
from ingest.reader import DocumentReader, open_document
from ingest.samples import make_samples

__all__ = [
    "FileIdentity",
    "identify_file",
    "DocumentReader",
    "open_document",
    "scan_paths",
    "PathScan",
    "iter_files",
    "inspect_file",
    "inspect_batch",
    "inspect_json",
    "inspect_summary",
    "summarize_reports",
    "make_samples",
    "assess_text",
    "TextQuality",
    "SUPPORTED_SUFFIXES",
]

"""Chunks, figures and tables know their section: from the PDF outline, else from headings."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from ingest import open_document
from ingest._layout import RawBlock, make_chunks
from ingest._sections import SectionTracker, detect_heading, outline_headings
from rag.config import IngestConfig
from rag.types import BBox, TextBlock

from tests._pdfgen import LOREM, chart_page, save

THREADS = "Several threads may call the parser at once provided each one keeps its own structures."


def _write(page: pymupdf.Page, y: float, text: str, size: float = 11) -> float:
    rect = pymupdf.Rect(60, y, 552, y + 400)
    left = page.insert_textbox(rect, text, fontsize=size)
    return y + (400 - left) + 24


def _manual(path: Path, outline: bool) -> Path:
    """Page 1: "1 Introduction" with prose; page 2: "2 Library notes" then, half-way down,
    "2.1 Thread safety" with a sentence that never says "thread safety" and a chart below it."""
    doc = pymupdf.open()
    p1 = doc.new_page()
    y = _write(p1, 60, "1 Introduction", 16)
    _write(p1, y, LOREM)
    p2 = doc.new_page()
    y = _write(p2, 60, "2 Library notes", 16)
    y = _write(p2, y, LOREM)
    heading_y = y
    y = _write(p2, y, "2.1 Thread safety", 13)
    y = _write(p2, y, THREADS)
    chart_page(p2, 80, y + 10)
    if outline:
        # titles that differ from the printed headings: only the outline can have given them
        doc.set_toc([
            [1, "Getting started", 1],
            [1, "Notes on the library", 2],
            [2, "Using threads", 2, {"kind": pymupdf.LINK_GOTO, "page": 1, "to": pymupdf.Point(60, heading_y - 2)}],
        ])
    return save(doc, path)


def _read(path: Path):
    # chunks of about one paragraph, so that the paragraph under a heading starts a chunk
    with open_document(path, IngestConfig(ocr="never", chunk_chars=400, chunk_overlap_chars=0)) as reader:
        return list(reader.pages(progress=False))


def _chunk_with(pages, words: str):
    return next(ch for c in pages for ch in c.chunks if words in ch.text)


def test_sections_come_from_the_pdf_outline(tmp_path):
    pages = _read(_manual(tmp_path / "outlined.pdf", outline=True))
    assert _chunk_with(pages, "committee").section == ("Getting started",)
    assert _chunk_with(pages, "Several threads").section == ("Notes on the library", "Using threads")
    # the outline entry starts half-way down page 2: the prose above it stays in the parent section
    above = [ch for ch in pages[1].chunks if "committee" in ch.text and "Several threads" not in ch.text]
    assert above and all(ch.section == ("Notes on the library",) for ch in above)
    (chart,) = [f for f in pages[1].figures if f.kind == "figure"]
    assert chart.section == ("Notes on the library", "Using threads")


def test_sections_come_from_detected_headings_without_an_outline(tmp_path):
    pages = _read(_manual(tmp_path / "plain.pdf", outline=False))
    assert _chunk_with(pages, "committee").section == ("1 Introduction",)
    assert _chunk_with(pages, "Several threads").section == ("2 Library notes", "2.1 Thread safety")
    (chart,) = [f for f in pages[1].figures if f.kind == "figure"]
    assert chart.section == ("2 Library notes", "2.1 Thread safety")


def test_the_section_is_not_written_into_the_chunk_text(tmp_path):
    pages = _read(_manual(tmp_path / "outlined.pdf", outline=True))
    chunk = _chunk_with(pages, "Several threads")
    assert "Using threads" not in chunk.text and "Notes on the library" not in chunk.text


def test_a_one_entry_or_file_name_outline_is_ignored(tmp_path):
    doc = pymupdf.open()
    doc.new_page()
    doc.set_toc([[1, "htmldoc797.html", 1]])
    path = save(doc, tmp_path / "junk.pdf")
    with pymupdf.open(path) as opened:
        assert outline_headings(opened) == []


def _block(text: str, size: float = 11.0, lines: int = 1) -> RawBlock:
    return RawBlock((0, 0, 100, 10), text, tuple(((0, 0, 100, 10), text) for _ in range(lines)), size)


@pytest.mark.parametrize(
    ("text", "size", "expected"),
    [
        ("2.1 ASN.1 syntax", 11, (2, "2.1 ASN.1 syntax")),
        ("3. Estimating the covariance", 11, (1, "3. Estimating the covariance")),
        ("Thread safety", 16, (1, "Thread safety")),
        ("Thread safety", 13, (2, "Thread safety")),
        ("Thread safety", 11, None),  # body size, unnumbered: not a heading
        ("2 of the 3 readers agreed.", 11, None),  # a sentence
        ("3 times the rate", 11, None),  # lowercase after the number
        ("250 Megabytes", 11, None),  # a quantity
        ("Figure 2: Rainfall per quarter", 15, None),  # a caption
    ],
)
def test_detect_heading(text, size, expected):
    assert detect_heading(_block(text, size), body_size=11.0) == expected


def test_a_deeper_heading_nests_and_a_sibling_replaces():
    tracker = SectionTracker()
    blocks = [_block("1 Intro", 14), _block(LOREM), _block("1.1 Scope", 12), _block(LOREM), _block("1.2 Terms", 12),
              _block("2 Use", 14), _block(LOREM)]
    paths = tracker.page(0, blocks)
    assert paths == [("1 Intro",), ("1 Intro",), ("1 Intro", "1.1 Scope"), ("1 Intro", "1.1 Scope"),
                     ("1 Intro", "1.2 Terms"), ("2 Use",), ("2 Use",)]
    # the next page continues in the section the last one ended in
    assert tracker.page(1, [_block(LOREM)]) == [("2 Use",)]


def test_a_chunk_takes_the_section_of_its_first_new_text():
    blocks = [TextBlock("d", 1, i, BBox(0, i * 20, 100, i * 20 + 10), f"{'word ' * 30}{i}") for i in range(3)]
    sections = [("A",), ("A", "B"), ("C",)]
    chunks = make_chunks(blocks, chunk_chars=170, overlap_chars=20, sections=sections)
    assert [ch.section for ch in chunks] == [("A",), ("A", "B"), ("C",)]
    with pytest.raises(ValueError, match="3 blocks but 2 section paths"):
        make_chunks(blocks, 170, 20, sections=sections[:2])

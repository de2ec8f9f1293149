"""Navigation pages (contents, index, list of figures) are found by their cues and their entries
point to physical pages through the page labels, or through an offset the entries themselves
confirm when a PDF has no labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import open_document
from ingest.navigation import Navigation, Row, classify, entries_of, rows_of_lines, with_navigation
from rag.config import IngestConfig
from rag.types import BBox, Figure, NavEntry, Page, PageContent
from tests._pdfgen import book_pdf

CONFIG = IngestConfig(ocr="never")


def _pages(path: Path) -> dict[int, Page]:
    with open_document(path, CONFIG) as reader:
        return {c.page.page: c.page for c in reader.pages(progress=False)}


@pytest.mark.parametrize("labels", [True, False], ids=["page-labels", "printed-numbers-only"])
def test_a_book_contents_and_index_point_to_physical_pages(tmp_path, labels):
    pages = _pages(book_pdf(tmp_path / "book.pdf", labels=labels))
    assert pages[2].navigation == "contents" and pages[10].navigation == "index"
    assert all(pages[n].navigation is None and pages[n].entries == () for n in (1, 3, 4, 5, 6, 7, 8, 9))
    contents = {e.text: e for e in pages[2].entries}
    # chapter 3 is printed "3" and sits on physical page 6 (three front-matter pages before it)
    assert contents["3 Threads and fittings"] == NavEntry("3 Threads and fittings", 6, "3")
    assert contents["6 Cavitation"].page == 9
    index = {(e.text, e.page) for e in pages[10].entries}
    assert {("threads", 6), ("impellers", 4), ("impellers", 8), ("bearings", 7)} <= index
    if labels:  # a roman front-matter label resolves too
        assert contents["Preface"].page == 3


def _rows(lines: list[str]) -> list[Row]:
    return rows_of_lines([((60.0, 100.0 + 14 * k, 300.0, 110.0 + 14 * k), text) for k, text in enumerate(lines)])


def test_a_table_of_measurements_is_not_a_table_of_contents():
    rows = _rows(["Pump  Flow  Head", "K7 outlet 12", "A3 inlet 4", "K2 outlet 31", "B9 inlet 2", "K1 outlet 17", "C4 inlet 9"])
    assert classify(rows, lambda ref: 1 <= int(ref) <= 40 if ref.isdigit() else False) is None


def test_an_index_is_told_from_contents_by_alphabetical_terms_and_comma_references():
    index = _rows(["Index", "bearings, 4, 12", "cavitation, 6", "fittings, 3, 9-11", "gaskets, 2", "impellers, 1, 5", "seals, 2"])
    contents = _rows(["Contents", "1 Impellers . . . . 1", "2 Seals . . . . 2", "3 Threads . . . . 3", "4 Bearings . . . . 7", "5 Priming . . . . 9"])
    assert classify(index) == "index" and classify(contents) == "contents"
    assert ("fittings", "9-11") in entries_of(index, "index")
    # the heading is a supporting cue, not a requirement
    assert classify(contents[1:]) == "contents"


def test_an_index_entry_wrapped_over_two_lines_keeps_its_references():
    rows = rows_of_lines([((60.0, 100.0, 300.0, 110.0), "copyright terms extended by,"), ((70.0, 112.0, 120.0, 122.0), "214-18, 219")])
    assert [(r.text, r.refs) for r in rows] == [("copyright terms extended by", ("214-18", "219"))]


def test_tables_found_on_a_contents_page_are_dropped_figures_elsewhere_kept():
    page = Page("d", 2, 420.0, 600.0, "Contents", ocr=False)
    inside = Figure("d", 2, 0, "table", BBox(60, 100, 360, 300), text="| 1 Impellers | 1 |")
    outside = Figure("d", 2, 1, "figure", BBox(60, 400, 360, 560), caption="Figure 1: a pump")
    nav = Navigation("contents", (NavEntry("1 Impellers", 4, "1"),), BBox(60, 100, 360, 310))
    out = with_navigation(PageContent(page, figures=(inside, outside)), nav)
    assert out.page.navigation == "contents" and out.page.entries == nav.entries
    assert out.figures == (outside,)
    plain = PageContent(page, figures=(inside,))
    assert with_navigation(plain, None) is plain

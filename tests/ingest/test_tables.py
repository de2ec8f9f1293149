"""Which pages the (slow) table finder runs on, and that tables are still found."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pymupdf
import pytest

import _pdfgen as g
from ingest import _tables, open_document
from ingest._layout import RawBlock
from ingest._tables import may_have_tables, side_by_side_rows, table_cues
from rag.config import IngestConfig

NO_OCR = IngestConfig(ocr="never")
TABLE_ROWS = (("Branch", "Opens", "Closes"), ("Harbour", "08:30", "17:00"), ("Hillside", "10:15", "19:45"))
LISTING = [("v0 := ld state[748]", "// load primes from the record"), ("st sp[0], v0", "// store primes on the stack"),
           ("v1 := ld state[764]", "// load k from the record"), ("v2 := i2f(v1)", "// convert k to a double"),
           ("st sp[8], v1", "// store k on the stack"), ("v3 := ld v0[4]", "// load the class word")]


def _counting_finder(monkeypatch, log: Path) -> None:
    """Record each page the finder runs on; it runs in a forked child, so the record is a file."""
    real = _tables.find_tables

    def counted(page, path, n):
        with open(log, "a") as fh:
            fh.write(f"{n}\n")
        return real(page, path, n)

    monkeypatch.setattr(_tables, "find_tables", counted)


def _searched(log: Path) -> list[int]:
    return [int(x) for x in log.read_text().split()] if log.exists() else []


def _read(path: Path) -> list:
    with open_document(path, NO_OCR) as reader:
        return list(reader.pages(progress=False))


def _listing_page(page: pymupdf.Page, y0: float, caption: str) -> None:
    """Code beside its comments, no rules: two text lines side by side per row, then a caption."""
    for i, (code, comment) in enumerate(LISTING):
        page.insert_text((72, y0 + i * 12), code, fontsize=8, fontname="cour")
        page.insert_text((200, y0 + i * 12), comment, fontsize=8, fontname="cour")
    page.insert_text((72, y0 + len(LISTING) * 12 + 14), caption, fontsize=9)


def test_prose_and_a_captioned_chart_do_not_run_the_table_finder(tmp_path, monkeypatch):
    doc = pymupdf.open()
    p1 = doc.new_page()
    p1.insert_textbox(pymupdf.Rect(60, 50, 550, 200), g.LOREM + " " + g.LOREM, fontsize=10)
    p2 = doc.new_page()
    p2.insert_textbox(pymupdf.Rect(60, 50, 550, 120), g.LOREM, fontsize=10)
    g.chart_page(p2, 150, 200)  # "Figure 1: Rainfall ..." under a bar chart
    path = g.save(doc, tmp_path / "prose.pdf")
    two = g.two_column_pdf(tmp_path / "columns.pdf")
    log = tmp_path / "searched.txt"
    _counting_finder(monkeypatch, log)
    pages = _read(path)
    assert _searched(log) == []
    assert [f.kind for f in pages[1].figures] == ["figure"] and pages[1].figures[0].caption.startswith("Figure 1")
    _read(two)
    assert _searched(log) == []


def test_a_ruled_table_is_searched_and_found(tmp_path, monkeypatch):
    doc = pymupdf.open()
    p1 = doc.new_page()
    p1.insert_textbox(pymupdf.Rect(60, 50, 550, 200), g.LOREM, fontsize=10)
    p2 = doc.new_page()
    g.table_page(p2, 80, 100, TABLE_ROWS, caption=None)  # rulings, no caption
    path = g.save(doc, tmp_path / "ruled.pdf")
    log = tmp_path / "searched.txt"
    _counting_finder(monkeypatch, log)
    pages = _read(path)
    assert _searched(log) == [2]
    (table,) = [f for f in pages[1].figures if f.kind == "table"]
    assert "|Hillside|10:15|19:45|" in table.text.replace(" ", "")


def test_a_borderless_listing_under_a_figure_caption_is_searched(tmp_path, monkeypatch):
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(60, 50, 550, 120), g.LOREM, fontsize=10)
    _listing_page(page, 160, "Figure 3. LIR snippet for a sample program.")
    path = g.save(doc, tmp_path / "listing.pdf")
    log = tmp_path / "searched.txt"
    _counting_finder(monkeypatch, log)
    _read(path)
    assert _searched(log) == [1]


def _block(*lines: tuple[float, float, float, float]) -> RawBlock:
    return RawBlock(lines[0], "text", tuple((b, "text") for b in lines))


def test_side_by_side_rows_ignore_the_gutter_of_two_column_prose():
    width = 612.0
    prose = [_block(*[(54, 100 + 12 * i, 298, 110 + 12 * i) for i in range(10)]),
             _block(*[(316, 100 + 12 * i, 558, 110 + 12 * i) for i in range(10)])]
    assert side_by_side_rows(prose, width) == 0
    cells = [_block(*[(54, 400 + 12 * i, 140, 410 + 12 * i) for i in range(4)]),
             _block(*[(167, 400 + 12 * i, 380, 410 + 12 * i) for i in range(4)])]
    assert side_by_side_rows(prose + cells, width) == 4


@pytest.mark.parametrize(("caption", "expected"), [("Table 2 Initial scale items", True), ("Figure 7: TAM 2", False)])
def test_a_table_caption_alone_is_a_cue_a_figure_caption_needs_side_by_side_text(caption, expected):
    width = 612.0
    prose = [_block(*[(54, 100 + 12 * i, 558, 110 + 12 * i) for i in range(10)]), RawBlock((54, 300, 300, 310), caption)]
    assert may_have_tables(prose, [], width) is expected
    cells = [_block(*[(54, 400 + 12 * i, 140, 410 + 12 * i) for i in range(3)]),
             _block(*[(167, 400 + 12 * i, 380, 410 + 12 * i) for i in range(3)])]
    assert may_have_tables(prose + cells, [], width) is True


def test_a_page_without_a_text_layer_is_searched_only_for_ruled_tables():
    """OCR rows of a scan look like table rows, but the finder reads the PDF's own text and
    drawings: with no text there, only drawn lines can make a table."""
    from ingest._figures import Element

    width = 612.0
    ocr_rows = [_block(*[(54 + 120 * c, 100 + 14 * r, 150 + 120 * c, 110 + 14 * r) for r in range(5)]) for c in range(4)]
    assert may_have_tables(ocr_rows, [], width) is True
    assert may_have_tables(ocr_rows, [], width, text_layer=False) is False
    rules = [Element((54.0, 98.0 + 14 * r, 530.0, 98.5 + 14 * r), False) for r in range(6)]
    assert may_have_tables(ocr_rows, rules, width, text_layer=False) is True


@pytest.mark.slow  # OCR of a page: tens of seconds on a loaded machine
def test_a_scanned_table_is_read_by_ocr_without_running_the_table_finder(tmp_path, monkeypatch):
    src = pymupdf.open()
    drawn = src.new_page(width=420, height=150)
    g.table_page(drawn, 40, 50, TABLE_ROWS)  # "Table 1: ..." above a ruled table, all in the picture
    pix = drawn.get_pixmap(dpi=150)
    doc = pymupdf.open()
    doc.new_page(width=420, height=150).insert_image(pymupdf.Rect(0, 0, 420, 150), pixmap=pix)
    src.close()
    path = g.save(doc, tmp_path / "scan.pdf")
    log = tmp_path / "searched.txt"
    _counting_finder(monkeypatch, log)
    with open_document(path, IngestConfig()) as reader:
        (content,) = list(reader.pages(progress=False))
    assert content.page.ocr and "Hillside" in content.page.text and "Table 1" in content.page.text
    assert _searched(log) == []


def test_a_rule_crossing_a_cell_does_not_strike_its_text_out(tmp_path):
    """PyMuPDF marks a span a drawn line crosses as struck out (``2 July 201~~1~~``); the table
    keeps the plain text, so an answer quotes '2 July 2011'."""
    doc = pymupdf.open()
    page = doc.new_page()
    g.table_page(page, 80, 100, (("Name", "Value", "Source"), ("Initial release", "2 July 2011", "blog"), ("Stable release", "4.0.379", "site")), caption=None)
    words = {w[4]: w for w in page.get_text("words")}
    x0, y0, x1, y1 = words["2011"][:4]
    page.draw_line((x0 + 0.6 * (x1 - x0), (y0 + y1) / 2), (x1 + 1, (y0 + y1) / 2), width=0.6)  # through the last digit
    path = g.save(doc, tmp_path / "struck.pdf")
    (table,) = [f for f in _read(path)[0].figures if f.kind == "table"]
    assert "~~" not in table.text
    assert "2 July 2011" in table.text


def test_the_fast_profile_sends_a_page_to_the_table_finder_only_on_two_cues():
    """A figure caption beside side-by-side text (a paper's code listing) is one cue: enough
    for the default profile's table finder, not for the fast profile's; rows of cells beside
    it make two, enough for both. A scan keeps its one possible cue, ruling lines."""
    from ingest._figures import Element
    from rag.config import IngestConfig

    width = 612.0
    default, fast = IngestConfig().table_cues, IngestConfig(profile="fast").table_cues
    caption = RawBlock((54, 300, 300, 310), "Figure 3: LIR snippet for sample program")
    listing = [_block(*[(54, 400 + 12 * i, 140, 410 + 12 * i) for i in range(4)]),
               _block(*[(167, 400 + 12 * i, 380, 410 + 12 * i) for i in range(4)])]
    one = [caption, *listing]
    assert table_cues(one, [], width) == 1
    assert may_have_tables(one, [], width, min_cues=default) is True
    assert may_have_tables(one, [], width, min_cues=fast) is False
    cells = [_block(*[(54 + 120 * c, 500 + 14 * r, 150 + 120 * c, 510 + 14 * r) for r in range(4)]) for c in range(4)]
    assert table_cues(one + cells, [], width) == 2
    assert may_have_tables(one + cells, [], width, min_cues=fast) is True
    rules = [Element((54.0, 98.0 + 14 * r, 530.0, 98.5 + 14 * r), False) for r in range(6)]
    assert may_have_tables(cells, rules, width, text_layer=False, min_cues=fast) is True
    assert may_have_tables(cells, [], width, text_layer=False, min_cues=1) is False


def test_table_cues_is_checked_and_the_profile_gives_it():
    from rag.config import IngestConfig
    from rag.errors import ConfigError

    assert IngestConfig(profile="fast", table_cues=1).table_cues == 1  # a given value wins
    for bad in (0, 4, True, "2"):
        with pytest.raises(ConfigError, match="table_cues"):
            IngestConfig(table_cues=bad)


def test_a_ruled_grid_alone_is_enough_for_the_fast_profile():
    """Six or more ruling lines (an uncaptioned ruled table, a web page's infobox) count as two
    cues; three rules (a header rule, a footnote rule, a frame) as one."""
    from ingest._figures import Element

    width = 612.0
    prose = [_block(*[(54, 100 + 12 * i, 558, 110 + 12 * i) for i in range(10)])]
    grid = [Element((54.0, 300.0 + 14 * r, 530.0, 300.5 + 14 * r), False) for r in range(6)]
    assert table_cues(prose, grid, width) == 2
    assert may_have_tables(prose, grid, width, min_cues=2) is True
    assert table_cues(prose, grid[:3], width) == 1
    assert may_have_tables(prose, grid[:3], width, min_cues=2) is False


def test_a_header_cell_left_empty_on_the_page_is_blank_in_the_table_text(tmp_path):
    """PyMuPDF names an empty header cell "Col1"; the stored table (embedded, indexed, quoted in
    its sources) leaves it blank, as the page does."""
    doc = pymupdf.open()
    page = doc.new_page()
    g.table_page(page, 80, 100, (("", "Loops", "Aborts"), ("access-fannkuch", "10", "24"), ("3d-raytrace", "10", "2")),
                 caption="Table 2: Trace aborts by benchmark.")
    path = g.save(doc, tmp_path / "corner.pdf")
    (table,) = [f for f in _read(path)[0].figures if f.kind == "table"]
    assert "Col1" not in table.text
    assert table.text.startswith("| |Loops|Aborts|")
    assert "|access-fannkuch|10|24|" in table.text.replace(" ", "")


def test_only_the_names_pymupdf_gives_empty_header_cells_are_blanked():
    assert _tables.blank_unnamed_header("|Col1|Loops|Col3|\n|---|---|---|\n|a|1|2|") == "| |Loops| |\n|---|---|---|\n|a|1|2|"
    assert _tables.blank_unnamed_header("|Name|Col1|\n|---|---|") == "|Name|Col1|\n|---|---|"  # a real heading "Col1"


def test_a_tables_cells_are_read_from_one_reading_of_the_page(tmp_path, monkeypatch):
    """PyMuPDF reads the whole page as a raw dict once per table cell when it writes a table
    out (a 5 x 10 table of tracemonkey.pdf: 0.51 s of CPU); the finder reads it once per page,
    and the markdown is the same."""
    doc = pymupdf.open()
    page = doc.new_page()
    rows = [("Branch", "Opens", "Closes", "Staff")] + [(f"Branch {i}", f"0{i % 9}:30", "17:00", str(i)) for i in range(12)]
    g.table_page(page, 40, 100, rows)
    with pymupdf.open(g.save(doc, tmp_path / "cells.pdf")) as pdf:
        page = pdf[0]
        calls: list[int] = []
        real = pymupdf.TextPage.extractRAWDICT

        def counted(self, *args, **kwargs):
            calls.append(1)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(pymupdf.TextPage, "extractRAWDICT", counted)
        (found,) = _tables.find_tables(page, Path("cells.pdf"), 1)
        once = len(calls)
        monkeypatch.setattr(_tables, "_page_read_once", lambda textpages: contextlib.nullcontext())
        calls.clear()
        (plain,) = _tables.find_tables(page, Path("cells.pdf"), 1)
    assert found == plain and "Branch 11" in found[1]
    assert once <= 2 < 4 * 13 <= len(calls)  # 13 rows x 4 cells each read the page again

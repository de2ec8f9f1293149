"""The ingest stage on the five real PDFs of ../shared/eval (skipped when that folder is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import assess_text, inspect_json, open_document
from rag.config import IngestConfig

EVAL = Path(__file__).resolve().parents[3] / "shared" / "eval"
DOCS = EVAL / "docs"
pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason=f"real eval PDFs not found at {DOCS}")
NO_OCR = IngestConfig(ocr="never")


@pytest.fixture(scope="module")
def tracemonkey():
    with open_document(DOCS / "tracemonkey.pdf", NO_OCR) as reader:
        return reader.info, list(reader.pages(progress=False))


def _captions(pages, n):
    return {(f.kind, (f.caption or "").split(".")[0]) for f in pages[n - 1].figures}


def test_page_counts_without_reading_every_page():
    expected = {"tracemonkey.pdf": 14, "TAMReview.pdf": 23, "freeculture.pdf": 352, "amt_handbook_sample.pdf": 1, "pdfjs_wikipedia.pdf": 1}
    for name, count in expected.items():
        with open_document(DOCS / name, NO_OCR) as reader:
            assert reader.info.page_count == count, name
            assert reader.info.kind == "pdf" and reader.info.name == name


def test_doc_id_is_the_sha256_listed_in_sources():
    with open_document(DOCS / "tracemonkey.pdf", NO_OCR) as reader:
        assert reader.info.doc_id == "3662ff519e485810520552bf301d8c3b2b917fd2f83303f4965d7abed367e113"


def test_tracemonkey_figures_and_captions_land_on_the_right_pages(tracemonkey):
    info, pages = tracemonkey
    assert [p.page.page for p in pages] == list(range(1, 15))
    assert ("figure", "Figure 2") in _captions(pages, 2)  # the state machine
    assert {("figure", "Figure 5"), ("figure", "Figure 6")} <= _captions(pages, 6)
    assert {("figure", "Figure 7"), ("figure", "Figure 8")} <= _captions(pages, 7)
    assert ("figure", "Figure 11") in _captions(pages, 10)
    assert ("table", "Figure 13") in _captions(pages, 12)  # a statistics table captioned "Figure 13."
    for n, label in ((11, "Figure 10"), (13, "Figure 12")):  # bar charts drawn from image tiles
        (fig,) = [f for f in pages[n - 1].figures if (f.caption or "").startswith(label)]
        assert fig.source == "raster" and fig.bbox.width > 200 and fig.bbox.height > 150
    assert all(not p.figures for p in (pages[0], pages[3], pages[4], pages[8]))  # text-only pages
    assert not any(p.page.ocr for p in pages)


def test_tracemonkey_statistics_table_has_its_cells(tracemonkey):
    _, pages = tracemonkey
    (table,) = [f for f in pages[11].figures if f.kind == "table"]
    assert "Speedup" in table.text and "Traces/Loop" in table.text and "3d-cube" in table.text
    assert "|3d-cube|25|27|29|3|0|1.1|1.1|1.2|2.20x|" in table.text  # merged rows split back
    assert table.text.count("\n") >= 20  # one markdown row per benchmark
    assert table.caption.startswith("Figure 13. Detailed trace recording statistics")


def test_tracemonkey_code_listings_captioned_as_figures_are_found_as_tables(tracemonkey):
    """No rulings, no "Table" caption: the table finder runs because code sits beside its comments."""
    _, pages = tracemonkey
    tables = [f for f in pages[2].figures if f.kind == "table"]
    assert len(tables) == 2 and "// load primes from the trace activation record" in tables[0].text


def test_tracemonkey_two_columns_read_in_order(tracemonkey):
    _, pages = tracemonkey
    text = pages[0].page.text
    marks = ["Trace-based Just-in-Time", "Abstract", "Categories and Subject", "1. Introduction",
             "Permission to make digital", "and is used for the application logic", "Each compiled trace covers"]
    positions = [text.index(m) for m in marks]  # title, whole left column, then the right column
    assert positions == sorted(positions)
    assert all(c.page == p.page.page for p in pages for c in p.chunks)
    assert sum(len(p.chunks) for p in pages) > 100


def test_garbled_heuristic_on_every_page_of_the_real_pdfs():
    import pymupdf

    flagged = {}
    for path in sorted(DOCS.glob("*.pdf")):
        with pymupdf.open(path) as doc:
            flagged[path.name] = [i + 1 for i, page in enumerate(doc) if assess_text(page.get_text()).verdict == "garbled"]
    # pages 2-22 carry garbage glyphs; page 23 is the journal's back cover with a clean text layer
    assert flagged["TAMReview.pdf"] == list(range(2, 23))
    assert flagged["tracemonkey.pdf"] == [] and flagged["freeculture.pdf"] == []
    assert flagged["amt_handbook_sample.pdf"] == [] and flagged["pdfjs_wikipedia.pdf"] == []


def test_tamreview_page_4_is_decoded_into_clean_english():
    # the paper's Cambria subset maps its glyphs to control characters: the repair learns them
    # from OCR of a few lines and keeps the text layer (its boxes and reading order)
    with open_document(DOCS / "TAMReview.pdf", IngestConfig()) as reader:
        content = reader.page(4)
        cover = reader.page(1)
    page = content.page
    assert not page.ocr and not cover.page.ocr
    assert "The Theory of Reasoned Action" in page.text
    assert "extensions proposed to the original TAM. Finally, the paper will conclude" in page.text
    assert assess_text(page.text).usable
    assert all(0 <= b.bbox.x1 <= page.width for b in content.blocks)
    fig = next(f for f in content.figures if f.caption)
    # the text layer holds caption and the next paragraph in one block: the caption stops at the break
    assert fig.caption == "Figure 3: The Theory of Reasoned Action model (Davis, Bagozzi and Warshaw, 1989)"
    assert "In their theoretical model, Fishbein and Ajzen" in page.text
    with open_document(DOCS / "TAMReview.pdf", IngestConfig(ocr_figures=False)) as reader:
        scale = reader.page(7)
    # the title runs into the table's rows in the same block: the caption is the title alone
    assert [f.caption for f in scale.figures if f.caption] == [
        "Table 2 Initial scale items for perceived ease of use (Davis, 1989, p. 324)"
    ]
    assert "Attitude" in fig.text  # box labels of the (raster) diagram, read by OCR


def test_tracemonkey_chart_labels_in_a_broken_font_are_decoded():
    # Figure 11's labels use a Calibri subset without a character map ('&-./012#3%4%56#'):
    # the clean body text triggers nothing, the symbol-soup lines trigger the glyph repair
    with open_document(DOCS / "tracemonkey.pdf", IngestConfig(ocr_figures=False)) as reader:
        content = reader.page(10)
    fig = next(f for f in content.figures if (f.caption or "").startswith("Figure 11"))
    for label in ("3d-cube (2.2x)", "crypto-md5 (2.3x)", "bitops-3bit-bits-in-byte (25.5x)", "regexp-dna (4.2x)"):
        assert label in fig.text, fig.text
    assert "#3" not in fig.text and "#3" not in content.page.text
    assert "Like most interpreters, SpiderMonkey has a foreign function interface" in content.page.text


def test_freeculture_single_page_and_a_table_on_wikipedia():
    with open_document(DOCS / "freeculture.pdf", NO_OCR) as reader:
        page = reader.page(41)
    assert page.page.page == 41 and page.page.label is None  # this PDF defines no page labels
    assert "learn to draw" in page.page.text and not page.page.ocr
    with open_document(DOCS / "pdfjs_wikipedia.pdf", NO_OCR) as reader:
        info = reader.info
        pages = list(reader.pages(progress=False))
    tables = [f for f in pages[0].figures if f.kind == "table"]
    assert len(tables) == 1 and "Developer" in tables[0].text and "Mozilla" in tables[0].text
    data = inspect_json(info, pages)
    assert data["pages"][0]["figures"] and data["name"] == "pdfjs_wikipedia.pdf"


def test_amt_handbook_figures_have_their_caption():
    with open_document(DOCS / "amt_handbook_sample.pdf", NO_OCR) as reader:
        (content,) = list(reader.pages(progress=False))
    captions = [f.caption for f in content.figures if f.caption]
    assert any(c.startswith("Figure 7-26.") for c in captions)
    assert "Figure 7-26. Self-locking nuts." in content.page.text


@pytest.mark.slow
def test_tamreview_every_garbled_page_is_ocrd_into_usable_text():
    with open_document(DOCS / "TAMReview.pdf", IngestConfig(ocr_figures=False, repair_text=False)) as reader:
        pages = list(reader.pages(progress=False))
    assert [p.page.page for p in pages if p.page.ocr] == list(range(2, 23))
    assert all(assess_text(p.page.text).usable for p in pages)
    captions = [f.caption for p in pages for f in p.figures if f.caption]
    assert any(c.startswith("Table 2") for c in captions) and any(c.startswith("Figure 3") for c in captions)


@pytest.mark.slow
def test_tamreview_every_garbled_page_is_decoded_with_few_line_recognitions():
    with open_document(DOCS / "TAMReview.pdf", IngestConfig(ocr_figures=False)) as reader:
        pages = list(reader.pages(progress=False))
        learned = reader._repair.recognised_lines
    assert not any(p.page.ocr for p in pages)
    assert all(assess_text(p.page.text).usable for p in pages)
    assert learned < 200  # the 21 garbled pages have about 900 lines
    text = "\n".join(p.page.text for p in pages)
    assert "Overview of the Technology Acceptance Model: Origins, Developments and Future Directions" in text
    captions = [f.caption for p in pages for f in p.figures if f.caption]
    assert any(c.startswith("Table 2") for c in captions) and any(c.startswith("Figure 8") for c in captions)


@pytest.mark.slow
def test_freeculture_streams_all_352_pages_without_ocr():
    with open_document(DOCS / "freeculture.pdf", NO_OCR) as reader:
        numbers = [c.page.page for c in reader.pages(progress=False)]
    assert numbers == list(range(1, 353))


def test_a_large_real_scan_inside_a_pdf_is_read_not_refused():
    # freeculture p.171 embeds the Paul Conrad cartoon as an 8992 x 10384 scan (93 Mpx): a real
    # document, not a decompression bomb, so the default image limit must let it through
    with open_document(DOCS / "freeculture.pdf", NO_OCR) as reader:
        content = reader.page(171)
    assert content.figures and content.page.page == 171

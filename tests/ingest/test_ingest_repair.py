"""Decoding garbled text layers: a font whose code-to-Unicode map is wrong is learned from OCR
of a few of its lines, and the page keeps its text layer (exact boxes) instead of a full OCR."""

from __future__ import annotations

import string
from pathlib import Path

import pymupdf
import pytest

from ingest import assess_text, open_document
from rag.config import IngestConfig

PROSE = [
    "The quick brown fox jumps over the lazy dog while the farmer counts twelve sheep. "
    "Every morning the village baker bakes fresh bread with rye, wheat and a little honey. "
    "Visitors queue at the window just before seven to buy warm loaves and sweet buns.",
    "Maintenance crews inspect the bridge every six months and replace worn bolts quickly. "
    "Heavy trucks must keep to the right lane, and cyclists use the path beside the river. "
    "Jazz concerts on the square draw large crowds during the warm summer evenings.",
    "The museum opened a new gallery of maps showing how the harbour grew over time. "
    "Children can examine old compasses, weigh antique coins and sketch the ships. "
    "Entry is free on the first Sunday of each month, when volunteers give guided tours.",
]


def _scramble(text: str) -> str:
    """What the broken map says a character is: each letter shifted by 3 in the alphabet."""
    lower, upper = string.ascii_lowercase, string.ascii_uppercase
    table = str.maketrans(lower + upper, lower[3:] + lower[:3] + upper[3:] + upper[:3])
    return text.translate(table)


def garbled_pdf(path: Path, pages: list[str] = PROSE) -> Path:
    """Pages of English in Helvetica whose font carries a ToUnicode map that lies: it renders
    correctly, but its text layer extracts shifted letters (a substitution cipher)."""
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page(width=612, height=792)
        page.insert_textbox(pymupdf.Rect(60, 60, 552, 400), text, fontsize=12, fontname="helv")
    entries = "\n".join(f"<{code:02X}> <{ord(_scramble(chr(code))):04X}>" for code in range(32, 127))
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Broken def /CMapType 2 def\n1 begincodespacerange <00> <FF> endcodespacerange\n"
        f"95 beginbfchar\n{entries}\nendbfchar\nendcmap CMapName currentdict /CMap defineresource pop end end"
    )
    stream = doc.get_new_xref()
    doc.update_object(stream, "<<>>")
    doc.update_stream(stream, cmap.encode())
    for xref in {f[0] for page in doc for f in page.get_fonts()}:
        doc.xref_set_key(xref, "ToUnicode", f"{stream} 0 R")
    doc.save(path)
    doc.close()
    return path


def _rendered_px(box) -> float:
    """How wide a text line of ``box`` (points) is when rendered for the recogniser: 48 px high
    with 15 % of its height padded on each side (``ingest._repair._render_line``)."""
    x0, y0, x1, y1 = box
    return (x1 - x0 + 0.3 * (y1 - y0)) * 48 / (1.3 * (y1 - y0))


@pytest.fixture
def recognised_widths(monkeypatch) -> list[int]:
    """The width in pixels of each image the recogniser is given, as the test goes."""
    import ingest._ocr as ocr

    widths: list[int] = []
    real = ocr.recognize_lines

    def measured(images):
        widths.extend(image.shape[1] for image in images)
        return real(images)

    monkeypatch.setattr(ocr, "recognize_lines", measured)
    return widths


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Path:
    return garbled_pdf(tmp_path_factory.mktemp("repair") / "broken_map.pdf")


def test_the_generated_text_layer_is_garbled(broken):
    with pymupdf.open(broken) as doc:
        raw = doc[0].get_text()
    assert "Wkh txlfn eurzq ira" in raw  # the lie is what extraction gives
    assert assess_text(raw).verdict == "garbled"


def test_garbled_pages_are_decoded_from_a_few_ocr_lines(broken, recognised_widths):
    widths = recognised_widths
    with open_document(broken, IngestConfig(ocr_figures=False)) as reader:
        pages, learned = [], []
        for page in reader.pages(progress=False):
            pages.append(page)
            learned.append(reader._repair.recognised_lines)
    for page, prose in zip(pages, PROSE):
        assert not page.page.ocr  # the text layer was kept, not replaced by a page OCR
        words = prose.split()
        found = sum(w in page.page.text for w in words)
        assert found / len(words) >= 0.9, page.page.text
        assert all(not b.ocr for b in page.blocks)
    # boxes are the text layer's own: inside the text box drawn at (60, 60)-(552, 400)
    assert all(58 <= b.bbox.x0 and b.bbox.y1 <= 402 for p in pages for b in p.blocks)
    # a few words per line are read, and what one page taught is reused: all pages together
    # read well under the width of their lines (0.55 measured; whole lines read: 0.68)
    assert learned[0] > 0
    with pymupdf.open(broken) as doc:
        lines_px = sum(_rendered_px(ln["bbox"]) for page in doc
                       for b in page.get_text("dict")["blocks"] for ln in b.get("lines", ()))
    assert sum(widths) < 0.6 * lines_px


def test_without_repair_the_page_is_ocrd_instead(broken):
    with open_document(broken, IngestConfig(ocr_figures=False, repair_text=False)) as reader:
        page = reader.page(1)
    assert page.page.ocr
    assert "quick brown fox" in page.page.text


def test_ocr_never_leaves_the_garbled_text_alone(broken):
    with open_document(broken, IngestConfig(ocr="never")) as reader:
        page = reader.page(1)
    assert not page.page.ocr and "Wkh txlfn" in page.page.text


def test_without_rapidocr_auto_ocr_warns_once_and_always_ocr_names_the_install_line(monkeypatch, caplog):
    import sys

    import ingest._textlayer as textlayer
    from rag.config import IngestConfig
    from rag.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "rapidocr", None)  # as if not installed
    monkeypatch.setattr(textlayer, "_warned_missing_ocr", False)
    with caplog.at_level("WARNING"):
        assert textlayer._ocr_available(IngestConfig(ocr="auto")) is False
        assert textlayer._ocr_available(IngestConfig(ocr="auto")) is False
    assert sum("rapidocr is not installed" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(MissingDependencyError, match=r"pip install 'mmrag\[ocr\]'"):
        textlayer._ocr_available(IngestConfig(ocr="always"))


def test_a_garbled_line_repeated_on_every_page_is_recognised_once(tmp_path, monkeypatch):
    """A running header in a broken font: learned from one recognition, decoded on every page."""
    import ingest._ocr as ocr
    from ingest._repair import GlyphRepair

    read: list[int] = []
    real = ocr.recognize_lines

    def counted(images):
        read.append(len(images))
        return real(images)

    monkeypatch.setattr(ocr, "recognize_lines", counted)
    path = garbled_pdf(tmp_path / "header.pdf", ["Annual report of the harbour board"] * 5)
    repair = GlyphRepair()
    with pymupdf.open(path) as doc:
        texts = [" ".join(b.text for b in repair.repair(page)) for page in doc]
    assert texts == ["Annual report of the harbour board"] * 5
    # read on the first page only, in two pieces of whole words (30 letters > _SEGMENT_CHARS)
    assert read == [2] and repair.recognised_lines == 2


def test_long_lines_are_read_in_pieces_of_whole_words_and_the_page_still_decodes(broken, recognised_widths):
    """The recogniser's CPU grows with the width it reads: a long garbled line is learned from
    pieces of a few whole words (each narrower than the line), and the page reads as before."""
    from ingest._repair import _SEGMENT_CHARS, GlyphRepair

    widths = recognised_widths
    repair = GlyphRepair()
    with pymupdf.open(broken) as doc:
        blocks = repair.repair(doc[0])
    lines = [ln for b in blocks for ln in b.lines]
    assert max(len(t.replace(" ", "")) for _, t in lines) > 2 * _SEGMENT_CHARS  # the lines are long
    text = " ".join(b.text for b in blocks)
    words = PROSE[0].split()
    assert sum(w in text for w in words) / len(words) >= 0.9, text
    line_px = max(_rendered_px(box) for box, _ in lines)
    assert widths and max(widths) < 0.75 * line_px  # no full-width line went to the recogniser

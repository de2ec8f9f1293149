"""Running headers and footers are dropped from the text once they have repeated."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from ingest import open_document
from ingest._layout import RawBlock
from ingest._margins import RunningLines
from rag.config import IngestConfig

HEIGHT = 792.0


def _page(number: int, body: str) -> list[RawBlock]:
    return [
        RawBlock((72, 30, 540, 44), "A Study of Bridges — Chapter 2", (((72, 30, 540, 44), "A Study of Bridges — Chapter 2"),)),
        RawBlock((72, 100, 540, 300), body, (((72, 100, 540, 300), body),)),
        RawBlock((300, 750, 320, 762), str(number), (((300, 750, 320, 762), str(number)),)),
    ]


def test_header_and_page_number_go_after_two_pages_the_body_stays():
    margins = RunningLines()
    texts = []
    for n in range(1, 6):
        blocks = margins.strip(_page(n, f"Body of page {n}: the cables were replaced."), HEIGHT)
        texts.append([b.text for b in blocks])
    assert texts[0] == ["A Study of Bridges — Chapter 2", "Body of page 1: the cables were replaced.", "1"]
    assert texts[1][0] == "A Study of Bridges — Chapter 2"  # seen once before: kept
    for n, page in enumerate(texts[2:], start=3):
        assert page == [f"Body of page {n}: the cables were replaced."]


def test_repeated_text_in_the_body_is_never_dropped():
    margins = RunningLines()
    for _ in range(4):
        blocks = margins.strip([RawBlock((72, 300, 540, 320), "Keep calm.", (((72, 300, 540, 320), "Keep calm."),))], HEIGHT)
    assert [b.text for b in blocks] == ["Keep calm."]


def test_a_generated_pdf_loses_its_running_header_in_chunks(tmp_path: Path):
    path = tmp_path / "report.pdf"
    doc = pymupdf.open()
    for n in range(1, 5):
        page = doc.new_page(width=612, height=792)
        page.insert_text((72, 40), "ACME Annual Report 2025 — Confidential", fontsize=9)
        page.insert_textbox(pymupdf.Rect(72, 120, 540, 400), f"Section {n}. The turbines in hall {n} ran for 8,000 hours.", fontsize=11)
        page.insert_text((300, 770), f"Page {n}", fontsize=9)
    doc.save(path)
    with open_document(path, IngestConfig(ocr="never")) as reader:
        pages = list(reader.pages(progress=False))
    assert "ACME Annual Report" in pages[0].page.text  # the first pages cannot know yet
    for content in pages[2:]:
        assert "ACME Annual Report" not in content.page.text and "Page " not in content.page.text
        assert all("ACME" not in c.text for c in content.chunks)
        assert "The turbines in hall" in content.page.text


def _line(box: tuple[float, float, float, float], text: str) -> RawBlock:
    return RawBlock(box, text, ((box, text),))


def test_a_new_chapters_header_goes_at_once_beside_the_printed_page_number():
    # the Libtasn1 manual: physical page 4 is printed "1"; from page 6 each chapter's header
    # ("Chapter 2: ...", "Chapter 3: ...") sits on the row of the page number, two pages each
    margins = RunningLines()
    body = _line((90, 100, 520, 300), "The parser is case sensitive.")
    kept = {}
    for page, header in ((4, None), (5, None), (6, "Chapter 2: ASN.1 structure handling"), (7, "Chapter 2: ASN.1 structure handling"),
                         (9, "Chapter 3: Utilities"), (10, "Chapter 3: Utilities 7")):
        blocks = [_line((517, 50, 522, 60), str(page - 3)), body]
        if header:
            blocks.insert(0, _line((90, 50, 268, 60), header))
        kept[page] = [b.text for b in margins.strip(blocks, HEIGHT, page)]
    assert kept[4] == ["1", "The parser is case sensitive."] and kept[5] == ["2", "The parser is case sensitive."]
    for page in (6, 7, 9, 10):
        assert kept[page] == ["The parser is case sensitive."], page
    # a margin line beside a number that is not this page's printed number (9) stays
    other = margins.strip([_line((90, 50, 268, 60), "Appendix B: Tables"), _line((517, 50, 522, 60), "99")], HEIGHT, 12)
    assert [b.text for b in other] == ["Appendix B: Tables"]  # the bare number goes as a repeat

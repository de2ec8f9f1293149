"""Numbered evidence, citation markers -> citations, and highlight crops."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image

from generators.base import build_context, build_prompt, select_images
from generators.highlights import write_highlights
from generators.markers import parse_markers, resolve_citations
from rag.types import Answer, BBox, Evidence, Hit, Page


def _hit(doc: str, page: int, *texts: str, image_path: Path | None = None, score: float = 1.0) -> Hit:
    evidence = tuple(
        Evidence("text", "chunk", t, score - i * 0.1, BBox(10, 20 + 50 * i, 200, 60 + 50 * i), point_id=f"{doc}-{page}-{i}")
        for i, t in enumerate(texts)
    )
    return Hit(doc, f"{doc}.pdf", page, score, "text", evidence=evidence, image_path=image_path, label=f"p{page}")


@pytest.fixture
def items():
    hits = [_hit("a", 1, "alpha one", "alpha two"), _hit("b", 4, "beta"), _hit("c", 9, "gamma")]
    return build_context(hits, max_items=5)


def test_build_context_numbers_best_evidence_of_each_hit_then_extra_evidence():
    hits = [_hit("a", 1, "a-best", "a-second", "a-third"), _hit("b", 2, "b-best", "b-second"), _hit("c", 3, "c-best")]
    items = build_context(hits, max_items=4)
    assert [i.marker for i in items] == [1, 2, 3, 4]
    # every hit got its best evidence; the one spare slot went to the top hit's second evidence
    assert [i.text for i in items] == ["a-best", "a-second", "b-best", "c-best"]
    assert [(i.source, i.page) for i in items] == [("a.pdf", 1), ("a.pdf", 1), ("b.pdf", 2), ("c.pdf", 3)]
    assert items[1].bbox == BBox(10, 70, 200, 110)


def test_build_context_budget_smaller_than_hits_keeps_top_hits_and_dedupes():
    dup = Evidence("text", "chunk", "same", 1.0, point_id="p1")
    hits = [Hit("a", "a.pdf", 1, 1.0, "text", evidence=(dup,)), Hit("a", "a.pdf", 1, 0.9, "text", evidence=(dup,))]
    assert [i.text for i in build_context(hits, max_items=5)] == ["same"]
    many = [_hit(f"d{i}", i, f"text {i}") for i in range(1, 10)]
    assert [i.doc_id for i in build_context(many, max_items=3)] == ["d1", "d2", "d3"]


def test_hit_without_evidence_becomes_a_page_item_with_its_image(tmp_path):
    page_png = tmp_path / "p.png"
    Image.new("RGB", (20, 20)).save(page_png)
    hit = Hit("a", "a.pdf", 5, 0.5, "pages", image_path=page_png)
    (item,) = build_context([hit])
    assert (item.kind, item.page, item.image_path, item.text) == ("page", 5, page_png, "")
    assert "[1] a.pdf, page 5" in build_prompt("q?", [item])
    assert select_images([item], max_images=3) == [item]
    assert select_images([item], max_images=0) == []


def test_figure_evidence_shows_its_crop_but_cites_the_page_image(tmp_path):
    page_png, crop_png = tmp_path / "page.png", tmp_path / "fig.png"
    for p in (page_png, crop_png):
        Image.new("RGB", (20, 20)).save(p)
    fig = Evidence("figures", "figure", "Figure 3: output per month", 0.9, BBox(50, 50, 300, 200), image_path=crop_png)
    (item,) = build_context([Hit("a", "a.pdf", 2, 0.9, "figures", evidence=(fig,), image_path=page_png)])
    assert (item.kind, item.crop_path, item.image_path, item.visual) == ("figure", crop_png, page_png, crop_png)
    (citation,) = resolve_citations("see [1]", [item]).citations
    assert citation.image_path == page_png and citation.bbox == BBox(50, 50, 300, 200)


def test_a_text_chunk_has_no_crop_of_its_own(tmp_path):
    # chunks are stored with their page's image: a citation of a chunk must not claim it as a crop
    page_png = tmp_path / "page.png"
    Image.new("RGB", (20, 20)).save(page_png)
    chunk = Evidence("text", "chunk", "Inspect the inverter every 6 months.", 0.9, BBox(50, 50, 300, 80), image_path=page_png)
    (item,) = build_context([Hit("a", "a.pdf", 2, 0.9, "text", evidence=(chunk,), image_path=page_png)])
    assert (item.crop_path, item.visual) == (None, page_png)
    (citation,) = resolve_citations("see [1]", [item]).citations
    assert citation.crop_path is None and citation.image_path == page_png


def test_parse_markers_single_grouped_and_adjacent():
    assert parse_markers("A [1]. B [2, 3]. C [1][3] and [ 4 ].") == [1, 2, 3, 1, 3, 4]
    assert parse_markers("no markers (1) here, list[0 ] is code? [x]") == [0]


def test_valid_markers_map_to_their_evidence(items):
    result = resolve_citations("Alpha [1][3], beta [2, 3].", items)
    assert result.text == "Alpha [1][3], beta [2, 3]."
    assert result.rejected == ()
    assert [c.marker for c in result.citations] == [1, 3, 2]
    by_marker = {c.marker: c for c in result.citations}
    assert (by_marker[3].source, by_marker[3].page, by_marker[3].text) == ("b.pdf", 4, "beta")
    assert by_marker[1].bbox == BBox(10, 20, 200, 60)
    assert by_marker[1].label == "p1"


def test_marker_naming_evidence_not_given_is_stripped_and_never_cited(items, caplog):
    assert len(items) == 4
    with caplog.at_level(logging.WARNING, logger="generators.markers"):
        result = resolve_citations("Alpha is one [1]. Delta is four [7]. Mixed [2, 9]. Zero [0].", items)
    assert result.text == "Alpha is one [1]. Delta is four. Mixed [2]. Zero."
    assert [c.marker for c in result.citations] == [1, 2]
    assert result.rejected == (7, 9, 0)
    assert "[7]" not in result.text and "9" not in result.text
    assert any("7" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_no_evidence_means_every_marker_is_rejected():
    result = resolve_citations("Made up [1].", [])
    assert (result.text, result.citations, result.rejected) == ("Made up.", (), (1,))


def _page_image(tmp_path: Path, scale: float) -> tuple[Path, Page]:
    page = Page("doc", 2, width=200.0, height=100.0, text="", ocr=False, dpi=int(72 * scale))
    path = tmp_path / "page.png"
    Image.new("RGB", (int(200 * scale), int(100 * scale)), "white").save(path)
    return path, page


def test_write_highlights_draws_the_scaled_box_on_a_page_crop(tmp_path, items):
    path, page = _page_image(tmp_path, scale=2.0)  # 144 dpi: 400 x 200 px for 200 x 100 pt
    box = BBox(50, 40, 100, 60)
    hit = Hit("doc", "doc.pdf", 2, 1.0, "text", evidence=(Evidence("text", "chunk", "x", 1.0, box),), image_path=path)
    ctx = build_context([hit])
    answer = Answer("q", "x [1]", resolve_citations("x [1]", ctx).citations, (hit,))
    (out,) = write_highlights(answer, tmp_path / "hl", pages=[page], margin=10)
    crop = Image.open(out).convert("RGB")
    # box 50..100 x 40..60 pt, margin 10 pt, scale 2 -> crop 80..220 x 60..140 px
    assert crop.size == (141, 81)
    # the box outline (at crop offset 20 px) is red; the centre of the box stays white
    assert crop.getpixel((20, 40))[0] > 200 and crop.getpixel((20, 40))[1] < 80
    assert crop.getpixel((70, 40)) == (255, 255, 255)
    # the same from dpi alone
    (out2,) = write_highlights(answer, tmp_path / "hl2", dpi=144, margin=10)
    assert Image.open(out2).size == (141, 81)


def test_write_highlights_skips_citations_without_scale_image_or_box(tmp_path, items, caplog):
    path, _ = _page_image(tmp_path, scale=1.0)
    hit = Hit("doc", "doc.pdf", 2, 1.0, "text", evidence=(Evidence("text", "chunk", "x", 1.0, BBox(0, 0, 5, 5)),), image_path=path)
    cited = resolve_citations("x [1]", build_context([hit])).citations
    answer = Answer("q", "x [1]", cited, (hit,))
    with caplog.at_level(logging.WARNING):
        assert write_highlights(answer, tmp_path / "hl") == []
    assert "page size unknown" in caplog.text
    # items from the fixture have boxes but no page images
    no_image = Answer("q", "t", resolve_citations("t [1]", items).citations)
    assert write_highlights(no_image, tmp_path / "hl", dpi=72) == []


EVAL_DOCS = Path(__file__).resolve().parents[3] / "shared" / "eval" / "docs"


@pytest.mark.skipif(not (EVAL_DOCS / "pdfjs_wikipedia.pdf").is_file(), reason=f"shared eval PDFs not found in {EVAL_DOCS}")
def test_real_pdf_page_answer_cites_the_block_and_highlights_it(tmp_path):
    import pymupdf

    from generators.extractive import ExtractiveGenerator

    hits, pages = [], []
    for name in ("amt_handbook_sample.pdf", "pdfjs_wikipedia.pdf"):  # a distractor first
        with pymupdf.open(EVAL_DOCS / name) as doc:
            page = doc[0]
            image = tmp_path / f"{name}.png"
            page.get_pixmap(dpi=100).save(image)
            blocks = [b for b in page.get_text("blocks") if b[6] == 0 and b[4].strip()]
            evidence = tuple(Evidence("text", "chunk", b[4], 1.0, BBox(*b[:4])) for b in blocks)
            hits.append(Hit(name, name, 1, 1.0, "text", evidence=evidence, image_path=image))
            pages.append(Page(name, 1, page.rect.width, page.rect.height, "", False, image_path=image, dpi=100))
    answer = ExtractiveGenerator(max_items=100, max_sentences=1).generate(
        "Since which Firefox version has PDF.js been enabled by default?", hits
    )
    assert "enabled by default since 2013 (version 19)" in answer.text
    (citation,) = answer.citations
    assert (citation.source, citation.page) == ("pdfjs_wikipedia.pdf", 1)
    assert "version 19" in citation.text
    (crop_path,) = write_highlights(answer, tmp_path / "hl", pages=pages, margin=0)
    crop = Image.open(crop_path).convert("RGB")
    scale = 100 / 72
    assert abs(crop.width - citation.bbox.width * scale) <= 3 and abs(crop.height - citation.bbox.height * scale) <= 3
    red = sum(1 for x in range(crop.width) if crop.getpixel((x, 1))[0] > 200 and crop.getpixel((x, 1))[1] < 80)
    assert red > 0.9 * crop.width  # the box's top edge is drawn along the crop


def test_a_whole_page_citation_gets_the_box_of_the_passage_it_quotes():
    from generators.matching import narrow_page_citations
    from rag.types import Citation

    page_box = BBox(0, 0, 612, 792)
    hit = Hit("d", "m.pdf", 3, 1.0, "pages", page_width=612, page_height=792)
    answer = Answer(
        "Why did he stop praying?",
        "I went and told the widow about it [1]. The pump runs at night [2].",
        citations=(Citation(1, "d", "m.pdf", 3, page_box), Citation(2, "d", "m.pdf", 3, BBox(50, 60, 300, 90))),
        hits=(hit,),
    )
    passages = {
        ("d", 3): [
            ("Then Miss Watson she took me in the closet.", BBox(50, 100, 560, 200)),
            ("I went and told the widow\nabout it, and she said [3] ...", BBox(50, 400, 560, 470)),
        ]
    }
    asked = []

    def lookup(doc: str, page: int):
        asked.append((doc, page))
        return passages.get((doc, page), [])

    narrowed = narrow_page_citations(answer, lookup)
    assert narrowed.citations[0].bbox == BBox(50, 400, 560, 470)  # the passage, not the page
    assert narrowed.citations[1].bbox == BBox(50, 60, 300, 90)  # already a passage: untouched
    assert asked == [("d", 3)]  # only the whole-page citation looked anything up
    # words found in no passage (a paraphrase) keep the page box
    other = Answer("q", "He gave up on prayer after a while [1].", citations=(Citation(1, "d", "m.pdf", 3, page_box),), hits=(hit,))
    assert narrow_page_citations(other, lookup).citations[0].bbox == page_box


def test_a_citation_names_the_section_its_evidence_sits_in():
    from rag.json_shapes import citation_json

    ev = Evidence(corpus="text", kind="chunk", text="No global variables are used.", score=1.0,
                  section=("1 Introduction", "Features"))
    hit = Hit(doc_id="d", source="libtasn1.pdf", page=4, score=1.0, corpus="text", evidence=(ev,))
    (cited,) = resolve_citations("It is thread-safe [1].", build_context([hit])).citations
    assert cited.section == ("1 Introduction", "Features")
    assert citation_json(cited)["section"] == ["1 Introduction", "Features"]

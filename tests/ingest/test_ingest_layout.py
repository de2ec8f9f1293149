"""Pure layout functions of the ingest stage: no PDF engine involved."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from ingest._figures import Element, Region, cluster_regions, grow_over_labels, is_decoration, match_captions
from ingest._files import sniff_format
from ingest._pdf import caption_from_ocr_block, caption_outside, caption_until_break, group_ocr_lines, split_merged_rows
from ingest._layout import RawBlock, is_caption, join_lines, make_chunks, reading_order
from ingest._quality import assess_text
from rag.types import BBox, TextBlock

ENGLISH = (
    "The inspection of the inverter should be done every six months. It is important that the "
    "cooling fan runs freely and that the display shows no alarms. If a fault code appears, the "
    "owner should look it up in the table and take the first action that is listed there. "
) * 3


def test_clean_english_is_usable():
    q = assess_text(ENGLISH)
    assert q.verdict == "ok" and q.usable


def test_empty_and_tiny_text_layers_need_ocr():
    assert assess_text("").verdict == "empty"
    assert assess_text("  12 \n").verdict == "empty"


def test_control_character_garbage_is_garbled():
    garbage = "".join(chr(c) for c in (3, 4, 5, 6, 7, 0x0E, 0x0F, 0x10)) * 60 + " @!3& $ 5 "
    assert assess_text(garbage).verdict == "garbled"


def test_private_use_glyphs_are_garbled():
    assert assess_text("\ue000\ue001\ue002 \ue003\ue004" * 40).verdict == "garbled"


def test_letter_shifted_text_is_garbled():
    # a font with a shifted encoding: printable letters, but no word is a word
    shifted = codecs.encode(ENGLISH, "rot13")
    q = assess_text(shifted)
    assert q.verdict == "garbled", q


def test_german_and_dingbats_are_not_garbled():
    german = "Die Wartung der Anlage ist nicht schwer und wird von dem Betreiber auch selbst gemacht. " * 8
    assert assess_text(german).usable
    assert assess_text("❚❘❙❚❘❙❚❘❙❚❙❚❘❙❚❘❙❚❘❙❚❘❙❚❘❘❙\nFREE CULTURE\n").usable


@pytest.mark.parametrize(
    "text",
    ["Figure 3: The model", "Fig. 2. Speedup", "Table 1 Fault codes", "FIGURE 7-26. Self-locking nuts", "Figure 13. Detailed", "TABLE IV - Results"],
)
def test_caption_forms(text):
    assert is_caption(text)


@pytest.mark.parametrize("text", ["Figure 10 shows the relative speedups", "The figure 3 above", "Tables are useful", "Figures"])
def test_not_captions(text):
    assert not is_caption(text)


def test_join_lines_undoes_hyphenation_only_for_lowercase_continuations():
    assert join_lines(["some-", "thing else"]) == "something else"
    assert join_lines(["Just-in-", "Time compilers"]) == "Just-in- Time compilers"


def _b(x0, y0, x1, y1, text):
    return RawBlock((x0, y0, x1, y1), text)


def test_two_column_reading_order_reads_left_column_first():
    blocks = [
        _b(60, 50, 552, 70, "Title across"),
        _b(320, 100, 552, 300, "R1 " + "x" * 300),
        _b(60, 100, 292, 300, "L1 " + "x" * 300),
        _b(60, 320, 292, 500, "L2 " + "x" * 300),
        _b(320, 320, 552, 500, "R2 " + "x" * 300),
        _b(60, 700, 552, 720, "Footer across"),
    ]
    order = [b.text.split()[0] for b in reading_order(blocks, 612)]
    assert order == ["Title", "L1", "L2", "R1", "R2", "Footer"]


def test_single_column_rows_read_left_to_right_despite_jitter():
    blocks = [_b(300, 101, 380, 115, "value"), _b(40, 100, 120, 114, "label"), _b(40, 140, 120, 154, "next")]
    assert [b.text for b in reading_order(blocks, 600)] == ["label", "value", "next"]


def _blocks(texts):
    return [TextBlock("d", 3, i, BBox(10, 10 + 30 * i, 200, 30 + 30 * i), t) for i, t in enumerate(texts)]


def test_chunks_respect_size_overlap_page_and_boxes():
    words = [f"word{i:03d}" for i in range(400)]
    texts = [" ".join(words[i : i + 40]) for i in range(0, 400, 40)]  # 10 blocks of ~319 chars
    chunks = make_chunks(_blocks(texts), chunk_chars=700, overlap_chars=120)
    assert len(chunks) > 3
    assert all(c.page == 3 and len(c.text) <= 700 for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for a, b in zip(chunks, chunks[1:]):
        tail = a.text.split()[-1]
        assert tail in b.text.split(), "consecutive chunks overlap"
    for c in chunks:
        assert c.bbox == c.block_bboxes[0].union(c.block_bboxes[-1]) or all(
            c.bbox.intersection_area(b) > 0 for b in c.block_bboxes
        )
    joined = " ".join(c.text for c in chunks).split()
    assert set(words) <= set(joined), "no text is lost"


def test_the_overlap_starts_at_a_sentence_not_mid_sentence():
    prose = (
        "Results were collected over three weeks of testing in the lab. "
        "The experiments were performed on a laptop with two cores and eight gigabytes of memory. "
        "Each benchmark ran five times and the median is reported in the tables below. "
    )
    chunks = make_chunks(_blocks([prose * 3, prose * 3]), chunk_chars=400, overlap_chars=80)
    assert len(chunks) >= 3
    for c in chunks[1:]:
        assert c.text[0].isupper(), c.text[:40]  # a sentence start, not "...ments were performed"


def test_a_short_last_paragraph_is_carried_whole_without_a_stray_word_end():
    # the tracemonkey p10 pattern: the overlap used to be "sing.\nwere performed on a MacBook..."
    # (a word end of the paragraph before, then the last paragraph without its subject)
    long_par = "SunSpider consists of 26 short-running benchmarks that exercise features " * 7 + "used for testing."
    short_par = "All experiments were performed on a MacBook Pro with 2.2 GHz Core 2 processor and 2 GB RAM running MacOS 10.5."
    next_par = "Benchmark results. The main question is whether programs run faster with tracing. " * 5
    chunks = make_chunks(_blocks([long_par, short_par, next_par]), chunk_chars=700, overlap_chars=100)
    assert len(chunks) == 2
    assert chunks[1].text.startswith("All experiments were performed on a MacBook Pro"), chunks[1].text[:60]


def test_a_block_longer_than_a_chunk_is_split_at_words():
    text = " ".join(["lighthouse"] * 300)
    chunks = make_chunks(_blocks([text]), chunk_chars=500, overlap_chars=50)
    assert len(chunks) >= 6
    assert all(len(c.text) <= 500 and "lighthou\n" not in c.text for c in chunks)
    assert all(set(c.text.split()) == {"lighthouse"} for c in chunks)


def test_clustering_joins_bars_and_ignores_rules_and_page_borders():
    page = (0.0, 0.0, 612.0, 792.0)
    bars = [Element((100 + 30 * i, 200, 120 + 30 * i, 300), False) for i in range(5)]
    axis = [Element((98, 150, 99, 301), False), Element((98, 300, 260, 301), False)]
    rule = [Element((60, 600, 550, 600.5), False)]
    border = [Element((5, 5, 607, 787), False)]
    other = [Element((400, 500, 500, 560), True)]
    regions = cluster_regions(bars + axis + rule + border + other, page)
    boxes = sorted(r.bbox for r in regions)
    assert boxes == [(98, 150, 260, 301), (400, 500, 500, 560)]
    assert [r.source for r in sorted(regions, key=lambda r: r.bbox)] == ["vector", "raster"]


def test_labels_grow_a_figure_but_captions_do_not():
    fig = (100.0, 100.0, 300.0, 200.0)
    lines = [((80, 150, 96, 158), "10"), ((180, 204, 200, 212), "Q1"), ((100, 212, 380, 224), "Figure 1: Rain")]
    assert grow_over_labels(fig, lines) == (80, 100, 300, 212)


def test_captions_pair_with_nearest_figure_above_or_below():
    figs = [(317, 75, 556, 219), (349, 283, 523, 479)]
    caps = [_b(317, 223, 556, 271, "Figure 5. A tree"), _b(317, 492, 556, 580, "Figure 6. Loops"), _b(60, 250, 290, 260, "Figure 9 body text")]
    pairs = match_captions(figs, caps)
    assert pairs[0].text == "Figure 5. A tree" and pairs[1].text == "Figure 6. Loops"
    assert match_captions([(100, 100, 200, 200)], [_b(100, 400, 200, 420, "Figure 1: far away")]) == {}


@pytest.mark.parametrize(
    "head,fmt",
    [
        (b"%PDF-1.7\n", "pdf"),
        (b"junk\r\n%PDF-1.4", "pdf"),
        (b"\x89PNG\r\n\x1a\n....", "png"),
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"II*\x00", "tiff"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
        (b"PK\x03\x04", None),
        (b"hello world", None),
    ],
)
def test_format_sniffing_by_magic_bytes(head, fmt):
    assert sniff_format(head) == fmt


def test_merged_table_rows_are_split_back_into_rows():
    md = "|Name|Score|\n|---|---|\n|ann<br>bob|3<br>4|\n|carl|5 of<br>9 max|"
    assert split_merged_rows(md).splitlines() == ["|Name|Score|", "|---|---|", "|ann|3|", "|bob|4|", "|carl|5 of 9 max|"]


def test_public_api_is_pinned_and_import_is_light():
    import subprocess
    import sys

    import ingest

    assert set(ingest.__all__) == {
        "FileIdentity", "identify_file",
        "DocumentReader", "open_document", "scan_paths", "PathScan", "iter_files", "inspect_file", "inspect_batch", "inspect_json",
        "inspect_summary", "summarize_reports", "make_samples", "assess_text", "TextQuality", "SUPPORTED_SUFFIXES",
    }
    assert all(hasattr(ingest, name) for name in ingest.__all__)
    code = "import sys, ingest; print(sorted(m for m in ('torch', 'pymupdf', 'fitz', 'rapidocr', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2], check=True)
    assert out.stdout.strip() == "[]"


def test_ocr_lines_group_into_paragraphs_and_captions_stop_before_table_rows():
    lines = [
        ((90, 100, 140, 112), "Table 2"),
        ((90, 114, 400, 126), "Initial scale items (Davis, 1989, p. 324)"),
        ((90, 128, 300, 140), "Item No. Candidate item"),
        ((90, 142, 380, 154), "I often become confused."),
        ((90, 300, 380, 312), "A paragraph far below."),
    ]
    blocks = group_ocr_lines(lines)
    assert [b.text.split()[0] for b in blocks] == ["Table", "A"]
    cap = caption_from_ocr_block(blocks[0])
    assert cap.text == "Table 2 Initial scale items (Davis, 1989, p. 324)"
    assert cap.bbox == (90, 100, 400, 126)


def test_a_caption_stops_at_the_paragraph_break_under_it():
    # TAMReview p.2: caption, a 15 pt gap, then a paragraph, all in one text-layer block
    lines = (
        ((122, 569, 475, 580), "Figure 1: Conceptual model for technology acceptance (Davis, 1985, p. 10)."),
        ((91, 595, 506, 605), "By relying on prior work by Fishbein and Ajzen (1975), who formulated the Theory of"),
        ((91, 607, 507, 618), "Reasoned Action, and other related research studies, Davis further refined his"),
    )
    block = RawBlock((91, 569, 507, 618), "\n".join(t for _, t in lines), lines)
    cap = caption_until_break(block)
    assert cap.text == "Figure 1: Conceptual model for technology acceptance (Davis, 1985, p. 10)."
    assert cap.bbox == (122, 569, 475, 580)
    # a caption wrapped over lines a fraction of a line apart is kept whole
    wrapped = RawBlock((90, 100, 400, 126), "Figure 2: A long caption\nthat wraps.", (
        ((90, 100, 400, 112), "Figure 2: A long caption"), ((90, 114, 200, 126), "that wraps."),
    ))
    assert caption_until_break(wrapped) is wrapped


def test_a_caption_stops_where_its_table_begins_but_keeps_its_title():
    # TAMReview p.7: "Table 2", its title, then the rows, one block; the table box starts at the title
    lines = (
        ((91, 116, 128, 127), "Table 2"),
        ((91, 130, 382, 140), "Initial scale items for perceived ease of use (Davis, 1989, p. 324)"),
        ((91, 143, 383, 154), "Item No. Candidate item for measuring perceived ease of use"),
        ((141, 157, 438, 168), "I often become confused when I use the electronic mail system."),
    )
    block = RawBlock((91, 116, 438, 168), "\n".join(t for _, t in lines), lines)
    table = (91.1, 130.2, 501.2, 348.0)
    cap = caption_outside(block, table)
    assert cap.text == "Table 2 Initial scale items for perceived ease of use (Davis, 1989, p. 324)"
    assert cap.bbox == (91, 116, 382, 140)
    # a caption drawn inside its figure, or wholly outside it, is kept as it is
    assert caption_outside(block, (0, 100, 600, 400)) is block
    assert caption_outside(block, (0, 300, 600, 400)) is block


def test_skew_is_measured_on_long_lines_and_straight_scans_are_left_alone():
    from ingest._ocr import deskewed_boxes, skew_degrees

    # rapidocr's boxes on ocrmypdf's skew.pdf (150 dpi): long lines fall ~1.9 degrees to the right
    slanted = [
        ((191, 170), (1119, 201), (1118, 227), (190, 197)),
        ((190, 196), (1018, 222), (1017, 248), (189, 222)),
        ((189, 222), (1068, 250), (1067, 279), (188, 251)),
        ((204, 247), (695, 263), (694, 292), (203, 275)),
    ]
    angle = skew_degrees(slanted)
    assert 1.7 < angle < 2.1
    upright = deskewed_boxes(slanted, angle)
    heights = [b[3] - b[1] for b in upright]
    assert max(heights) < 30 < max(q[2][1] - q[0][1] for q in slanted)  # one line tall again, not two
    assert [b[1] for b in upright] == sorted(b[1] for b in upright)
    straight = [((10, 100 + 20 * i), (500, 100 + 20 * i), (500, 112 + 20 * i), (10, 112 + 20 * i)) for i in range(5)]
    assert skew_degrees(straight) == 0.0
    assert skew_degrees(slanted[:2]) == 0.0  # two lines are not evidence enough
    with pytest.raises(ValueError, match="layout boxes"):
        group_ocr_lines([((0, 0, 10, 10), "a")], layout=[])


def test_decorations_are_told_from_figures():
    bar = Region((90, 234, 522, 238), n_drawings=1, n_thick=1, members=[(90, 234, 522, 238)])
    frame_lines = [(130, 340, 540, 340), (130, 400, 540, 400), (130, 340, 130, 370), (130, 370, 130, 400), (540, 340, 540, 400)]
    frame = Region((130, 340, 540, 400), n_drawings=5, members=frame_lines)
    # the same outline with a thin line drawn across its middle: a diagram, kept
    crossed = Region((130, 340, 540, 400), n_drawings=6, members=[*frame_lines, (130, 370, 540, 370)])
    chart = Region((98, 150, 260, 301), n_drawings=7, n_thick=5, members=[(100, 200, 120, 300)] * 5 + [(98, 150, 99, 301), (98, 300, 260, 301)])
    photo_strip = Region((90, 234, 522, 238), n_images=1, image_area=1728.0, members=[(90, 234, 522, 238)])
    assert is_decoration(bar) and is_decoration(frame)
    assert not is_decoration(crossed) and not is_decoration(chart) and not is_decoration(photo_strip)

"""Extractive answers that answer: furniture never quoted, tables as rows, figures with labels,
long sentences cut to the part that answers (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from generators.base import ContextItem
from generators.extractive import ExtractiveGenerator
from generators.furniture import furniture_lines, is_furniture_line, strip_furniture
from generators.spans import best_window, figure_parts, is_flattened, markdown_table, reflow_rows
from rag.types import BBox, Evidence, Hit


def _hit(page: int, *evidence: Evidence, source: str = "manual.pdf") -> Hit:
    return Hit("d1", source, page, 1.0, "text", BBox(0, 0, 600, 800), tuple(evidence), image_path=Path(f"/kb/p{page}.png"))


def _chunk(text: str) -> Evidence:
    return Evidence("text", "chunk", text, 1.0, BBox(10, 10, 500, 300))


def _item(page: int, text: str) -> ContextItem:
    return ContextItem(0, "d1", "manual.pdf", page, None, text)


def test_lines_repeated_on_other_pages_numbers_and_dot_leaders_are_furniture():
    items = [
        _item(3, "xpump manual rev 7\nThe pump primes itself in ten seconds.\n3"),
        _item(4, "xpump manual rev 7\nOpen the valve before starting.\n4"),
    ]
    repeated = furniture_lines(items)
    assert strip_furniture(items[0].text, repeated) == "The pump primes itself in ten seconds."
    assert is_furniture_line("Installation ............ 12")
    assert is_furniture_line("xcolor v2.14 (2022/06/12)")
    assert is_furniture_line("- 14 -")
    assert not is_furniture_line("The valve opens at 12 bar.")
    # a line seen on one page only is body text
    assert not is_furniture_line("xpump manual rev 7", furniture_lines(items[:1]))


def test_a_running_header_is_never_part_of_the_answer():
    hits = [
        _hit(3, _chunk("Pumpco Service Guide 2.1\nThe pump primes itself in ten seconds after the valve opens.")),
        _hit(4, _chunk("Pumpco Service Guide 2.1\nPriming fails when the valve is closed.")),
    ]
    answer = ExtractiveGenerator(max_sentences=2).generate("How long does the pump take to prime?", hits)
    assert "Service Guide" not in answer.text
    assert answer.text.startswith("The pump primes itself in ten seconds")


def test_flattened_cells_are_recognised_and_numeric_runs_re_rowed():
    flat = "Loops Trees Aborts 3d-cube 25 27 3 3d-morph 5 8 2 access-fannkuch 10 34 24 crypto-aes 50 72 19"
    assert is_flattened(flat)
    assert not is_flattened("The pump primes itself in ten seconds after the valve has been opened by hand.")
    rows = reflow_rows(flat)
    assert rows is not None
    assert rows.header == ("", "Loops", "Trees", "Aborts")
    assert rows.rows[2] == ("access-fannkuch", "10", "34", "24")
    assert reflow_rows("the pump primes in 10 seconds") is None
    assert markdown_table(("Name", "Aborts"), [("crypto-aes", "19")]) == "| Name | Aborts |\n|---|---|\n| crypto-aes | 19 |"


def test_a_flattened_table_answers_with_its_header_and_matching_row_not_a_line_of_cells():
    flat = ("Benchmark Loops Trees Aborts\n3d-cube 25 27 3 3d-morph 5 8 2 access-fannkuch 10 34 24 crypto-aes 50 72 19")
    hits = [_hit(12, _chunk(flat))]
    answer = ExtractiveGenerator().generate("How many aborts did access-fannkuch have?", hits)
    assert "| access-fannkuch | 10 | 34 | 24 |" in answer.text
    assert "| Benchmark | Loops | Trees | Aborts |" in answer.text
    assert "3d-morph" not in answer.text  # only the matching row, not the whole table


def test_a_markdown_table_answers_with_the_matching_rows_under_the_header():
    table = (
        "Table 7: Color constants\n|model|gray|HTML|\n|---|---|---|\n|black|0|000000|\n|gray|0.5|808080|\n|white|1|FFFFFF|"
    )
    hits = [_hit(20, Evidence("figures", "table", table, 1.0, BBox(0, 0, 300, 200), Path("/kb/p20-tab01.png")))]
    answer = ExtractiveGenerator().generate("What is the HTML value of the gray constant?", hits)
    assert answer.text.startswith("Table 7: Color constants [1]:")
    assert "| model | gray | HTML |\n|---|---|---|" in answer.text
    assert "| gray | 0.5 | 808080 |" in answer.text
    assert "FFFFFF" not in answer.text


def test_a_row_matching_only_part_of_what_the_answering_row_matches_is_left_out():
    table = (
        "Figure 13. Trace statistics\n|Col1|Loops|Traces|Speedup|\n|---|---|---|---|\n"
        "|3d-cube|25|29|2.20x|\n|3d-morph|5|8|2.86x|\n|3d-raytrace|10|100|1.18x|\n|access-nbody|8|18|3.99x|"
    )
    hits = [_hit(12, Evidence("figures", "table", table, 1.0, BBox(0, 0, 300, 200), Path("/kb/p12-tab01.png")))]
    answer = ExtractiveGenerator().generate("How many traces were recorded for 3d-raytrace, and its speedup?", hits)
    assert "| 3d-raytrace | 10 | 100 | 1.18x |" in answer.text
    assert "3d-cube" not in answer.text and "3d-morph" not in answer.text  # they share only "3d"
    assert "|  | Loops | Traces | Speedup |" in answer.text  # PyMuPDF's "Col1" is a blank header cell
    # rows matching the same words as the answering row all answer (one each per benchmark asked)
    both = ExtractiveGenerator().generate("What speedup did 3d-cube and 3d-morph get?", hits)
    assert "| 3d-cube | 25 | 29 | 2.20x |" in both.text and "| 3d-morph | 5 | 8 | 2.86x |" in both.text


def test_a_figure_question_answers_with_caption_and_labels_citing_the_crop():
    figure_text = "Figure 4. Parts of the pump housing.\nImpeller\nVolute casing\nShaft seal\nThe pump housing is cast iron and holds the impeller in place."
    crop = Path("/kb/p9-fig01.png")
    hits = [
        _hit(9, _chunk("The housing is shown in Figure 4 and is made of cast iron.")),
        _hit(9, Evidence("figures", "figure", figure_text, 0.9, BBox(50, 50, 400, 400), crop)),
    ]
    answer = ExtractiveGenerator().generate("Which parts are labelled in the diagram of the pump housing?", hits)
    assert answer.text.startswith("Figure 4. Parts of the pump housing [1].")
    assert "Labels in the figure: Impeller; Volute casing; Shaft seal [1]." in answer.text
    assert answer.citations[0].crop_path == crop
    assert "holds the impeller in place" not in answer.text.split("Labels")[1]  # text around the figure is no label


def test_figure_parts_split_caption_from_labels():
    caption, labels = figure_parts("Figure 2: The loop.\nMonitor\nRecord\nMonitor\nthis is a long line of running text around it")
    assert caption == "Figure 2: The loop."
    assert labels == ["Monitor", "Record"]


def test_a_long_sentence_is_quoted_by_the_stretch_that_answers_and_the_answer_stays_short():
    filler = " ".join(f"word{i}" for i in range(80))
    text = f"{filler} The definition: playfulness is the degree of cognitive spontaneity in interactions. {filler}"
    answer = ExtractiveGenerator().generate("What is playfulness?", [_hit(22, _chunk(text))])
    assert "playfulness is the degree of cognitive spontaneity" in answer.text
    assert len(answer.text.split()) <= 50
    assert answer.text.startswith("…")  # a cut is marked


def test_a_lead_sentence_that_nearly_fits_is_quoted_whole_with_the_answer_at_its_end():
    """A 52-word sentence (a run-on the text layer gave no full stop) holds the answer in its last
    words; quoting its first 45 stopped at "if argument…" (blind B02)."""
    text = ("R prefers the header line to have no entry for the row names, so the file looks like "
            "dist climb time Greenmantle 2.5 650 16.083 Some other systems require a (possibly empty) "
            "entry for the row names, which is what write.table will provide if the argument "
            "col.names = NA is specified. Excel is one such system.")  # fmt: skip
    q = "Which argument must be given to write.table so that the header line has an empty entry for the row names?"
    answer = ExtractiveGenerator().generate(q, [_hit(9, _chunk(text))])
    assert "col.names = NA is specified" in answer.text, answer.text
    assert "…" not in answer.text


def test_best_window_starts_before_the_first_matching_word():
    words = " ".join(["x"] * 30 + ["alpha", "answer", "follows", "here"] + ["y"] * 30)
    window, cut_start, cut_end = best_window(words, lambda w: 1.0 if w == "alpha" else 0.0, 10)
    assert window.split()[3] == "alpha" and window.split()[4] == "answer"
    assert cut_start and cut_end


_RUNS = (
    "Table 4. Trace statistics per benchmark.\n"
    "| Benchmark | Loops | Aborts | Speedup |\n|---|---|---|---|\n"
    "| 3d-cube | 25 | 3 | 2.20x |\n| access-fannkuch | 10 | 24 | 2.20x |\n"
    "| crypto-aes | 50 | 19 | 1.64x |\n| math-cordic | 2 | 1 | 4.92x |\n"
)


def _table_hit() -> Hit:
    return _hit(12, Evidence("figures", "table", _RUNS, 1.0, BBox(50, 50, 500, 300)))


def test_a_question_for_the_most_answers_with_the_row_holding_the_largest_value():
    answer = ExtractiveGenerator().generate("Which benchmark had the most aborts, and how many?", [_table_hit()])
    assert "| Benchmark | Loops | Aborts | Speedup |" in answer.text
    assert "| access-fannkuch | 10 | 24 | 2.20x |" in answer.text
    # only that row, and the caption is said once
    assert "crypto-aes" not in answer.text and "3d-cube" not in answer.text
    assert answer.text.count("Trace statistics per benchmark") == 1
    assert answer.citations and answer.citations[0].page == 12


def test_a_question_for_the_least_takes_the_smallest_and_plain_questions_are_untouched():
    fewest = ExtractiveGenerator().generate("Which benchmark has the fewest loops?", [_table_hit()])
    assert "| math-cordic | 2 | 1 | 4.92x |" in fewest.text and "access-fannkuch" not in fewest.text
    # no superlative: the rows whose own cells match the question, as before
    plain = ExtractiveGenerator().generate("How many aborts did crypto-aes have?", [_table_hit()])
    assert "| crypto-aes | 50 | 19 | 1.64x |" in plain.text
    # a superlative whose words name no column: no row is picked by value
    from generators.base import build_context
    from generators.compose import extreme_row

    units = ExtractiveGenerator()._ranked("benchmark aborts", build_context([_table_hit()]), None)[0]
    assert extreme_row("Which benchmark is the most famous?", units) is None
    assert extreme_row("Which benchmark has the most aborts?", units).cells[0] == "access-fannkuch"


def test_a_title_or_running_header_read_as_a_line_never_supports_an_answer():
    """TAMReview's title and author line, repeated on its second page, was quoted as the support
    of an answer about the review's conclusion."""
    from generators.spans import is_title_run

    header = ("Overview of the Technology Acceptance Model: Origins, Developments and Future Directions M Y Chuttur "
              "Overview of the Technology Acceptance Model")  # fmt: skip
    assert is_title_run(header)
    assert not is_title_run("Current observations indicate that TAM is a highly cited model in the IS literature")
    assert not is_title_run("The Technology Acceptance Model Was Proposed By Davis In 1986.")  # a sentence, however capitalised
    body = "Current observations indicate that although TAM is highly cited, researchers disagree on its validity."
    answer = ExtractiveGenerator().generate(
        "What do current observations of the Technology Acceptance Model overview indicate about TAM's validity?",
        [_hit(1, _chunk(body)), _hit(2, _chunk(header))],
    )
    assert "researchers disagree" in answer.text
    assert "Chuttur" not in answer.text and [c.page for c in answer.citations] == [1]


def test_a_figure_question_answers_from_the_top_hits_figure_even_when_its_words_do_not_match():
    """Lessig's circle diagram of a book's uses holds only its labels ("give", "read", "resell",
    "sleep"), none of the question's words: the answer still reads them, from the figure the
    search found, instead of the page's prose about copyright."""
    figure = Evidence("figures", "figure", "unregulated\ngive\nread\nresell\nsleep\n$1", 0.9, BBox(100, 100, 400, 400),
                      image_path=Path("/kb/crops/p140-f1.png"))  # fmt: skip
    prose = _chunk("Most of these uses are not regulated by copyright law, because these uses of a book do not create a copy.")
    q = "Which everyday uses of a book appear inside the circle in Lessig's diagram?"
    answer = ExtractiveGenerator().generate(q, [_hit(140, figure, prose)])
    assert answer.text.startswith("Labels in the figure: unregulated; give; read; resell; sleep"), answer.text
    assert answer.citations[0].bbox == BBox(100, 100, 400, 400)
    # a question that asks for no picture keeps the prose
    plain = ExtractiveGenerator().generate("Do these uses of a book create a copy under copyright law?", [_hit(140, figure, prose)])
    assert plain.text.startswith("Most of these uses"), plain.text


def test_a_captionless_picture_whose_text_is_a_sentence_is_quoted_as_its_text():
    """Conrad's cartoon asks its question in the picture itself; OCR reads it as long lines, which
    are what the picture says, not labels (and were dropped as too long for labels)."""
    cartoon = Evidence("figures", "figure", "VIDEORECORDER\nON WHICH ITEM HAVE THE COURTS RULED THAT MANUFACTURERS AND\n"
                       "RETAILERS BE HELD RESPONSIBLE FOR HAVING SUPPLIED THE EQUIPMENT?", 0.9, BBox(60, 200, 340, 420))  # fmt: skip
    prose = _chunk("This led Conrad to draw the cartoon below, which we can adopt to the DMCA.")
    answer = ExtractiveGenerator().generate("What question does the Paul Conrad cartoon ask?", [_hit(171, cartoon, prose)])
    assert answer.text.startswith("Text in the figure: ON WHICH ITEM HAVE THE COURTS RULED"), answer.text
    assert "SUPPLIED THE EQUIPMENT?" in answer.text and "Labels in the figure: VIDEORECORDER" in answer.text
    assert answer.citations[0].bbox == BBox(60, 200, 340, 420)


def test_supporting_sentences_come_from_the_lead_document_not_one_sharing_a_word():
    # the second document's sentence shares "pump bearing greased" with the question; written after the pump
    # manual's answer it would read as part of it
    pump = Hit("d1", "pump.pdf", 3, 1.0, "text", BBox(0, 0, 600, 800), (_chunk(
        "The pump bearing is greased every 500 hours of running. Use lithium grease for the pump bearing."),))
    other = Hit("d2", "handbook.pdf", 40, 0.9, "text", BBox(0, 0, 600, 800), (_chunk(
        "Pulleys on the pump drive turn on a sealed ball bearing that is never greased."),))
    answer = ExtractiveGenerator(max_sentences=3).generate("How often is the pump bearing greased?", [pump, other])
    assert answer.text.startswith("The pump bearing is greased every 500 hours")
    assert "Pulleys" not in answer.text and {c.source for c in answer.citations} == {"pump.pdf"}


def test_a_header_cell_pymupdf_found_empty_is_blank_in_the_answer_not_col1():
    table = markdown_table(["Col1", "Loops", "Speedup"], [["3d-raytrace", "10", "1.18x"]])
    assert table.splitlines()[0] == "|  | Loops | Speedup |"
    assert "Col1" not in table
    assert markdown_table(["Column", "Col 2"], [["a", "b"]]).splitlines()[0] == "| Column | Col 2 |"  # real headers stay


@pytest.mark.parametrize("corner", ["Col1", " "])  # as PyMuPDF names it; as ingest stores it now
def test_a_table_whose_corner_cell_is_blank_answers_with_its_header(corner):
    table = (
        f"Figure 13. Trace statistics\n|{corner}|Loops|Aborts|Speedup|\n|---|---|---|---|\n"
        "|3d-cube|25|3|2.20x|\n|access-fannkuch|10|24|2.20x|"
    )
    hits = [_hit(12, Evidence("figures", "table", table, 1.0, BBox(0, 0, 300, 200), Path("/kb/p12-tab01.png")))]
    answer = ExtractiveGenerator().generate("How many trace aborts did access-fannkuch have?", hits)
    assert "|  | Loops | Aborts | Speedup |" in answer.text
    assert "| access-fannkuch | 10 | 24 | 2.20x |" in answer.text

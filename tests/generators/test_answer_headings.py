"""Extractive answers from converted documents (Markdown, HTML, DOCX laid out as PDF pages):
a heading line is a unit of its own, never the start of the sentence quoted below it, and the
heading a passage stands under counts for it when the answer's lead is chosen."""

from __future__ import annotations

from pathlib import Path

from generators.extractive import ExtractiveGenerator, split_units
from rag.types import BBox, Evidence, Hit

# what the text layer of a converted Markdown file reads: one line per block, no blank lines
_PUMP = (
    "Pump handbook\n"
    "Pump maintenance\n"
    "Grease the bearings every 500 operating hours with lithium grease. Check the seals for leaks at the same time.\n"
    "Electrical safety\n"
    "Disconnect the mains supply before opening the terminal box. Only a qualified electrician may replace the motor cable.\n"
    "Storage\n"
    "Store the pump in a dry room above 5 degrees Celsius. Drain all water before winter storage."
)


def _hit(text: str, page: int = 1, source: str = "pump.md") -> Hit:
    evidence = Evidence("text", "chunk", text, 1.0, BBox(10, 10, 500, 300))
    return Hit("d1", source, page, 1.0, "text", BBox(0, 0, 600, 800), (evidence,), image_path=Path(f"/kb/p{page}.png"))


def test_heading_lines_of_a_converted_document_are_units_of_their_own():
    assert split_units(_PUMP) == [
        "Pump handbook",
        "Pump maintenance",
        "Grease the bearings every 500 operating hours with lithium grease.",
        "Check the seals for leaks at the same time.",
        "Electrical safety",
        "Disconnect the mains supply before opening the terminal box.",
        "Only a qualified electrician may replace the motor cable.",
        "Storage",
        "Store the pump in a dry room above 5 degrees Celsius.",
        "Drain all water before winter storage.",
    ]


def test_an_answer_never_opens_with_the_heading_nor_runs_into_the_next_section():
    generator = ExtractiveGenerator()
    answer = generator.generate("How often should the bearings be greased?", [_hit(_PUMP)])
    assert answer.text.startswith("Grease the bearings every 500 operating hours")
    assert "Pump maintenance" not in answer.text and "Electrical safety" not in answer.text
    answer = generator.generate("Who may replace the motor cable?", [_hit(_PUMP)])
    assert answer.text.startswith("Only a qualified electrician may replace the motor cable")
    assert "Storage" not in answer.text.split("[1]")[0]


def test_lines_that_only_look_short_stay_in_their_sentence():
    # a wrapped line, an infobox value and a line ending on a function word are not headings
    assert split_units("Clean the inverter fan filter\nonce a year.") == ["Clean the inverter fan filter once a year."]
    assert split_units("It was released.\nStable release 4.0.379 / December 31, 2023\nIt can be embedded in any page.") == [
        "It was released.", "Stable release 4.0.379 / December 31, 2023 It can be embedded in any page.",
    ]
    assert split_units("The pump is serviced.\nThe pump made by\nGrundfos is grey and very quiet.") == [
        "The pump is serviced.", "The pump made by Grundfos is grey and very quiet.",
    ]


def test_the_heading_a_passage_stands_under_names_what_it_gives():
    # a two-column table read as lines: the row label is a heading line, its value the text below
    table = (
        "Variation in TAM application\n"
        "Applications\n"
        "Email, voicemail, fax, word processor, spreadsheet and telemedicine technology.\n"
        "Country\n"
        "USA, UK, Taiwan, Hong Kong, Japan, Nigeria and Finland.\n"
        "Participants\n"
        "Students, knowledge workers, physicians and bank managers."
    )
    answer = ExtractiveGenerator().generate("In which countries was TAM applied?", [_hit(table, source="review.pdf")])
    assert answer.text.startswith("USA, UK, Taiwan, Hong Kong, Japan, Nigeria and Finland")


def test_a_paragraph_the_table_finder_took_in_is_answered_as_prose_not_as_a_table():
    table = (
        "Figure 9. Tagged values in the interpreter.\n"
        "|5.1 Optimizations|Tag|JSType|\n|---|---|---|\n"
        "|Because traces are in SSA form, certain optimizations are easy to implement. We implemented the "
        "optimizations as pipelined filters so that they can be turned on and off independently.|xx1 000|number object|\n"
    )
    hit = Hit("d1", "tracemonkey.pdf", 8, 1.0, "figures", BBox(0, 0, 600, 800),
              (Evidence("figures", "table", table, 1.0, BBox(10, 10, 500, 300)),), image_path=Path("/kb/p8.png"))
    answer = ExtractiveGenerator().generate("How were the trace optimizations implemented?", [hit])
    assert answer.text.startswith("We implemented the optimizations as pipelined filters")
    assert "|" not in answer.text and "xx1" not in answer.text

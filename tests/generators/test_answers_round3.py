"""Extractive answers, round 3 (issue 18): an entry named by its number answers with that entry,
abbreviations do not end sentences, and a term on every page of the evidence weighs less in the
lead than one that names what the question asks."""

from __future__ import annotations

from pathlib import Path

from generators.extractive import ExtractiveGenerator, split_units
from generators.spans import defined_term, named_number, numbered_as
from rag.types import BBox, Evidence, Hit


def _hit(page: int, text: str, *, score: float = 1.0, source: str = "review.pdf") -> Hit:
    evidence = Evidence("text", "chunk", text, 1.0, BBox(10, 10, 500, 300))
    return Hit("d1", source, page, score, "text", BBox(0, 0, 600, 800), (evidence,), image_path=Path(f"/kb/p{page}.png"))


_SCALE = (
    "Table 2 Initial scale items for perceived ease of use (Davis, 1989, p. 324)\n"
    "Item No. Candidate item for measuring perceived ease of use\n"
    "1 I often become confused when I use the mail system.\n"
    "2 I make errors frequently when using the mail system.\n"
    "3 Interacting with the mail system is often frustrating.\n"
    "4 I need to consult the user manual often.\n"
    "5 The mail system is rigid and inflexible to interact with.\n"
    "6 I find it easy to recover from errors.\n"
)


def test_a_question_naming_an_item_number_answers_with_that_item_not_the_caption():
    answer = ExtractiveGenerator().generate(
        "What is item 5 in Davis's initial scale items for perceived ease of use?", [_hit(7, _SCALE)]
    )
    assert answer.text.startswith("5 The mail system is rigid and inflexible to interact with [1].")
    assert "4 I need" not in answer.text and "6 I find" not in answer.text  # the next entry is another answer


def test_an_ordinal_names_the_entry_too():
    answer = ExtractiveGenerator().generate(
        "What does the fifth candidate item for perceived ease of use say?", [_hit(7, _SCALE)]
    )
    assert answer.text.startswith("5 The mail system is rigid")


def test_an_item_number_is_looked_up_in_the_list_the_question_is_about():
    other = (
        "Table 1 Initial scale items for perceived usefulness\n"
        "5 Using the mail system saves me time.\n"
        "6 Using the mail system improves my job performance.\n"
    )
    answer = ExtractiveGenerator().generate(
        "What is item 5 of the scale for perceived ease of use?", [_hit(6, other), _hit(7, _SCALE, score=0.9)]
    )
    assert answer.text.startswith("5 The mail system is rigid")


def test_a_table_row_numbered_as_the_question_names_leads():
    table = (
        "Step list of the pump start-up\n\n"
        "| Step | Action |\n|---|---|\n| 1 | Open the inlet valve |\n| 2 | Prime the pump housing |\n| 3 | Press the start button |\n"
    )
    answer = ExtractiveGenerator().generate("What is step 2 of the pump start-up?", [_hit(3, table)])
    assert "| 2 | Prime the pump housing |" in answer.text
    assert "Open the inlet valve" not in answer.text


def test_named_numbers_and_numbered_entries():
    assert named_number("What is item 7 in the list?") == "7"
    assert named_number("What does the seventh candidate statement say?") == "7"
    assert named_number("What is the 3rd step?") == "3"
    assert named_number("Who first proposed the model?") is None
    assert named_number("Compare item 2 with item 4.") is None  # two entries: no one answer
    assert numbered_as("7 The system is rigid.", "7")
    assert numbered_as("(7) check the pump", "7")
    assert numbered_as("7 I find it easy.", "7")
    assert not numbered_as("7 GB of memory are needed.", "7")
    assert not numbered_as("17 The system", "7")


def test_a_page_citation_does_not_end_a_sentence():
    units = split_units("Items were adapted (Davis, 1989, p. 324) from the pretest. See Fig. 3 for details. It ends.")
    assert units == ["Items were adapted (Davis, 1989, p. 324) from the pretest.", "See Fig. 3 for details.", "It ends."]



_DEFINITIONS = (
    "Appendix A Antecedents Definition Computer anxiety An individual's apprehension, or even fear, when "
    "faced with using computers Computer playfulness The degree of cognitive spontaneity in microcomputer "
    "interactions Perceived enjoyment The extent to which using a system is perceived to be enjoyable "
    "Objective usability A construct that allows a comparison of systems on the actual effort needed"
)


def test_a_quoted_term_in_a_flattened_definitions_table_answers_with_its_definition_only():
    answer = ExtractiveGenerator().generate("How does the review define 'computer playfulness'?", [_hit(22, _DEFINITIONS)])
    assert answer.text.startswith(
        "Computer playfulness The degree of cognitive spontaneity in microcomputer interactions [1]."
    )
    assert "Perceived enjoyment" not in answer.text and "Computer anxiety" not in answer.text


def test_a_term_in_running_prose_is_not_cut_as_a_definition():
    assert defined_term("We study computer playfulness, which matters. It grows.", "computer playfulness") is None
    assert defined_term(_DEFINITIONS, "perceived enjoyment") == (
        "Perceived enjoyment The extent to which using a system is perceived to be enjoyable"
    )

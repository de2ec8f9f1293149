"""Which sentence an extractive answer starts with, and how far it reads on (issue 18, round 2):
the sentence covering the question's specific words leads even from a lower hit, a caption or
title sharing one word never leads or trails the answer, and the running text after the lead is
quoted with it, up to the next heading."""

from __future__ import annotations

from generators.extractive import ExtractiveGenerator
from generators.spans import is_caption, opens_section, tokenize
from rag.eval_answers import answer_words
from rag.types import BBox, Evidence, Hit


def _hit(page: int, kind: str, text: str, source: str = "manual.pdf") -> Hit:
    return Hit("d", source, page, 1.0 / page, "text", BBox(0, 0, 600, 800), (Evidence("text", kind, text, 1.0, BBox(0, 0, 9, 9)),))


def test_the_sentence_that_covers_the_question_leads_over_a_caption_from_a_better_hit():
    # the README's example: retrieval ranks the fault-code table's page first
    hits = [
        _hit(2, "table", "Table 1: Inverter fault codes and first actions.\n| Code | Meaning |\n|---|---|\n| E07 | Ground fault |"),
        _hit(4, "chunk", "4. Inverter fault codes\nThe inverter reports faults on its display."),
        _hit(1, "chunk", "Inspect the inverter every 6 months: read the event log and check the cooling fan."),
    ]
    answer = ExtractiveGenerator().generate("How often should the inverter be inspected?", hits)
    assert answer.text.startswith("Inspect the inverter every 6 months: read the event log"), answer.text
    assert answer.citations[0].page == 1
    assert "Table 1" not in answer.text and "4. Inverter fault codes" not in answer.text


def test_the_answer_reads_on_after_the_matching_sentence_and_stops_at_the_next_heading():
    text = ("In 1969, Norman Lear created a pilot for All in the Family. He took the pilot to ABC. "
            "The network did not like it. Lear then took the show to CBS.\n"
            "2.3 Radio\nRadio stations were bought by a few companies.")
    answer = ExtractiveGenerator().generate("What happened to Norman Lear's pilot?", [_hit(3, "chunk", text)])
    assert answer.text.startswith("In 1969, Norman Lear created a pilot")
    assert "took the show to CBS" in answer.text  # the answer follows the matched words
    assert "Radio" not in answer.text  # a new section is not part of the passage
    assert answer.text.count("[1]") == 1  # one passage, one marker


def test_a_sentence_before_the_matching_words_does_not_lead():
    text = "Here is a story about that. Norman Lear created a pilot for ABC. The network rejected it."
    answer = ExtractiveGenerator().generate("What did ABC do with Norman Lear's pilot?", [_hit(1, "chunk", text)])
    assert answer.text.startswith("Norman Lear created a pilot for ABC. The network rejected it")


def test_a_long_lead_is_cut_to_the_budget_and_the_answer_stays_near_sixty_words():
    filler = " ".join(f"Clause {i} adds detail about the pump housing and its seals." for i in range(20))
    text = "The pump primes itself in ten seconds after the valve opens. " + filler
    answer = ExtractiveGenerator().generate("How fast does the pump prime itself?", [_hit(1, "chunk", text)])
    assert answer.text.startswith("The pump primes itself in ten seconds")
    assert answer_words(answer.text) <= 60


def test_captions_and_titles_never_trail_an_answer_but_short_values_may():
    text = ("The inverter must be inspected every 6 months by the owner of the system.\n\n"
            "Figure 3: Inverter front panel\n\nSolarWatch - Inverter status")
    hits = [_hit(1, "chunk", text), _hit(2, "chunk", "Inspection log of the inverter: p-value = 0.008")]
    answer = ExtractiveGenerator(min_ratio=0.0).generate("How often is the inverter inspected?", hits)
    assert "Figure 3" not in answer.text and "SolarWatch" not in answer.text
    assert "0.008" in answer.text  # a short line that carries a value still supports


def test_a_table_caption_lead_shows_a_row_only_when_its_cells_match():
    table = "Table 1: Inverter fault codes.\n| Code | Meaning |\n|---|---|\n| E07 | Ground fault |\n| E21 | Grid voltage high |"
    matched = ExtractiveGenerator().generate("What does code E21 mean?", [_hit(2, "table", table)])
    assert "| E21 | Grid voltage high |" in matched.text and "E07" not in matched.text


def test_caption_section_and_stem_helpers():
    assert is_caption("Table 1: Inverter fault codes") and is_caption("Figure 7-26. Self-locking nuts")
    assert is_caption("Table 2 Initial scale items")
    assert not is_caption("Table 7 highlights some of the main applications")  # a sentence about a table
    assert opens_section("2.1 Tools") and opens_section("ASN.1 syntax example:")
    assert not opens_section("The pump is grey.")
    assert tokenize("countries") == tokenize("country") and tokenize("applied") == tokenize("apply")


def test_a_reader_counts_a_hyphenated_identifier_as_one_word():
    assert answer_words("bitops-3bit-bits-in-byte is fastest [1].") == 3
    assert answer_words("| Code | Meaning |\n|---|---|\n| E07 | Ground fault |") == 5


def test_the_readme_question_on_the_sample_documents_answers_first(kb_path):
    from rag import KnowledgeBase

    with KnowledgeBase.open(kb_path) as kb:
        answer = kb.ask("How often should the inverter be inspected?")
    assert answer.text.startswith("Inspect the inverter every 6 months"), answer.text
    assert answer.citations[0].source == "solar_maintenance_manual.pdf"
    assert "Table 1:" not in answer.text and "4. Inverter fault codes" not in answer.text  # no caption, no heading

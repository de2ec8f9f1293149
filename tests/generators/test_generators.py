"""The extractive generator, the generator registry and the package surface."""

from __future__ import annotations

import subprocess
import sys

import pytest

import generators
from generators import NO_ANSWER, ExtractiveGenerator, Generator, build_generator
from generators.base import StreamingGenerator
from generators.extractive import split_units
from rag.errors import ConfigError, GeneratorError
from rag.phrases import quoted_phrases
from rag.types import Answer, BBox, Evidence, Hit

from _doubles import ConceptEmbedder

MANUAL = (
    "The inverter shows fault code E21 when the grid voltage is too high. "
    "Inspect the solar panel every 6 months.\nClean the inverter fan filter\nonce a year."
)
TABLE = "| Month | Output kWh |\n|---|---|\n| March | 420 |\n| April | 515 |"


def _hits() -> list[Hit]:
    return [
        Hit("d1", "manual.pdf", 3, 0.9, "text", evidence=(Evidence("text", "chunk", MANUAL, 0.9, BBox(50, 100, 500, 160)),)),
        Hit("d2", "report.pdf", 7, 0.8, "figures", evidence=(Evidence("figures", "table", TABLE, 0.8, BBox(40, 300, 400, 420)),)),
    ]


def test_list_items_and_option_lines_are_units_of_their_own():
    # a manual's option list: joined into one paragraph by the text layer, or one item per line
    joined = ("Usage: asn1Decoding [OPTION] DEFINITIONS ENCODED ASN1TYPE -b, --benchmark perform a benchmark on "
              "decoding -s, --strict use strict DER decoding -h, --help display this help and exit")
    assert split_units(joined) == [
        "Usage: asn1Decoding [OPTION] DEFINITIONS ENCODED ASN1TYPE",
        "-b, --benchmark perform a benchmark on decoding",
        "-s, --strict use strict DER decoding",
        "-h, --help display this help and exit",
    ]
    lines = "The main features are:\n• No limits for INTEGER values\n• Thread-safety: no global variables\n2. Portability\nto C89"
    assert split_units(lines) == [
        "The main features are:", "• No limits for INTEGER values", "• Thread-safety: no global variables", "2. Portability to C89",
    ]
    # a hyphen at a line's end is still a word broken in two, not a list
    assert split_units("the well-\nknown problem of\n- a dash item") == ["the wellknown problem of", "- a dash item"]


def test_split_units_sentences_joined_lines_and_table_rows_with_header():
    units = split_units(MANUAL + "\n\n" + TABLE)
    assert units == [
        "The inverter shows fault code E21 when the grid voltage is too high.",
        "Inspect the solar panel every 6 months.",
        "Clean the inverter fan filter once a year.",
        "Month: March | Output kWh: 420",
        "Month: April | Output kWh: 515",
    ]
    assert split_units("inter-\nnational trade grew.") == ["international trade grew."]


def test_a_numbered_heading_line_does_not_open_the_sentence_below_it():
    text = "2. Inspection schedule\nInspect the inverter every 6 months: read the event log.\n2.1 Tools\nA torque wrench."
    assert split_units(text) == [
        "2. Inspection schedule", "Inspect the inverter every 6 months: read the event log.", "2.1 Tools", "A torque wrench.",
    ]
    # a numbered item whose line wraps onto a lower-case continuation stays one unit
    assert split_units("3. Remove the cover\nand the four screws.") == ["3. Remove the cover and the four screws."]
    # a long numbered section title is a heading too: glued to the paragraph below, it anchored the
    # quote at its own words and cut the sentence before its answer
    long = "4.3. Testing and dating structural changes in the presence of heteroskedasticity and autocorrelation"
    assert split_units(f"{long}\nTo illustrate this we employ the real interest series.") == [
        long, "To illustrate this we employ the real interest series."]
    answer = ExtractiveGenerator(max_sentences=1).generate(
        "How often should the inverter be inspected?",
        [Hit("d", "m.pdf", 1, 0.9, "text", evidence=(Evidence("text", "chunk", text, 0.9, BBox(0, 0, 9, 9)),))],
    )
    assert answer.text.startswith("Inspect the inverter every 6 months")


def test_answers_with_the_matching_sentence_and_cites_its_page_and_box():
    answer = ExtractiveGenerator().generate("How often should the solar panel be inspected?", _hits())
    assert isinstance(answer, Answer)
    # the sentence that answers leads, with the running text after it (its passage)
    assert answer.text.startswith("Inspect the solar panel every 6 months. Clean the inverter fan filter once a year [1].")
    assert answer.citations[0].source == "manual.pdf"
    assert answer.citations[0].page == 3
    assert answer.citations[0].bbox == BBox(50, 100, 500, 160)
    assert answer.generator == "extractive"
    assert answer.hits == tuple(_hits())
    assert "generate" in answer.timings


def test_of_two_similar_sentences_the_one_from_the_better_ranked_page_answers():
    hits = [
        Hit("d1", "paper.pdf", 10, 0.9, "text", evidence=(Evidence("text", "chunk",
            "All experiments were performed on a MacBook Pro laptop with two cores and two gigabytes of memory.", 0.9, BBox(0, 0, 9, 9)),)),
        Hit("d2", "other.pdf", 4, 0.5, "text", evidence=(Evidence("text", "chunk",
            "Experiments were performed on a cluster.", 0.5, BBox(0, 0, 9, 9)),)),
    ]
    question = "Where were the experiments performed?"
    answer = ExtractiveGenerator(max_sentences=1).generate(question, hits)
    assert (answer.citations[0].source, answer.citations[0].page) == ("paper.pdf", 10)
    with pytest.raises(ValueError, match="rank_decay"):
        ExtractiveGenerator(rank_decay=-1)
    with pytest.raises(ValueError, match="lead_decay"):
        ExtractiveGenerator(lead_decay=-1)


def test_a_sentence_holding_the_quoted_words_answers_first():
    text = ("The economy setting saves the most energy in winter. "
            "Turbo mode is the former name of the fan curve used before 2019.")
    hits = [Hit("d1", "pump.pdf", 2, 0.9, "text", evidence=(Evidence("text", "chunk", text, 0.9, BBox(0, 0, 9, 9)),))]
    plain = ExtractiveGenerator(max_sentences=1).generate("Which energy saving setting is called turbo mode?", hits)
    quoted = ExtractiveGenerator(max_sentences=1).generate("Which energy saving setting is called 'turbo mode'?", hits)
    assert plain.text.startswith("The economy setting")  # on word overlap alone, the energy sentence wins
    assert quoted.text.startswith("Turbo mode is the former name")
    # the phrases search read from the question are handed over, not read again
    given = ExtractiveGenerator(max_sentences=1).generate(
        "Which energy saving setting is called turbo mode?", hits, phrases=quoted_phrases("'turbo mode'")
    )
    assert given.text.startswith("Turbo mode is the former name")
    none = ExtractiveGenerator(max_sentences=1).generate("Which energy saving setting is called 'turbo mode'?", hits, phrases=())
    assert none.text.startswith("The economy setting")


def test_a_sentence_read_from_a_whole_page_is_cited_from_the_chunk_holding_it():
    """The demo's answer cited one passage twice: the page's text splits the title from the first
    sentence, the chunk's does not, so the page's cleaner copy of the sentence won and its
    citation, narrowed to that chunk later, became a second marker for the first one's box."""
    chunk = ("Solar Panel Maintenance Manual\nThis manual describes routine care for the inverter.\n"
             "Inspect the inverter every 6 months.")
    page = "Solar Panel Maintenance Manual\n\nThis manual describes routine care for the inverter.\n\nInspect the inverter every 6 months."
    hit = Hit("d", "m.pdf", 1, 0.9, "text", page_width=612, page_height=792, evidence=(
        Evidence("text", "chunk", chunk, 0.9, BBox(60, 60, 549, 347)),
        Evidence("pages", "page", page, 0.5, BBox(0, 0, 612, 792)),
    ))
    answer = ExtractiveGenerator(max_sentences=2, min_ratio=0.0).generate("How often is the inverter inspected, what care?", [hit])
    assert len(answer.citations) == 1 and answer.citations[0].bbox == BBox(60, 60, 549, 347), answer
    assert "Inspect the inverter every 6 months" in answer.text and "[2]" not in answer.text


def test_table_question_picks_the_row_and_keeps_the_header():
    answer = ExtractiveGenerator(max_sentences=1).generate("What was the output in April?", _hits())
    # a small markdown table: the header and the matching row; the second hit's table, cited first: [1]
    assert answer.text == "The table on page 7 [1]:\n\n| Month | Output kWh |\n|---|---|\n| April | 515 |"
    assert [(c.marker, c.source, c.page) for c in answer.citations] == [(1, "report.pdf", 7)]


def test_markers_are_numbered_in_the_order_the_answer_cites():
    hits = [
        Hit("d", "m.pdf", 1, 1.0, "text", evidence=(Evidence("text", "chunk", "The pump is grey.", 1.0, BBox(0, 0, 1, 1)),)),
        Hit("d", "m.pdf", 2, 0.9, "text", evidence=(Evidence("text", "chunk", "The pump pressure limit is three bar at the outlet.", 0.9, BBox(0, 0, 1, 1)),)),
    ]
    answer = ExtractiveGenerator(max_sentences=2, min_ratio=0.0).generate("What pressure limit at the outlet, and is the pump grey?", hits)
    assert answer.text == "The pump pressure limit is three bar at the outlet [1]. The pump is grey [2]."
    assert [(c.marker, c.page) for c in answer.citations] == [(1, 2), (2, 1)]  # page 2 (the second hit) is [1]


def test_rare_words_outweigh_words_every_evidence_shares():
    hits = [
        Hit("d", "m.pdf", p, 1.0, "text", evidence=(Evidence("text", "chunk", t, 1.0, BBox(0, 0, 1, 1)),))
        for p, t in enumerate(
            [
                "The inverter manual covers the inverter inverter installation.",
                "The inverter stops when overheating is detected.",
                "The inverter display shows the inverter status.",
            ],
            start=1,
        )
    ]
    answer = ExtractiveGenerator(max_sentences=1).generate("What does the inverter do when overheating?", hits)
    assert answer.text == "The inverter stops when overheating is detected [1]."
    assert answer.citations[0].page == 2


def test_headings_and_lead_ins_do_not_answer_when_a_sentence_does():
    # the heading and the lead-in are shorter and hold every word of the question
    text = ("2.1 ASN.1 syntax\n\nThe ASN.1 syntax follows the X.680 recommendation of the ITU.\n\n"
            "ASN.1 syntax example:\n\nMYPKIX1 { } DEFINITIONS ::= BEGIN")
    hit = Hit("d", "m.pdf", 5, 1.0, "text", evidence=(Evidence("text", "chunk", text, 1.0, BBox(0, 0, 1, 1)),))
    answer = ExtractiveGenerator(max_sentences=1).generate("Which ASN.1 syntax?", [hit])
    assert answer.text == "The ASN.1 syntax follows the X.680 recommendation of the ITU [1]."
    # without a sentence to prefer, a heading still answers rather than nothing
    alone = Hit("d", "m.pdf", 5, 1.0, "text", evidence=(Evidence("text", "chunk", "2.1 ASN.1 syntax", 1.0, BBox(0, 0, 1, 1)),))
    assert ExtractiveGenerator().generate("ASN.1 syntax?", [alone]).text == "2.1 ASN.1 syntax [1]."


def test_footnote_numbers_in_evidence_are_not_taken_for_citations():
    text = "PDF.js is included in Firefox since 2012 (version 15),[5][6] and enabled by default since Firefox 19.[7]"
    hits = [Hit("w", "wiki.pdf", 1, 1.0, "text", evidence=(Evidence("text", "chunk", text, 1.0, BBox(0, 0, 9, 9)),))]
    hits += [Hit(f"x{i}", f"x{i}.pdf", i, 0.5, "text", evidence=(Evidence("text", "chunk", f"other {i}", 0.5),)) for i in range(2, 8)]
    answer = ExtractiveGenerator().generate("Since which Firefox version is PDF.js enabled by default?", hits)
    assert [(c.marker, c.source) for c in answer.citations] == [(1, "wiki.pdf")]
    assert answer.text.endswith("(5)(6) and enabled by default since Firefox 19.(7) [1].")


def test_garbled_text_layer_debris_is_never_the_answer():
    garbage = '.     @!3   @   6 "   (@6")        \'   TAM   @%  7'
    hits = [Hit("t", "tam.pdf", 14, 1.0, "text", evidence=(Evidence("text", "chunk", garbage, 1.0),))]
    assert ExtractiveGenerator().generate("How many TAM articles?", hits).text == NO_ANSWER


def test_no_matching_evidence_gives_no_answer_and_no_citations():
    gen = ExtractiveGenerator()
    for hits in (_hits(), []):
        answer = gen.generate("Who won the football world cup?", hits)
        assert (answer.text, answer.citations) == (NO_ANSWER, ())


def test_streamed_pieces_equal_the_text_and_runs_are_deterministic():
    gen = ExtractiveGenerator(max_sentences=3, min_ratio=0.0)
    pieces: list[str] = []
    first = gen.generate("inverter fault code voltage and output in March", _hits(), on_token=pieces.append)
    second = gen.generate("inverter fault code voltage and output in March", _hits())
    assert len(pieces) == 2  # the manual's passage, then the table's row
    assert "".join(pieces) == first.text == second.text
    assert "".join(gen.stream("inverter fault code voltage and output in March", _hits())) == first.text
    assert first.citations == second.citations
    assert {c.marker for c in first.citations} == {1, 2}


def test_max_sentences_bounds_the_answer():
    answer = ExtractiveGenerator(max_sentences=1, min_ratio=0.0).generate("inverter fault code and output March", _hits())
    assert answer.text.count("[") == 1


def test_semantic_similarity_from_an_embedder_changes_the_pick():
    text = "Shipping cost tables are in the appendix. The unit price is 40 euros."
    hits = [Hit("d", "p.pdf", 1, 1.0, "text", evidence=(Evidence("text", "chunk", text, 1.0),))]
    question = "How much does it cost?"
    lexical = ExtractiveGenerator(max_sentences=1).generate(question, hits)
    semantic = ExtractiveGenerator(embedder=ConceptEmbedder(), semantic_weight=0.8, max_sentences=1).generate(question, hits)
    assert lexical.text.startswith("Shipping cost tables")
    assert semantic.text == "The unit price is 40 euros [1]."
    with pytest.raises(TypeError):
        ExtractiveGenerator(embedder=object())


def test_embedder_answers_without_shared_words_but_abstains_when_nothing_is_close():
    text = "Shipping tables are in the appendix. The unit price is 40 euros."
    hits = [Hit("d", "p.pdf", 1, 1.0, "text", evidence=(Evidence("text", "chunk", text, 1.0),))]
    gen = ExtractiveGenerator(embedder=ConceptEmbedder(), max_sentences=1)
    assert gen.generate("Is it expensive?", hits).text == "The unit price is 40 euros [1]."
    assert gen.generate("Who won the football world cup?", hits).text == NO_ANSWER


def test_only_the_lexically_best_candidates_are_embedded():
    text = " ".join(f"Sentence number {i} talks about solar output." for i in range(50))
    hits = [Hit("d", "p.pdf", 1, 1.0, "text", evidence=(Evidence("text", "chunk", text, 1.0),))]
    embedder = ConceptEmbedder()
    ExtractiveGenerator(embedder=embedder, semantic_candidates=10).generate("solar output?", hits)
    assert embedder.embedded == [10]


def test_extractive_cannot_complete_prompts():
    with pytest.raises(GeneratorError, match="cannot complete"):
        ExtractiveGenerator().complete("Route this question: ...")


def test_registry_builds_by_name_and_rejects_unknown_names_and_missing_options():
    assert isinstance(build_generator("extractive"), ExtractiveGenerator)
    assert isinstance(build_generator("extractive", max_sentences=1), Generator)
    assert isinstance(build_generator("extractive"), StreamingGenerator)
    with pytest.raises(ConfigError, match="extractive, local, openai"):
        build_generator("gpt-magic")
    with pytest.raises(ConfigError, match="model="):
        build_generator("local")
    with pytest.raises(ConfigError, match="base_url="):
        build_generator("openai", model="m")
    with pytest.raises(ConfigError, match=r"does not take \['temperature'\]; it takes \[.*'max_sentences'"):
        build_generator("extractive", temperature=3)
    api = build_generator("openai", model="qwen", base_url="http://127.0.0.1:9/v1")
    assert (api.name, api.base_url) == ("openai:qwen", "http://127.0.0.1:9/v1")
    local = build_generator("local", model="/nonexistent/Qwen2-VL-2B", family="qwen2-vl")
    assert local.name == "local:Qwen2-VL-2B" and local.model is None  # nothing loaded yet
    with pytest.raises(ConfigError, match="qwen2-vl"):
        build_generator("local", model="x", family="llava")


def test_local_generator_takes_a_registered_name_a_hub_id_or_a_folder():
    named = build_generator("local", model="smolvlm-256m")
    assert (named.model_id, named.family.family) == ("HuggingFaceTB/SmolVLM-256M-Instruct", "idefics3")
    by_hub_id = build_generator("local", model="Qwen/Qwen2-VL-2B-Instruct")
    assert by_hub_id.family.family == "qwen2-vl"
    folder = build_generator("local", model="/models/my-smolvlm")
    assert folder.model_id == "/models/my-smolvlm" and folder.family is None  # read from config.json at load
    assert build_generator("local", model="smolvlm-256m", family="smolvlm").family.family == "smolvlm"  # explicit wins


def test_importing_generators_does_not_import_torch_httpx_or_other_stages():
    code = (
        "import sys, generators, generators.local_vlm, generators.openai_api, generators.registry;"
        "print(sorted(m for m in ('torch', 'httpx', 'transformers', 'ingest', 'retrievers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_exported_members():
    assert sorted(generators.__all__) == sorted(
        [
            "Generator", "StreamingGenerator", "ContextItem", "SYSTEM_PROMPT", "NO_ANSWER", "build_context", "build_prompt",
            "CitationResult", "parse_markers", "resolve_citations", "write_highlights", "ExtractiveGenerator",
            "LocalVLMGenerator", "OpenAIChatGenerator", "GENERATORS", "build_generator",
        ]
    )
    for name in generators.__all__:
        assert getattr(generators, name) is not None


def test_a_sentence_found_through_its_chunk_and_its_page_is_said_once():
    chunk = "Inspection schedule Inspect the solar panel every 6 months."
    page = "Contents. Inspect the solar panel every 6 months. Wear gloves when you clean the panel surface."
    hits = [
        Hit("d1", "manual.pdf", 3, 0.9, "text", evidence=(
            Evidence("text", "chunk", chunk, 0.9, BBox(50, 100, 500, 160)),
            Evidence("pages", "page", page, 0.8, BBox(0, 0, 612, 792)),
        )),
    ]
    answer = ExtractiveGenerator().generate("How often should the solar panel be inspected?", hits)
    assert answer.text.count("every 6 months") == 1

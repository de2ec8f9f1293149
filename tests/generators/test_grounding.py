"""Generated answers checked against their citations: claims, matching, marker removal."""

from __future__ import annotations

import pytest

from generators.base import build_context
from generators.grounding import claims, evidence_texts, ground, sentence_spans
from generators.markers import cited_answer
from rag.types import BBox, Evidence, Hit

PANEL = "manual.pdf page 3\nInspect the panel every 6 months: read the event log and check the cooling fan."
FAULT = "manual.pdf page 5\nFault E21: grid voltage too high (above 1,250 V). Call a certified electrician."
EVIDENCE = {1: PANEL, 2: FAULT}


def test_claims_are_numbers_names_identifiers_and_key_words():
    c = claims("Siemens says the Qwen2-VL model reads `config.yaml` in 2.50 s, every six months on ColPali")
    assert c.numbers == ("2.5", "6")  # trailing zero and a number word normalised; the unit "s" is not a claim
    assert c.codes == ("config.yaml", "Qwen2-VL")
    assert c.names == ("ColPali",)  # "Siemens" opens the sentence: a key word, not a name
    assert "siemens" in c.words and "model" in c.words and "says" not in c.words
    assert claims("Made by Siemens", sentence_start=False).names == ("Made", "Siemens")
    assert not claims("See the figure.")  # nothing to check


@pytest.mark.parametrize(
    "sentence",
    [
        "Inspect the panel every 6 months [1].",
        "The panels are inspected every six months [1].",  # plural, inflection, number word
        "Fault E-21 means the grid voltage is too high [2].",  # hyphen inside an identifier
        "Above 1250 V a certified electrician must be called [2].",  # thousands separator, unit
        "The grid voltage is too high above 1\u202f250 volts [2].",  # narrow no-break space as thousands separator
        "According to [1], the event log is read every 6 months.",  # marker before the claims
        "The fan is checked every 6 months. [1]",  # marker after the full stop
        "See [2].",  # no claims
    ],
)
def test_supported_sentences_keep_their_markers(sentence):
    result = ground(sentence, EVIDENCE)
    assert result.text == sentence and result.unsupported == () and result.removed == ()


@pytest.mark.parametrize(
    ("sentence", "missing"),
    [
        ("Inspect the panel every 8 months [1].", "number"),
        ("Fault E22 means the grid voltage is too high [2].", "identifier"),
        ("The panel was made by Siemens, who inspect it every 6 months [1].", "name"),
        ("Fault E21 means the grid voltage is too high [1].", "wrong marker"),
        ("The warranty covers hail and lightning damage [1].", "key words"),
    ],
)
def test_unsupported_sentences_lose_their_marker_and_are_listed(sentence, missing):
    result = ground(sentence, EVIDENCE)
    expected = sentence.replace(" [1]", "").replace(" [2]", "")
    assert result.text == expected, missing
    assert result.unsupported == (expected,)


def test_only_the_failing_marker_of_a_group_is_removed():
    text = "Fault E21 means the grid voltage is too high [1, 2]. It is checked every 6 months [2][1]."
    result = ground(text, EVIDENCE)
    assert result.text == "Fault E21 means the grid voltage is too high [2]. It is checked every 6 months [1]."
    assert result.unsupported == ()
    assert [m for m, _ in result.removed] == [1, 2]


def test_claims_split_across_the_markers_of_one_clause_keep_both():
    text = "Inspect every 6 months and call an electrician for fault E21 [1][2]."
    assert ground(text, EVIDENCE).text == text


def test_each_clause_is_checked_against_its_own_marker():
    text = "The panel is inspected every 6 months [1], and fault E21 means high grid voltage [2]."
    assert ground(text, EVIDENCE).text == text
    swapped = "The panel is inspected every 6 months [2], and fault E21 means high grid voltage [1]."
    result = ground(swapped, EVIDENCE)
    assert result.text == "The panel is inspected every 6 months, and fault E21 means high grid voltage."
    assert result.unsupported == (result.text,)


def test_a_sentence_keeping_one_supported_clause_is_still_listed_when_another_lost_its_marker():
    text = "The panel is inspected every 6 months [1], and fault E99 means high grid voltage [2]. Done."
    result = ground(text, EVIDENCE)
    assert result.text == "The panel is inspected every 6 months [1], and fault E99 means high grid voltage. Done."
    assert result.unsupported == ("The panel is inspected every 6 months, and fault E99 means high grid voltage.",)


def test_evidence_without_text_cannot_be_checked_and_keeps_its_marker():
    assert ground("The chart peaks at 640 kWh in July [3].", {3: ""}).text == "The chart peaks at 640 kWh in July [3]."


def test_sentences_split_at_full_stops_before_capitals_and_at_line_breaks():
    text = "Check every 6.5 months, e.g. in May [1]. Then call Fig. 2 support [2].\n- E21 [2]"
    pieces = [text[s:e].strip() for s, e in sentence_spans(text)]
    assert pieces == ["Check every 6.5 months, e.g. in May [1].", "Then call Fig. 2 support [2].", "- E21 [2]"]


def _hits() -> list[Hit]:
    long_text = "Inspect the panel every 6 months. " + "Filler words about nothing. " * 60 + "Torque the bolts to 12 Nm."
    return [
        Hit("d1", "manual.pdf", 3, 0.9, "text", label="iii",
            evidence=(Evidence("text", "chunk", long_text, 0.9, BBox(50, 100, 500, 160)),)),
        Hit("d1", "manual.pdf", 5, 0.7, "text", evidence=(Evidence("text", "chunk", FAULT.split("\n")[1], 0.7),)),
    ]


def test_evidence_is_the_full_text_and_the_heading_the_model_saw():
    hits = _hits()
    items = build_context(hits, max_chars=200)
    assert items[0].text.endswith("…")  # the model was shown a cut text...
    texts = evidence_texts(items, hits)
    assert "12 Nm" in texts[1]  # ...but the check reads the whole passage
    assert texts[1].startswith("manual.pdf page 3 printed page iii")
    assert ground("Torque the bolts to 12 Nm, see page 3 (printed iii) [1].", texts).unsupported == ()


def test_cited_answer_checks_only_when_asked_and_drops_citations_no_marker_names():
    hits = _hits()
    items = build_context(hits)
    raw = "Inspect every 6 months [1]. Fault E21 means the voltage is above 1250 V [1][2]. Siemens made it [2]."
    plain = cited_answer("extractive", "q", raw, items, hits, {})
    assert plain.text == raw and [c.marker for c in plain.citations] == [1, 2] and plain.unsupported == ()
    checked = cited_answer("openai:m", "q", raw, items, hits, {}, check=True)
    assert checked.text == "Inspect every 6 months [1]. Fault E21 means the voltage is above 1250 V [2]. Siemens made it."
    assert [(c.marker, c.page) for c in checked.citations] == [(1, 3), (2, 5)]
    assert checked.unsupported == ("Siemens made it.",)
    only_wrong = cited_answer("openai:m", "q", "Siemens made it [2].", items, hits, {}, check=True)
    assert only_wrong.citations == () and only_wrong.text == "Siemens made it."


def test_decimals_written_without_a_leading_zero_are_found():
    evidence = {1: "Use (r{.75em}l) with widths .16 and .14 of the line."}
    assert ground("Use r{.75em}l with widths of .16 and .14 [1].", evidence).unsupported == ()
    assert ground("Use widths of .17 [1].", evidence).unsupported == ("Use widths of .17.",)

"""Quoted phrases in a question: the page holding the quoted words ranks first."""

from __future__ import annotations

import pytest

import _pdfgen as g
from _doubles import text_hit
from rag import KnowledgeBase
from rag.config import Config, IngestConfig
from rag.phrases import holds, quoted_phrases
from retrievers.pipeline import promote

FAST = Config(ingest=IngestConfig(ocr="never", dpi=72))


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Which elements are inside the dashed 'User Motivation' box?", (" user motivation ",)),
        ('What does "eco boost" do?', (" eco boost ",)),
        ("What do \u201cred\u201d and \u2018amber, steady\u2019 mean?", (" red ", " amber steady ")),
        # apostrophes inside or at the end of words are not quotes
        ("In Davis's model, what is Lessig's point?", ()),
        ("Why don't the users' settings persist?", ()),
        ("In Lessig's diagrams, what is inside the 'unregulated' circle?", (" unregulated ",)),
        ("Is 'x' the same as 'X'?", (" x ",)),
        ("Quotes around nothing: '...'", ()),
    ],
)
def test_quoted_phrases_are_read_like_a_search_engine_reads_them(question, expected):
    assert quoted_phrases(question) == expected


def test_a_phrase_is_held_across_punctuation_case_line_breaks_and_hyphenation():
    page = "The dashed box (User\nMotivation) groups three beliefs. Computer play-\nfulness, too; ﬂow."
    assert holds(page, quoted_phrases("the 'user motivation' box")) == 1
    assert holds(page, quoted_phrases("define 'computer playfulness'")) == 1
    assert holds(page, quoted_phrases("what is 'flow'")) == 1  # the ligature folds
    assert holds(page, quoted_phrases("the 'user motivations' box")) == 0  # whole words only
    assert holds(page, quoted_phrases("'dashed box' and 'missing words'")) == 1


def test_pages_holding_the_phrase_move_ahead_in_their_own_order():
    hits = [text_hit(1, "motivation of users", 0.9), text_hit(2, "User Motivation box", 0.8),
            text_hit(3, "nothing", 0.7), text_hit(4, "the user motivation again", 0.6)]
    out = promote(hits, quoted_phrases("the 'user motivation' box"), {})
    assert [h.page for h in out] == [2, 4, 1, 3]
    # the page text, where known, is what is judged (not only the evidence shown)
    out = promote(hits, quoted_phrases("the 'user motivation' box"), {("d", 3): "... User Motivation ..."})
    assert [h.page for h in out] == [2, 3, 4, 1]


def test_promotions_sharing_their_counts_judge_each_page_text_once_and_alike():
    """The search promotes twice (before and after the reranker) over the same page texts: the
    second promotion reuses the first's counts and orders as a fresh one would."""
    hits = [text_hit(1, "x", 0.9), text_hit(2, "x", 0.8), text_hit(3, "x", 0.7)]
    texts = {("d", 2): "the User Motivation box", ("d", 3): "user motivation, again"}
    phrases = quoted_phrases("the 'user motivation' box")
    counted: dict = {}
    first = promote(hits, phrases, texts, counted)
    assert [h.page for h in first] == [2, 3, 1] and counted == {("d", 2): 1, ("d", 3): 1}
    assert promote(first[::-1], phrases, texts, counted) == promote(first[::-1], phrases, texts) == [first[1], first[0], first[2]]


def test_a_phrase_no_candidate_holds_leaves_the_order_alone():
    hits = [text_hit(1, "alpha", 0.9), text_hit(2, "beta", 0.8)]
    assert promote(hits, quoted_phrases("what is 'gamma ray'?"), {}) == hits
    assert promote(hits, (), {}) == hits


def test_more_phrases_held_ranks_higher():
    hits = [text_hit(1, "red", 0.9), text_hit(2, "red and amber", 0.8), text_hit(3, "amber", 0.7)]
    out = promote(hits, quoted_phrases("what do 'red' and 'amber' mean?"), {})
    assert [h.page for h in out] == [2, 1, 3]


GLOSSARY = (
    "Glossary of legacy names. Turbo mode: the former name of the fan curve that the service team "
    "used before 2019. Quiet hours: the night schedule of the compressor."
)
ENERGY = (
    "Energy saving settings. The energy saving setting lowers the power drawn by the heat pump. "
    "Which setting saves energy? The economy setting saves the most energy, and the energy saving "
    "setting is what most owners choose for the winter months."
)


def test_a_quoted_name_finds_its_page_in_a_knowledge_base(tmp_path):
    """End to end: without quotes the page about saving energy wins on meaning; with the name
    quoted, the glossary page that holds it comes first, and the result says what was quoted."""
    pdf = g.text_pdf(tmp_path / "heatpump.pdf", [ENERGY, GLOSSARY])
    with KnowledgeBase.open(tmp_path / "kb", FAST, create=True) as kb:
        kb.ingest([pdf], progress=False)
        plain = kb.search("Which energy saving setting is called turbo mode?", top_k=2)
        quoted = kb.search("Which energy saving setting is called 'turbo mode'?", top_k=2)
    assert [h.page for h in plain.hits] == [1, 2]
    assert [h.page for h in quoted.hits] == [2, 1]
    assert quoted.to_json()["quoted"] == ["turbo mode"]
    assert plain.to_json()["quoted"] == []

"""Requery: a weak first round is searched again with expansion terms or a question's two parts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import _pdfgen as g
from _doubles import text_hit
from rag import KnowledgeBase
from rag.config import AskConfig, Config, IngestConfig, load_config
from rag.errors import ConfigError
from retrievers import pipeline
from retrievers.requery import expansion_terms, fuse_rounds, is_weak, margin, question_parts, rocchio

FAST = Config(ingest=IngestConfig(ocr="never", dpi=72))


def test_a_flat_top_is_weak_and_a_clear_winner_is_not():
    flat = [text_hit(1, "a", 0.50), text_hit(2, "b", 0.49), text_hit(3, "c", 0.48)]
    clear = [text_hit(1, "a", 0.90), text_hit(2, "b", 0.50), text_hit(3, "c", 0.40)]
    assert is_weak(flat) and not is_weak(clear)
    assert margin(clear) == pytest.approx(0.5556, abs=1e-4)
    assert not is_weak([]) and margin([text_hit(1, "a", 0.3)]) == 1.0


def test_expansion_terms_are_shared_by_the_top_pages_and_rare_in_the_pool():
    top = ["the heat pump defrost cycle melts ice", "a defrost cycle reverses the heat pump"]
    pool = top + ["the pump warranty", "the pump manual", "the pump noise", "heat and the pump"]
    terms = expansion_terms("How does the heat pump clear ice?", top, pool, n=3)
    # on both top pages and few others; "the"/"pump" are on most pages, "ice" is asked,
    # "melts" is on one top page only
    assert terms == ["cycle", "defrost"]


def test_a_two_part_question_splits_only_when_each_part_stands_alone():
    assert question_parts("Which engine traces loops and what benchmarks were run on the machine?") == [
        "Which engine traces loops", "what benchmarks were run on the machine"]
    assert question_parts("Who wrote the review of the model; when was the survey published?") == [
        "Who wrote the review of the model", "when was the survey published"]
    # the second part leans on the first ("it"): searched alone it finds anything
    assert question_parts("Which engine traces loops and what speedup did it get?") == []
    assert question_parts("What is the default colour of the status light?") == []


def test_fusion_keeps_the_first_page_and_lifts_pages_both_rounds_find():
    first = [text_hit(p, str(p)) for p in (1, 2, 3, 4)]
    second = [text_hit(p, str(p)) for p in (4, 9)]
    fused = fuse_rounds(first, [second], limit=5)
    assert [h.page for h in fused] == [1, 4, 2, 3, 9]
    assert [h.page for h in fuse_rounds(first, [second], limit=2)] == [1, 4]


def test_rocchio_moves_the_question_towards_the_top_pages():
    q = np.array([1.0, 0.0], dtype=np.float32)
    moved = rocchio(q, [np.array([0.0, 1.0], dtype=np.float32)], beta=1.0)
    assert np.allclose(moved, [2 ** -0.5, 2 ** -0.5], atol=1e-6)
    assert rocchio(q, []) is q


def test_requery_is_an_option_of_ask_off_by_default(tmp_path):
    assert AskConfig().requery is False
    path = tmp_path / "c.toml"
    path.write_text("[ask]\nrequery = true\n")
    assert load_config(path).ask.requery is True
    with pytest.raises(ConfigError, match="ask.requery must be true or false"):
        AskConfig(requery="yes")  # type: ignore[arg-type]


PAGES = [
    "Defrost cycle. The heat pump runs a defrost cycle in winter: the defrost cycle reverses the flow.",
    "Defrost cycle timing. A defrost cycle lasts ten minutes; the defrost cycle starts on ice.",
    "Warranty. The heat pump warranty covers parts for five years.",
    "Noise. The heat pump is quiet at night.",
    "Installation. The heat pump stands outside on a level base.",
    "Filters. Clean the heat pump filters every month.",
    "Display. The heat pump display shows the water temperature.",
    "Contact. Call the service line for the heat pump.",
]


def test_a_weak_search_says_how_it_requeried(tmp_path, monkeypatch):
    """End to end: with requery on and the first round judged weak, the JSON names the expansion
    query searched; with it off (the default) the JSON says no requery happened."""
    pdf = g.text_pdf(tmp_path / "pump.pdf", PAGES)
    question = "How does the heat pump get rid of ice in winter?"
    with KnowledgeBase.open(tmp_path / "kb", FAST, create=True) as kb:
        kb.ingest([pdf], progress=False)
        plain = kb.search(question, top_k=3)
    assert plain.requery is None and plain.to_json()["requery"] is None
    monkeypatch.setattr(pipeline, "is_weak", lambda hits: True)
    on = dataclasses.replace(FAST, ask=AskConfig(requery=True))
    with KnowledgeBase.open(tmp_path / "kb", on) as kb:
        again = kb.search(question, top_k=3)
    shown = again.to_json()["requery"]
    assert shown["how"] == "expansion"
    assert shown["queries"][0].startswith(question) and "defrost" in shown["queries"][0]
    assert again.hits[0].page == plain.hits[0].page  # the first round's best page stays first
    assert "requery" in again.to_json()["timings_ms"]

"""The document stage through the knowledge base: on by default, shown in the search JSON with
each document's score and whether its pages kept their scores, off with ``ask.documents = false``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rag import KnowledgeBase
from rag.config import AskConfig, Config
from rag.errors import ConfigError


def test_search_json_says_which_documents_kept_their_pages_scores(kb_path) -> None:
    with KnowledgeBase.open(kb_path) as kb:
        result = kb.search("How often should the inverter be inspected?", top_k=5)
    shown = result.to_json()["documents"]
    sources = {h.source for h in result.hits}
    assert len(sources) >= 2  # the samples are several documents
    assert shown["weight"] > 0 and "candidate pages" in shown["reason"]
    listed = [d["source"] for d in shown["documents"]]
    assert sources <= set(listed)
    assert shown["documents"][0]["kept"] and shown["documents"][0]["factor"] == 1.0
    assert all(0 < d["factor"] <= 1.0 for d in shown["documents"])


def test_the_stage_is_off_with_ask_documents_false(kb_path) -> None:
    config = replace(Config(), ask=AskConfig(documents=False))
    with KnowledgeBase.open(kb_path, config=config) as kb:
        result = kb.search("How often should the inverter be inspected?", top_k=5)
    assert result.documents is None and result.to_json()["documents"] is None


def test_ask_documents_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="ask.documents must be true or false"):
        AskConfig(documents="yes")  # type: ignore[arg-type]


def test_a_document_ingested_after_a_search_joins_the_stage(tmp_path) -> None:
    from tests._pdfgen import text_pdf

    first = text_pdf(tmp_path / "inverter.pdf", ["Inspect the inverter every six months.", "Inverter fault codes: E01 overheating."])
    second = text_pdf(tmp_path / "garden.pdf", ["Water the lawn twice a week.", "Clean the pump filter every six months."])
    third = text_pdf(tmp_path / "bakery.pdf", ["Knead the dough for ten minutes.", "Bake the bread at 220 degrees."])
    with KnowledgeBase.open(tmp_path / "kb", create=True) as kb:
        kb.ingest([first, second], progress=False)
        before = kb.search("How often is the inverter inspected?", top_k=4).to_json()["documents"]
        kb.ingest([third], progress=False)
        after = kb.search("How long should the dough be kneaded?", top_k=4).to_json()["documents"]
    assert {d["source"] for d in before["documents"]} == {"inverter.pdf", "garden.pdf"}
    assert before["documents"][0]["source"] == "inverter.pdf"
    assert after["documents"][0]["source"] == "bakery.pdf" and after["documents"][0]["kept"]

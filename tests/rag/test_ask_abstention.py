"""`mmrag ask` on a question the documents cannot answer: a plain "the documents do not say"."""

from __future__ import annotations

import json

from rag.cli import main

OFF_TOPIC = "Which country won the 2018 FIFA World Cup?"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_off_topic_question_is_not_answered_in_json(capsys, kb_path):
    code, out, _ = run(capsys, "ask", OFF_TOPIC, "--kb", str(kb_path), "--json")
    data = json.loads(out)
    assert code == 0
    assert data["answered"] is False and data["citations"] == []
    assert data["answer"].startswith("The documents do not say.")
    assert data["hits"], "the closest pages are still given"
    assert data["hits"][0]["source"] in data["answer"]
    assert data["why_unanswered"] is None or data["why_unanswered"] in data["answer"]  # the reason, when given, is said


def test_off_topic_question_prints_a_plain_sentence_and_no_sources(capsys, kb_path):
    code, out, _ = run(capsys, "ask", OFF_TOPIC, "--kb", str(kb_path))
    assert code == 0
    assert out.startswith("The documents do not say. ") and "The closest pages are: " in out
    assert "Sources:" not in out and "[1]" not in out


def test_answerable_question_still_answers_and_no_abstain_shows_the_generated_answer(capsys, kb_path):
    code, out, _ = run(capsys, "ask", "How often should the inverter be inspected?", "--kb", str(kb_path), "--json")
    data = json.loads(out)
    assert data["answered"] is True and "6 months" in data["answer"] and data["citations"]
    code, out, _ = run(capsys, "ask", OFF_TOPIC, "--kb", str(kb_path), "--json", "--no-abstain")
    assert json.loads(out)["answered"] is True


def test_a_question_naming_the_documents_author_is_answered(capsys, kb_path):
    """The sample manual's PDF metadata names its author ("mmrag"); the knowledge base keeps it,
    and a question that names the manual by its author is answered, not refused for that name."""
    from rag.kb import KnowledgeBase

    with KnowledgeBase.open(kb_path) as kb:
        authors = {d.name: d.author for d in kb.documents()}
    assert authors == {"solar_maintenance_manual.pdf": "mmrag", "inverter_dashboard.png": None}
    code, out, _ = run(capsys, "ask", "How often does the MMRAG manual say the inverter should be inspected?",
                       "--kb", str(kb_path), "--json")  # fmt: skip
    data = json.loads(out)
    assert data["answered"] is True and "6 months" in data["answer"], data["answer"]

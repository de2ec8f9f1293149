"""Sentence granularity (``[ask] sentences``): the best text chunks rescored by their best
sentence window, so a question about one sentence of a long chunk finds its page."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag import KnowledgeBase
from rag.config import AskConfig, Config
from rag.errors import ConfigError
from rag.json_shapes import hit_json
from retrievers.base import ScoredPoint
from retrievers.sentences import rescore_by_sentences, sentence_windows
from tests._pdfgen import text_pdf


def test_windows_overlap_by_sentence_and_short_sentences_join_the_next():
    text = "Intro. The pump runs at night to save power. It stops as soon as the tank in the attic is full!\n\nA new paragraph starts here without a stop"
    assert sentence_windows(text, 1) == [
        "Intro. The pump runs at night to save power.",
        "It stops as soon as the tank in the attic is full!",
        "A new paragraph starts here without a stop",
    ]
    assert sentence_windows(text, 2) == [
        "Intro. The pump runs at night to save power. It stops as soon as the tank in the attic is full!",
        "It stops as soon as the tank in the attic is full! A new paragraph starts here without a stop",
    ]


def test_a_short_text_is_one_window_and_an_empty_one_none():
    assert sentence_windows("One sentence only, long enough to stand on its own.", 2) == ["One sentence only, long enough to stand on its own."]
    assert sentence_windows("  \n ", 2) == []
    with pytest.raises(ValueError, match="at least one sentence"):
        sentence_windows("text", 0)


class KeywordEmbedder:
    """Unit vectors by keyword: a window holding "boiler" points along the query's axis."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed_documents(self, texts):
        self.seen.extend(texts)
        return np.asarray([[1.0, 0.0] if "boiler" in t else [0.0, 1.0] for t in texts], dtype=np.float32)


def _point(pid: str, score: float, text: str) -> ScoredPoint:
    return ScoredPoint(pid, score, {"text": text})


def test_the_chunk_holding_the_matching_sentence_moves_up_and_says_which_window():
    filler = "The garden has old roses along the south wall. Tomatoes grow in the greenhouse all summer."
    points = [
        _point("a", 1.0, filler),
        _point("b", 0.95, filler + " The boiler is serviced every October by the caretaker."),
        _point("c", 0.9, filler),
        _point("d", 0.2, "Beyond the candidates: the boiler room is locked at night."),
    ]
    out = rescore_by_sentences(points, np.asarray([1.0, 0.0], dtype=np.float32), KeywordEmbedder(), candidates=3, weight=0.2)
    assert [p.id for p in out.points] == ["b", "a", "c", "d"]
    assert out.lifted == {"b": "Tomatoes grow in the greenhouse all summer. The boiler is serviced every October by the caretaker."}
    # a point below the candidates keeps its place and score, and is never embedded
    assert out.points[-1] == points[-1]


def test_no_candidates_no_change():
    embedder = KeywordEmbedder()
    assert rescore_by_sentences([], np.asarray([1.0, 0.0]), embedder).points == []
    assert embedder.seen == []


def test_the_setting_must_be_a_boolean():
    with pytest.raises(ConfigError, match="ask.sentences must be true or false"):
        AskConfig(sentences="yes")  # type: ignore[arg-type]


LIBRARY = [
    "The Riverside Library opened in 1911 in a former grain warehouse beside the old quay. The architect kept the brick "
    "walls and the iron columns of the warehouse and added a glass roof over the central reading room, which still floods "
    "the tables with daylight. During the restoration of 1987 the timber floors were replaced with oak boards from a "
    "demolished school, and the card catalogue was moved to the gallery. Borrowers may keep a book for three weeks and "
    "renew it twice online. The east wing holds the local history collection: parish registers, maps of the harbour, and "
    "photographs of the ferry that crossed the river until the bridge was built. The building was listed as a monument in "
    "2002, and the city council funds its upkeep together with a trust of former readers.",
    "Membership of the Riverside Library is free for everyone who lives, works or studies in the city. To join, bring a "
    "document showing your address to the front desk, where staff will issue a library card within a few minutes. The "
    "card lets members borrow books, audiobooks, films and magazines, reserve titles from other branches, and use the "
    "computers on the first floor. Children under twelve need a parent or guardian to sign the form. Lost cards can be "
    "replaced at the desk for a small fee. Members can also join the reading groups that meet on Tuesday evenings and the "
    "lending scheme for e-readers.",
    "The library café on the ground floor serves coffee, tea and sandwiches from nine in the morning until four in the "
    "afternoon. Food from the café may be eaten on the terrace but not in the reading rooms. The café is run by "
    "volunteers, and its profits buy new books for the children's section. On Saturdays there is a story hour for young "
    "children next to the café, and a market for second-hand books is held on the terrace on the first Sunday of each month.",
    "Study rooms on the second floor can be booked for up to four hours a day. Each room has a whiteboard, a screen and "
    "power sockets at every seat. Bookings open a week in advance and are made at the front desk or on the library's "
    "website. Quiet study is expected in the open areas of the second floor, and phone calls should be taken on the "
    "stairs. Printing and scanning are available next to the study rooms; a page costs ten cents in black and white.",
]


@pytest.fixture(scope="module")
def library_kb(tmp_path_factory) -> Path:
    """Four pages of one chunk each (real bundled text model); page 1 is about the building's
    history and says in one sentence what its floors are made of; page 4 is about study rooms
    on the second floor."""
    root = tmp_path_factory.mktemp("sentences")
    pdf = text_pdf(root / "library.pdf", LIBRARY)
    with KnowledgeBase.open(root / "kb", create=True) as kb:
        kb.ingest([pdf])
    return root / "kb"


def _search(kb_path: Path, sentences: bool, question: str):
    config = replace(Config(), ask=AskConfig(sentences=sentences))
    with KnowledgeBase.open(kb_path, config=config) as kb:
        return kb.search(question, top_k=4).hits


def test_a_question_about_one_sentence_of_a_long_chunk_finds_its_page(library_kb):
    question = "Which wood was used for the floors?"
    chunk_only = _search(library_kb, False, question)
    assert chunk_only[0].page != 1  # the whole chunk is about the building's history: another page won
    assert all(h.granularity == "chunk" for h in chunk_only)

    hits = _search(library_kb, True, question)
    assert hits[0].page == 1
    shown = hit_json(hits[0])  # what `mmrag search --json` and the server print
    assert shown["granularity"] == "sentence"
    assert "oak boards" in shown["evidence"][0]["sentence"]
    assert len(shown["evidence"][0]["sentence"]) < len(shown["evidence"][0]["text"])
    # the other pages are still all there, each found by its chunk
    assert sorted(h.page for h in hits) == [1, 2, 3, 4]

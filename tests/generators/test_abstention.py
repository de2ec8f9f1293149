"""The abstention judge: when the evidence does not answer, the answer says so and cites nothing."""

from __future__ import annotations

import pytest

from generators.abstention import AbstentionJudge, abstain, abstention_text, coverage
from rag.config import AskConfig
from rag.errors import ConfigError
from rag.types import Answer, Citation, Evidence, Hit


class WordEmbedder:
    """Bag-of-words unit vectors over a fixed vocabulary: cosine = shared-word overlap."""

    def __init__(self, vocab: list[str]) -> None:
        self.vocab = vocab

    def _vec(self, text: str) -> list[float]:
        words = text.lower().replace("?", " ").replace(".", " ").split()
        v = [float(w in words) for w in self.vocab]
        n = sum(x * x for x in v) ** 0.5 or 1.0
        return [x / n for x in v]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]


def hit(source: str, page: int, text: str) -> Hit:
    return Hit("d" + source, source, page, 0.5, "text", evidence=(Evidence("text", "chunk", text, 0.5),))


def answer(question: str, hits: list[Hit], cited: str | None, text: str = "Something [1].", generator: str = "extractive") -> Answer:
    cites = () if cited is None else (Citation(1, hits[0].doc_id, hits[0].source, hits[0].page, None, cited),)
    return Answer(question, text, cites, tuple(hits), generator=generator)


INVERTER = "Inspect the inverter every 6 months and clean its air filter."
SPREADSHEET = "On Windows, spreadsheet programs often store spreadsheets in their own binary formats."


def test_coverage_weighs_a_missing_specific_word_more_than_a_shared_common_one():
    passages = ["the inverter manual", "inverter output table", "inverter cleaning", "filter of the inverter"]
    # "inverter" is in every passage (low weight), "kenya" in none (highest weight)
    assert coverage("inverter kenya", passages) < 0.5
    assert coverage("inverter cleaning", passages) == 1.0
    assert coverage("the of", passages) == 1.0  # no content words: nothing is missing


def test_off_topic_evidence_is_withdrawn_and_the_closest_pages_are_named():
    q = "How often should the inverter be inspected?"
    hits = [hit("sheets.pdf", 3, SPREADSHEET), hit("sheets.pdf", 7, SPREADSHEET), hit("other.pdf", 2, "A table of fonts.")]
    judge = AbstentionJudge(WordEmbedder(["inverter", "inspected", "spreadsheet", "binary"]))
    out = judge.apply(q, answer(q, hits, SPREADSHEET, f"{SPREADSHEET} [1]"))
    assert out.answered is False and out.citations == ()
    assert out.hits == tuple(hits)
    assert out.text == "The documents do not say. The closest pages are: sheets.pdf p.3, sheets.pdf p.7, other.pdf p.2."
    assert "spreadsheet" not in out.text.lower()


def test_supported_answer_is_kept_as_it_was():
    q = "How often should the inverter be inspected?"
    hits = [hit("manual.pdf", 4, INVERTER)]
    a = answer(q, hits, INVERTER, "Every 6 months [1].")
    judgement = AbstentionJudge(WordEmbedder(["inverter", "inspect", "inspected", "months"])).judge(q, a)
    assert judgement.answered and judgement.reason == "answered"
    assert AbstentionJudge(None).apply(q, a) is a


def test_a_paraphrase_close_in_meaning_is_answered_even_with_few_shared_words():
    q = "How frequently does the power converter need checking?"
    hits = [hit("manual.pdf", 4, INVERTER)]

    class Close:  # a semantic embedder that finds them close whatever the words
        def embed_query(self, text):
            return [1.0, 0.0]

        def embed_documents(self, texts):
            return [[0.8, 0.6] for _ in texts]

    a = answer(q, hits, INVERTER)
    assert coverage(q, [INVERTER]) < 0.25
    assert AbstentionJudge(Close()).judge(q, a).answered
    assert not AbstentionJudge(Close(), min_similarity=0.9).judge(q, a).answered


def test_an_answer_without_citations_is_an_abstention():
    q = "Who won the 2019 Tour de France?"
    hits = [hit("manual.pdf", 4, INVERTER)]
    out = AbstentionJudge(None).apply(q, answer(q, hits, None, "I could not find an answer."))
    assert out.answered is False and out.text.startswith("The documents do not say.")
    nothing = AbstentionJudge(None).apply(q, Answer(q, "", ()))
    assert nothing.text == "The documents do not say: nothing in the knowledge base matched the question."


def test_a_model_that_says_it_could_not_find_the_answer_abstains_but_a_quoted_sentence_does_not():
    q = "How often should the inverter be inspected?"
    hits = [hit("manual.pdf", 4, INVERTER)]
    judge = AbstentionJudge(None)
    declined = answer(q, hits, INVERTER, "The evidence does not mention an inspection interval [1].", "openai:gpt")
    assert judge.judge(q, declined).reason == "generator declined"
    quoted = answer(q, hits, INVERTER, "The evidence does not mention an inspection interval [1].", "extractive")
    assert judge.judge(q, quoted).answered


def test_abstention_text_names_each_page_once_with_its_printed_label():
    h = Hit("d1", "book.pdf", 12, 0.5, "text", label="iv")
    text = abstention_text([h, h, hit("a.pdf", 1, "x")])
    assert text == "The documents do not say. The closest pages are: book.pdf p.12 (printed iv), a.pdf p.1."
    out = abstain(Answer("q", "x [1]", (Citation(1, "d1", "book.pdf", 12, None),), (h,)))
    assert out.citations == () and not out.answered


@pytest.mark.parametrize("bad", [{"abstain_min_similarity": 1.5}, {"abstain_min_coverage": -0.1}, {"abstain": "yes"}])
def test_bad_abstention_settings_are_refused(bad):
    with pytest.raises(ConfigError, match="ask.abstain"):
        AskConfig(**bad)

"""The abstention judge: when the evidence does not answer, the answer says so and cites nothing."""

from __future__ import annotations

import pytest

from generators.abstention import (
    AbstentionJudge, abstain, abstention_text, asks_for_number, coverage, has_number, has_quantity, lead_quote, specific_terms,
)
from generators.term_stats import TermStats
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


def answer(question: str, hits: list[Hit], cited: str | None, text: str | None = None, generator: str = "extractive") -> Answer:
    """An answer citing ``cited`` as [1]; its text quotes the passage unless ``text`` is given."""
    cites = () if cited is None else (Citation(1, hits[0].doc_id, hits[0].source, hits[0].page, None, cited),)
    if text is None:
        text = "Something [1]." if cited is None else f"{cited.rstrip('.')} [1]."
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
    assert out.text == ("The documents do not say. The closest passages are about something else. "
                        "The closest pages are: sheets.pdf p.3, sheets.pdf p.7, other.pdf p.2.")
    assert out.why_unanswered == "The closest passages are about something else."
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


# -- corpus statistics: a named thing the pages do not mention; a number the cited passage lacks

CTEA = "In 1998, Congress passed the Sonny Bono Copyright Term Extension Act, extending terms by twenty years."
BOOK = TermStats.count([CTEA, "Lessig writes about copyright and Congress.", "Lessig on Disney.", "Free culture and Congress."] * 50)


def test_a_named_person_on_none_of_the_pages_withdraws_an_on_topic_answer():
    q = "When did President Clinton sign the Sonny Bono Copyright Term Extension Act into law?"
    hits = [hit("freeculture.pdf", 230, CTEA)]
    judgement = AbstentionJudge(None, term_stats=BOOK).judge(q, answer(q, hits, CTEA))
    assert not judgement.answered and judgement.reason == "missing term"
    assert judgement.missing == ("President Clinton",)
    # without the corpus statistics the page looks like an answer (the first round's judge)
    assert AbstentionJudge(None).judge(q, answer(q, hits, CTEA)).answered


def test_a_name_common_in_the_knowledge_base_or_a_common_word_missing_is_not_held_against_the_pages():
    hits = [hit("freeculture.pdf", 230, CTEA)]

    class Close:  # the passage is close in meaning to both questions
        def embed_query(self, text):
            return [1.0, 0.0]

        def embed_documents(self, texts):
            return [[0.8, 0.6] for _ in texts]

    judge = AbstentionJudge(Close(), term_stats=BOOK)
    q = "According to Lessig, which act did Congress pass in 1998 to extend copyright terms?"
    assert judge.judge(q, answer(q, hits, CTEA)).answered  # "Lessig" is on a quarter of the pages
    q = "Which law lengthened copyright durations in 1998, as this volume recounts?"
    assert judge.judge(q, answer(q, hits, CTEA)).answered  # reader's own words, nothing named


def test_a_name_the_documents_own_metadata_gives_counts_as_present():
    """A reader names a document by its publisher ("the FAA handbook"): the author a PDF's
    metadata gives is a name of that document, like its file name, not a missing thing."""
    q = "Which self-locking nuts does the FAA handbook picture?"
    text = "Figure 7-26 of the handbook pictures these self-locking nuts: Boots aircraft nut, Flexloc nut, elastic stop nut."
    stats = TermStats.count([text, "Torque the nut to the value in the table.", "Safety wire the bolt."] * 40)
    a = answer(q, [hit("amt_handbook_sample.pdf", 1, text)], text)
    assert AbstentionJudge(None, term_stats=stats).judge(q, a).missing == ("FAA",)
    named = AbstentionJudge(None, term_stats=stats, names={"damt_handbook_sample.pdf": "AMT General Handbook FAA"})
    assert named.judge(q, a).answered
    # only the cited documents' names count: another document's author does not vouch for this one
    other = AbstentionJudge(None, term_stats=stats, names={"dother.pdf": "FAA"})
    assert other.judge(q, a).missing == ("FAA",)


def test_a_name_in_the_documents_file_name_counts_as_present():
    q = "What does the Wikipedia article say about the PDF.js stable release?"
    text = "Stable release 4.0.379 of PDF.js, December 31, 2023."
    stats = TermStats.count([text, "PDF.js renders PDF files.", "Mozilla"] * 40)
    a = answer(q, [hit("pdfjs_wikipedia.pdf", 1, text)], text)
    assert AbstentionJudge(None, term_stats=stats).judge(q, a).answered
    b = answer(q, [hit("pdfjs.pdf", 1, text)], text)
    assert AbstentionJudge(None, term_stats=stats).judge(q, b).missing == ("Wikipedia",)


def test_specific_terms_are_names_acronyms_identifiers_and_numbers():
    names = [name for name, _ in specific_terms("How do I compute cluster-robust errors with vcovCL in R, as of 2019, per UTAUT and Google Sheets?")]
    assert names == ["vcovCL", "2019", "UTAUT", "Google Sheets"]  # a one-letter name ("R") is too ambiguous
    assert specific_terms("Which machine ran the benchmarks?") == []  # a capital that starts the sentence


def test_a_question_for_a_number_needs_a_number_in_the_lead_cited_passage():
    q = "How many minutes long was the talk on SNP block partitioning?"
    title = "On the Complexity of SNP Block Partitioning. Workshop on Algorithms in Bioinformatics."
    hits = [hit("talk.pdf", 1, title)]
    judgement = AbstentionJudge(None).judge(q, answer(q, hits, title))
    assert not judgement.answered and judgement.reason == "no number"
    timed = "The talk on SNP block partitioning lasts twenty minutes."
    assert AbstentionJudge(None).judge(q, answer(q, [hit("talk.pdf", 1, timed)], timed)).answered
    assert asks_for_number("Since which Firefox version is PDF.js enabled?") and not asks_for_number("Who wrote it?")
    assert has_number("version 19") and has_number("twice a year") and not has_number("no figures here")


def test_a_number_question_needs_the_number_in_what_the_answer_quotes_not_elsewhere_on_the_page():
    # the page is on topic and holds numbers, but the sentence the answer leads with gives none:
    # "how many side exits" answered with the table's caption is no answer
    q = "In the trace statistics table, how many side exits did 3d-raytrace take?"
    page = "Figure 13. Detailed trace recording statistics for the SunSpider benchmark set. 3d-raytrace 10 25 100 10 1"
    hits = [hit("tracemonkey.pdf", 12, page)]
    caption = answer(q, hits, page, "Figure 13. Detailed trace recording statistics for the SunSpider benchmark set [1].")
    judgement = AbstentionJudge(None).judge(q, caption)
    assert not judgement.answered and judgement.reason == "no number"  # "13" labels the figure, it counts nothing
    row = answer(q, hits, page, "Figure 13. Detailed trace recording statistics [1]:\n\n| | Loops | Exits |\n|---|---|---|\n| 3d-raytrace | 10 | 25 |")
    assert AbstentionJudge(None).judge(q, row).answered  # the table written after "[1]:" is the quote
    q = "Since which libtasn1 version has asn1_dup_node been available?"
    api = "asn1_dup_node src: Source asn1 node. Available since libtasn1 4.0."
    name_only = answer(q, [hit("libtasn1.pdf", 30, api)], api, "asn1 dup node src: Source asn1 node [1].")
    assert AbstentionJudge(None).judge(q, name_only).reason == "no number"  # the 1 of "asn1" is no version
    assert has_quantity("since 2013 (version 19)") and has_quantity("$12,000") and has_quantity("ten copies")
    assert not has_quantity("Table 7 highlights the countries (4)") and not has_quantity("asn1 dup node")
    assert not has_quantity("Jens Gramm1, 2Bar-Ilan University, 4Tel-Aviv University")  # a title slide's affiliation marks
    assert lead_quote("A [1]. B [2]. C [1].") == "A  . C " and lead_quote("No marker.") is None


def test_term_stats_count_pages_and_weigh_rare_terms_most():
    stats = TermStats.count(["The inverter manual.", "Inverter output table.", "Cleaning the filter."])
    assert stats.pages == 3 and stats.df["inverter"] == 2 and stats.df["filter"] == 1
    assert stats.idf("kenya") == stats.max_idf() > stats.idf("filter") > stats.idf("inverter")
    assert TermStats.from_json(stats.to_json()) == stats

"""Answer types: a question that asks for a unit, a name or a count is answered only by a quote holding one."""

from __future__ import annotations

from generators.abstention import AbstentionJudge
from generators.answer_types import asked_unit, asks_for_date, asks_for_name, holds_unit, new_names, without_citation_years
from rag.types import Answer, Citation, Evidence, Hit


def judged(question: str, quote: str):
    """The judge's verdict on an answer quoting ``quote`` as [1] from a page on the question's topic
    (the page holds every word of the question, so only the quote's answer type can fail it)."""
    page = f"{question} {quote}"
    h = Hit("d", "doc.pdf", 3, 0.5, "text", evidence=(Evidence("text", "chunk", page, 0.5),))
    a = Answer(question, quote + " [1].", (Citation(1, "d", "doc.pdf", 3, None, quote),), (h,), generator="extractive")
    return AbstentionJudge(None).judge(question, a)


def test_a_question_naming_its_unit_is_answered_only_by_a_quote_in_that_unit():
    q = "How long, in milliseconds, did 3d-raytrace take to run under TraceMonkey?"
    assert asked_unit(q) == "millisecond"
    speedup = "3d-raytrace ran 1.18 times faster than the interpreter."
    assert judged(q, speedup).reason == "no unit"  # a number, but a ratio, not a time
    assert judged(q, "3d-raytrace ran in 212 ms under TraceMonkey.").answered
    assert judged(q, "3d-raytrace took 212 milliseconds.").answered
    assert asked_unit("How large are annual doujinshi sales in Japan, in yen?") == "yen"
    assert holds_unit("sales of ¥30 billion", "yen") and not holds_unit("33,000 circles of creators", "yen")
    assert asked_unit("How big is the index in MB?") == "megabyte" and holds_unit("about 12MB on disk", "megabyte")
    # "in" before an ordinary word is no unit
    assert asked_unit("What happens in second place?") is None and asked_unit("What changed in recent years?") is None
    assert not holds_unit("the ms office format", "millisecond")  # an abbreviation counts only after a number


def test_a_who_question_is_answered_only_by_a_quote_that_names_someone_new():
    q = "Who built the first machine that turned printed letters into telegraph code?"
    assert asks_for_name(q)
    unnamed = "An early machine turned printed letters into telegraph code. There are many later readers."
    assert judged(q, unnamed).reason == "no name"
    assert judged(q, "In 1914, Emanuel Goldberg built a machine that turned printed letters into telegraph code.").answered
    assert new_names("In 1914, Emanuel Goldberg built it.", q) == ["Emanuel", "Goldberg"]
    assert new_names("There the machine stood.", q) == []  # a capitalised stopword is no name
    assert asks_for_name("How many articles did it cover, and who carried it out?") and asks_for_name("Who are listed as contributors?")
    assert asks_for_name("What were the names of the students?") and asks_for_name("How large was it, and by whom?")
    # a relative "who", "who is <someone named>" (what someone is) and "what is it called"
    # (often a lower-case term) are not name questions
    assert not asks_for_name("How many women, who had the surgery, were alive after ten years?")
    assert not asks_for_name("Who is the keeper named Ottoline?")
    assert not asks_for_name("What limit does varchar have, and what is it often called?")


def test_a_count_is_not_answered_by_the_year_of_a_reference():
    q = "How many bank employees took part in Brown and Burkman's study of mandatory system use?"
    cited = "Brown, Massey and Burkman (2002) carried out a field study to replicate TAM in the banking industry."
    assert judged(q, cited).reason == "no number"
    assert judged(q, "Brown and Burkman (2002) surveyed 107 bank employees.").answered
    assert without_citation_years("as Davis (1989) and (King and He, 2006; Ma, 2004) found") == "as Davis   and   found"
    # a question for a year is answered by one
    when = "In which year did Davis publish the TAM?"
    assert asks_for_date(when) and judged(when, "The model was published by Davis (1989).").answered


def test_an_abstention_says_why_in_a_readers_words():
    from generators.abstention import explain

    q = "How long, in milliseconds, did 3d-raytrace take to run under TraceMonkey?"
    h = Hit("d", "tracemonkey.pdf", 12, 0.5, "text", evidence=(Evidence("text", "chunk", q + " It ran 1.18 times faster.", 0.5),))
    a = Answer(q, "It ran 1.18 times faster [1].", (Citation(1, "d", "tracemonkey.pdf", 12, None, "It ran 1.18 times faster."),), (h,))
    out = AbstentionJudge(None).apply(q, a)
    assert not out.answered and out.citations == ()
    assert out.why_unanswered == "The passage that comes closest gives nothing in milliseconds."
    assert out.text == ("The documents do not say. The passage that comes closest gives nothing in milliseconds. "
                        "The closest pages are: tracemonkey.pdf p.12.")
    from generators.abstention import Judgement

    assert explain(Judgement(False, "missing term", missing=("Google Sheets",)), "x") == "No retrieved page mentions \u201cGoogle Sheets\u201d."
    assert explain(Judgement(False, "no unit"), "What are sales, in yen?") == "The passage that comes closest gives nothing in yen."
    assert explain(Judgement(False, "no citations"), "x") is None  # the generator's own "could not find" says enough

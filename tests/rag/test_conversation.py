"""Follow-up questions: which questions depend on the conversation, what a rewrite adds, the model
path and its fallback, history files and their errors; then ``kb.ask(history=)`` and
``mmrag ask --history`` on the sample knowledge base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.conversation import (
    MAX_TURNS,
    Turn,
    depends_on_context,
    parse_history,
    read_history,
    rewrite_followup,
    rewrite_with_model,
    turn_subject,
)
from rag.errors import GeneratorError, HistoryError, QueryError
from _doubles import ScriptedCompleter

DEPENDENT = [
    "And who should measure its insulation resistance?",
    "what about its default value?",
    "What about the stainless steel one: which parts are labelled?",
    "How about the second table?",
    "Also, when was it released?",
    "How many times did it abort?",
    "What machine were its benchmark experiments run on?",
    "Which factors does it group as anchors?",
    "When was that released?",
    "Why does that keep them cheap at startup?",
    "In that diagram, where does execution go after a side exit?",
    "What question does it ask?",
    "Since which Firefox version has it been enabled by default?",
    "Who wrote them?",
    "What did he conclude?",
    "Why?",
    "How many?",
]

INDEPENDENT = [
    "What is TraceMonkey?",
    "What is PDF.js?",
    "What is photosynthesis?",
    "How often should the inverter be inspected?",
    "How long does it take to charge the battery?",
    "Is it possible to disable the cooling fan?",
    "What is the fan that cools the inverter?",
    "Who said that copyright law is broken?",
    "Which benchmark had the most trace aborts?",
    "What does the chart on page 3 show?",
    "How does the inverter work and when should it be serviced?",
    "Where is the reset button and what does it do?",
    "What is the default value of max_tokens?",
    "Which one of the nuts is made of fiber?",
    "What did Lessig say about his book?",
    "Which benchmark aborted most, and how often did it abort?",
    "Summarize the TAM review.",
    "Does the 'User Motivation' box include its attitude arrow?",
]

HISTORY = (Turn("How often should the inverter be inspected?", "Every 6 months [1]."),)


@pytest.mark.parametrize("question", DEPENDENT)
def test_a_follow_up_that_refers_back_depends_on_the_conversation(question):
    assert depends_on_context(question) is not None
    rewrite = rewrite_followup(question, HISTORY)
    assert rewrite is not None
    # the question as asked, then the earlier turn's subject
    assert rewrite.rewritten.startswith(question.strip())
    assert "inverter" in rewrite.rewritten[len(question):]


@pytest.mark.parametrize("question", INDEPENDENT)
def test_a_question_that_stands_alone_is_never_rewritten(question):
    assert depends_on_context(question) is None
    assert rewrite_followup(question, HISTORY) is None


def test_the_reason_names_the_word_that_refers_back():
    assert "'its'" in depends_on_context("What connects its two sections?")
    assert "what about" in depends_on_context("What about the fridge?")


def test_the_subject_is_the_earlier_turns_content_words_not_its_whole_question():
    assert turn_subject(Turn("How often should the inverter be inspected?", "Every 6 months.")) == "inverter"
    assert turn_subject(Turn("How many traces were recorded for the 3d-raytrace benchmark?")) == "3d-raytrace benchmark"
    # a name the earlier question holds comes first; its "which X" focus and its verbs do not count
    assert turn_subject(Turn("How does Davis define perceived ease of use?")) == "Davis perceived ease"
    # a short answer naming an entity is what "it" refers to next
    subject = turn_subject(Turn("Which SunSpider benchmark had the most trace aborts?", "access-fannkuch."))
    assert "access-fannkuch" in subject and "benchmark" not in subject.split()
    # a long answer is not an entity: its words are left out
    assert turn_subject(Turn("What is TraceMonkey?", "A trace-based just-in-time compiler for JavaScript, built into Firefox.")) == "TraceMonkey"


def test_words_the_follow_up_already_has_are_not_added_twice():
    rewrite = rewrite_followup("When was that Firefox release?", (Turn("Which Firefox release made PDF.js the default?", "19."),))
    assert rewrite is not None
    added = rewrite.rewritten[len("When was that Firefox release?"):]
    assert "PDF.js" in added and "Firefox" not in added


def test_the_most_recent_turn_with_a_subject_is_used_at_most_max_turns_back():
    turns = (Turn("What is the warranty of the battery?", "Ten years."), Turn("Why?", "Because."), Turn("How so?", ""))
    rewrite = rewrite_followup("And its price?", turns)
    assert rewrite is not None and "battery" in rewrite.rewritten
    too_far = (Turn("What is the warranty of the battery?", ""),) + tuple(Turn("Why?", "") for _ in range(MAX_TURNS))
    assert rewrite_followup("And its price?", too_far) is None
    assert rewrite_followup("And its price?", ()) is None


def test_the_model_rewrites_with_the_last_turns():
    model = ScriptedCompleter("Who should measure the inverter's insulation resistance?")
    rewrite = rewrite_with_model("And who should measure its insulation resistance?", HISTORY, model)
    assert rewrite is not None and rewrite.method == "model"
    assert rewrite.rewritten == "Who should measure the inverter's insulation resistance?"
    assert "How often should the inverter be inspected?" in model.prompts[0]


def test_the_model_repeating_the_question_means_no_rewrite():
    assert rewrite_with_model("What is PDF.js?", HISTORY, ScriptedCompleter(" What is PDF.js? ")) is None


@pytest.mark.parametrize("reply", ["", "Sure!\nWho measures it?", "The inverter.", GeneratorError("endpoint down")])
def test_a_bad_model_reply_falls_back_to_the_rule(reply):
    question = "And who should measure its insulation resistance?"
    rewrite = rewrite_with_model(question, HISTORY, ScriptedCompleter(reply))
    assert rewrite is not None and rewrite.method == "rule"
    assert rewrite.rewritten == f"{question} (inverter)"


# -- history ------------------------------------------------------------------------------------
def test_history_files_in_every_documented_shape(tmp_path):
    turns = [{"question": "Q1?", "answer": "A1."}, {"question": "Q2?"}]
    lines = tmp_path / "h.jsonl"
    lines.write_text("".join(json.dumps(t) + "\n" for t in turns), encoding="utf-8")
    listed = tmp_path / "h.json"
    listed.write_text(json.dumps(turns, indent=2), encoding="utf-8")
    expected = (Turn("Q1?", "A1."), Turn("Q2?", ""))
    assert read_history(lines) == read_history(listed) == expected
    # mmrag ask --json output appended as it is: pretty-printed objects with more keys
    appended = tmp_path / "asked.json"
    for t in turns:
        with appended.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({**t, "answered": True, "citations": [], "rewritten": None}, indent=2) + "\n")
    assert read_history(appended) == expected
    empty = tmp_path / "empty.json"
    empty.write_text("\n", encoding="utf-8")
    assert read_history(empty) == ()


@pytest.mark.parametrize(
    "text, where, problem",
    [
        ('{"question": "Q1?"}\n{"question": "Q2?", \n', "line 2", "not valid JSON"),
        ('{"question": "Q1?"}\n{"answer": "A2"}\n', "line 2", '"question"'),
        ('{"question": "Q1?"}\n\n"just text"\n', "line 3", "expected an object"),
        ('[{"question": "Q1?"}, {"question": "Q2?", "answer": 3}]', "line 1, item 1", '"answer" to be a string'),
    ],
)
def test_a_bad_history_file_names_the_file_the_line_and_the_problem(tmp_path, text, where, problem):
    path = tmp_path / "history.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HistoryError) as info:
        read_history(path)
    message = str(info.value)
    assert str(path) in message and where in message and problem in message
    assert isinstance(info.value, QueryError)


def test_a_missing_history_file_says_so(tmp_path):
    with pytest.raises(HistoryError, match="cannot be read"):
        read_history(tmp_path / "nope.json")


def test_a_history_list_is_checked_item_by_item():
    assert parse_history([{"question": " Q? ", "answer": None}, Turn("R?", "B")]) == (Turn("Q?", ""), Turn("R?", "B"))
    with pytest.raises(HistoryError, match=r"history\[1\]: expected a non-empty \"question\""):
        parse_history([{"question": "Q?"}, {"question": "  "}])
    with pytest.raises(HistoryError, match="expected a list"):
        parse_history({"question": "Q?"})


# -- the knowledge base and the CLI ------------------------------------------------------------
FIRST = "How often should the inverter be inspected?"
FOLLOW_UP = "And who should measure its insulation resistance?"


def test_kb_ask_with_history_searches_the_follow_up_with_its_subject(kb_path: Path):
    from rag import KnowledgeBase

    with KnowledgeBase.open(kb_path) as kb:
        first = kb.ask(FIRST)
        assert first.rewritten is None
        answer = kb.ask(FOLLOW_UP, history=[{"question": first.question, "answer": first.text}])
        alone = kb.ask("What is the warranty period of the battery?", history=[Turn(FIRST, first.text)])
    # the answer is to the question as asked; what was searched for is shown beside it
    assert answer.question == FOLLOW_UP
    assert answer.rewritten == f"{FOLLOW_UP} (inverter)"
    assert "searched for: " + answer.rewritten in answer.route.reason
    assert "electrician" in answer.text and answer.citations
    # a question that stands alone is searched as asked, history or not
    assert alone.rewritten is None and "searched for" not in alone.route.reason


def test_mmrag_ask_with_a_history_file(kb_path: Path, tmp_path, capsys):
    from rag.cli import main

    history = tmp_path / "history.json"
    assert main(["ask", FIRST, "--kb", str(kb_path), "--json"]) == 0
    history.write_text(capsys.readouterr().out, encoding="utf-8")  # ask --json output, as it is
    assert main(["ask", FOLLOW_UP, "--kb", str(kb_path), "--json", "--history", str(history)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["question"] == FOLLOW_UP and out["rewritten"] == f"{FOLLOW_UP} (inverter)"
    assert main(["ask", FOLLOW_UP, "--kb", str(kb_path), "--history", str(history)]) == 0
    assert f"searched for: {FOLLOW_UP} (inverter)" in capsys.readouterr().out

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q?"}\n{"question": \n', encoding="utf-8")
    assert main(["ask", FOLLOW_UP, "--kb", str(kb_path), "--history", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"history file {bad}, line 2: not valid JSON" in err

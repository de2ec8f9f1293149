"""Answer evaluation: does the answer cite the right page, hold the gold answer's key facts,
stay short, and say "the documents do not say" when they do not?

``mmrag eval --answers`` scores the questions that carry a gold ``answer`` (see
:mod:`rag.eval` for the question schema) and, with ``--unanswerable FILE``, questions the
documents cannot answer (JSON lines ``{id, doc_id, question, near_pages, why}``). Reported per
system:

- ``first_citation_gold``: share of answerable questions whose first citation is on a gold page
  of the question's document;
- ``key_fact_recall`` (median and mean): share of the gold answer's content words found in the
  answer text (markers removed; case, punctuation and common suffixes aside) — a rough measure,
  the same for every system;
- ``words`` (median): answer length in words as a reader counts them (hyphenated identifiers
  are one word; markers and table rules are none);
- ``abstention_rate``: share of unanswerable questions answered with ``answered=False``;
- ``false_abstention_rate``: share of answerable questions answered with ``answered=False``.

A baseline row, ``top-chunk``, answers every question with the best passage of the top hit
(what a user reading the first search result would see), cited to that hit's page; it never
abstains. The scoring functions are pure.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.eval import Question, doc_key, load_questions, read_question_lines
from rag.types import Answer, Citation, Hit

__all__ = [
    "UnanswerableQuestion",
    "AnswerResult",
    "load_unanswerable",
    "content_words",
    "key_fact_recall",
    "answer_words",
    "score_answer",
    "top_chunk_answer",
    "summarize_answers",
    "format_answer_summary",
    "run_answer_eval",
]

_MARKER = re.compile(r"\[\d+\]")
_WORD = re.compile(r"[^\W_]+(?:[.,'][^\W_]+)*", re.UNICODE)
_STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her his how i if in
    into is it its itself may might more most no not of on one or our she should so such than that the their
    them then there these they this those to too was we were what when where which while who whom why will
    with would you your also only other same both each any all about after before between over under up out
    very just own""".split()
)


@dataclass(frozen=True)
class UnanswerableQuestion:
    id: str
    doc_id: str | None
    question: str
    near_pages: tuple[int, ...] = ()


@dataclass(frozen=True)
class AnswerResult:
    """One question's answer, scored. ``gold`` is False for an unanswerable question."""

    id: str
    question: str
    gold: bool
    text: str
    answered: bool
    first_citation_gold: bool
    key_fact_recall: float | None
    words: int


def _unanswerable(raw: dict[str, Any], n: int) -> UnanswerableQuestion:
    doc = raw.get("doc_id")
    return UnanswerableQuestion(str(raw.get("id", n)), None if doc is None else str(doc), str(raw["question"]),
                                tuple(int(x) for x in raw.get("near_pages") or ()))


def load_unanswerable(path: str | Path) -> list[UnanswerableQuestion]:
    return read_question_lines(path, _unanswerable, "id, question")


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """The lower-cased, lightly stemmed words of ``text`` that carry content (numbers included)."""
    words = (w.lower().strip(".,'") for w in _WORD.findall(_MARKER.sub(" ", text)))
    return {_stem(w) for w in words if w and w not in _STOPWORDS and (len(w) > 1 or w.isdigit())}


def key_fact_recall(gold_answer: str, text: str) -> float | None:
    """Share of the gold answer's content words present in ``text``; None without a gold answer."""
    want = content_words(gold_answer)
    if not want:
        return None
    return len(want & content_words(text)) / len(want)


def answer_words(text: str) -> int:
    """Words as a reader counts them: runs of non-space holding a letter or digit, markers
    removed, so an identifier like ``bitops-3bit-bits-in-byte`` or ``self-locking`` is one
    word (not five or two) and a table's pipes and rules are none."""
    return sum(any(c.isalnum() for c in token) for token in _MARKER.sub(" ", text).split())


def _on_gold(citation: Citation, question: Question) -> bool:
    return doc_key(citation.source) == doc_key(question.doc_id) and citation.page in set(question.gold_pages)


def score_answer(question: Question | UnanswerableQuestion, answer: Answer) -> AnswerResult:
    if isinstance(question, Question):
        first = bool(answer.citations) and answer.answered and _on_gold(answer.citations[0], question)
        recall = key_fact_recall(question.answer, answer.text) if answer.answered else 0.0 if question.answer else None
        return AnswerResult(question.id, question.question, True, answer.text, answer.answered, first, recall,
                            answer_words(answer.text))
    return AnswerResult(question.id, question.question, False, answer.text, answer.answered, False, None,
                        answer_words(answer.text))


def top_chunk_answer(question: str, hits: Sequence[Hit]) -> Answer:
    """The baseline: the top hit's best passage (its first non-page evidence, else the page text),
    cited to that hit's page."""
    if not hits:
        return Answer(question, "", answered=False)
    hit = hits[0]
    ev = next((e for e in hit.evidence if e.kind != "page"), hit.evidence[0] if hit.evidence else None)
    text = ev.text if ev is not None else ""
    citation = Citation(1, hit.doc_id, hit.source, hit.page, ev.bbox if ev is not None else None, text, hit.label)
    return Answer(question, f"{text} [1]", (citation,), tuple(hits), generator="top-chunk")


def _median(values: Iterable[float]) -> float | None:
    vals = list(values)
    return round(statistics.median(vals), 4) if vals else None


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return round(statistics.fmean(vals), 4) if vals else None


def summarize_answers(results: Sequence[AnswerResult]) -> dict[str, Any]:
    """One system's row: the measures in the module docstring, with the counts behind them."""
    gold = [r for r in results if r.gold]
    unanswerable = [r for r in results if not r.gold]
    recalls = [r.key_fact_recall for r in gold if r.key_fact_recall is not None]
    return {
        "answerable": len(gold),
        "unanswerable": len(unanswerable),
        "first_citation_gold": _mean(float(r.first_citation_gold) for r in gold),
        "key_fact_recall_median": _median(recalls),
        "key_fact_recall_mean": _mean(recalls),
        "words_median": _median(r.words for r in gold),
        "abstention_rate": _mean(float(not r.answered) for r in unanswerable),
        "false_abstention_rate": _mean(float(not r.answered) for r in gold),
    }


def format_answer_summary(rows: dict[str, dict[str, Any]]) -> str:
    """The ``mmrag eval --answers`` table: one row per system."""

    def cell(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    cols = ("first_citation_gold", "key_fact_recall_median", "key_fact_recall_mean", "words_median",
            "abstention_rate", "false_abstention_rate")
    heads = ("first cit. gold", "key facts med", "key facts mean", "words med", "abstains (unans.)", "false abst.")
    width = max(len(name) for name in rows) if rows else 6
    lines = [" " * width + "  " + "  ".join(f"{h:>17s}" for h in heads)]
    for name, row in rows.items():
        lines.append(f"{name:<{width}s}  " + "  ".join(f"{cell(row[c]):>17s}" for c in cols))
    some = next(iter(rows.values()), {})
    lines.append(f"({some.get('answerable', 0)} answerable questions, {some.get('unanswerable', 0)} unanswerable)")
    return "\n".join(lines)


def run_answer_eval(
    questions_path: str | Path,
    docs: str | Path,
    kb_path: str | Path,
    *,
    unanswerable_path: str | Path | None = None,
    config: Any = None,
    top_k: int | None = None,
    progress: bool | None = None,
    manifest: str | Path | None = None,
    on_answer: Callable[[str, AnswerResult], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[AnswerResult]], list[Any]]:
    """Build (or reuse) a knowledge base from ``docs``, ask every question, score the answers
    of ``ask`` and of the top-chunk baseline (same retrieval). Returns (rows, results, reports)."""
    from rag.eval import load_page_manifest
    from rag.kb import KnowledgeBase

    answerable = [q for q in load_questions(questions_path) if q.answer]
    if not answerable:
        raise ConfigError(f"{questions_path}: no question carries a gold answer (\"answer\"); nothing to score")
    unanswerable = load_unanswerable(unanswerable_path) if unanswerable_path is not None else []
    ranges = load_page_manifest(manifest) if manifest is not None else None
    results: dict[str, list[AnswerResult]] = {"mmrag ask": [], "top-chunk": []}
    with KnowledgeBase.open(kb_path, config, create=True) as kb:
        reports = kb.ingest([Path(docs)], progress=progress, page_ranges=ranges)
        for q in [*answerable, *unanswerable]:
            answer = kb.ask(q.question, top_k=top_k)
            for name, a in (("mmrag ask", answer), ("top-chunk", top_chunk_answer(q.question, answer.hits))):
                scored = score_answer(q, a)
                results[name].append(scored)
                if on_answer is not None:
                    on_answer(name, scored)
    return {name: summarize_answers(rs) for name, rs in results.items()}, results, reports

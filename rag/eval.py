"""Page-retrieval evaluation: recall@k, MRR@10, nDCG@5, route accuracy, latency.

Questions are JSON lines ``{id, doc_id, question, gold_pages, type, answer, evidence}``;
``doc_id`` is a document's file name (or the name without extension) and
``gold_pages`` are physical 1-based pages, a hit on any of which counts. Relevance
is binary and only the first relevant hit counts, so nDCG@k is ``1/log2(1+rank)`` of the
first hit on a gold page within the top k.

The scoring functions are pure and take ranked ``(document name, page)`` lists, so a
peer system (BM25, llama-index) is scored by exactly the same code as mmrag.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rag.errors import ConfigError

__all__ = [
    "Question",
    "QuestionResult",
    "load_questions",
    "read_question_lines",
    "doc_key",
    "first_relevant_rank",
    "score_ranking",
    "summarize",
    "TYPE_CORPUS",
    "evaluate",
    "misses_report",
    "format_summary",
    "load_page_manifest",
    "run_eval",
]

T = TypeVar("T")

#: Which corpus a question type implies, for route accuracy (tables live in ``figures``).
TYPE_CORPUS = {"text": "text", "table": "figures", "figure": "figures"}
CUTOFFS = {"recall@1": 1, "recall@5": 5}


@dataclass(frozen=True)
class Question:
    id: str
    doc_id: str
    question: str
    gold_pages: tuple[int, ...]
    type: str = "text"
    answer: str = ""


@dataclass(frozen=True)
class QuestionResult:
    question: Question
    ranked: tuple[tuple[str, int], ...]
    rank: int | None
    latency_s: float
    route_corpus: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        return score_ranking(self.rank)


def doc_key(name: str) -> str:
    """Normalise a document name: ``report.pdf`` and ``report`` are the same document."""
    base = Path(name).name
    return base.rsplit(".", 1)[0].lower() if "." in base else base.lower()


def read_question_lines(path: str | Path, parse: Callable[[dict[str, Any], int], T], expected: str) -> list[T]:
    """Each non-blank JSON line of ``path`` through ``parse(record, line number)``; a bad line is a
    :class:`ConfigError` naming the file, the line and ``expected`` (the fields a line needs)."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read questions: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: cannot read questions: not UTF-8 text ({exc.reason} at byte {exc.start}); give UTF-8 JSON lines with {expected}") from exc
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(parse(json.loads(line), n))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{p}:{n}: not a valid question line ({exc}); expected {expected}") from exc
    if not out:
        raise ConfigError(f"{p}: no questions")
    return out


def _question(raw: dict[str, Any], n: int) -> Question:
    gold = tuple(int(g) for g in raw["gold_pages"])
    return Question(str(raw.get("id", n)), str(raw["doc_id"]), str(raw["question"]), gold, str(raw.get("type", "text")),
                    str(raw.get("answer", "")))


def load_questions(path: str | Path) -> list[Question]:
    return read_question_lines(path, _question, "doc_id, question, gold_pages")


def first_relevant_rank(ranked: Sequence[tuple[str, int]], question: Question) -> int | None:
    """1-based rank of the first hit on a gold page of the question's document, else None."""
    want = doc_key(question.doc_id)
    gold = set(question.gold_pages)
    for i, (doc, page) in enumerate(ranked, 1):
        if doc_key(doc) == want and page in gold:
            return i
    return None


def score_ranking(rank: int | None) -> dict[str, float]:
    def within(k: int) -> bool:
        return rank is not None and rank <= k

    return {
        "recall@1": float(within(1)),
        "recall@5": float(within(5)),
        "mrr@10": 1.0 / rank if within(10) and rank else 0.0,
        "ndcg@5": 1.0 / math.log2(1 + rank) if within(5) and rank else 0.0,
    }


def _mean_metrics(results: Sequence[QuestionResult]) -> dict[str, float]:
    keys = ("recall@1", "recall@5", "mrr@10", "ndcg@5")
    if not results:
        return {k: 0.0 for k in keys}
    return {k: round(statistics.fmean(r.metrics[k] for r in results), 4) for k in keys}


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[idx]


def summarize(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """The ``mmrag eval --json`` report."""
    by_type: dict[str, list[QuestionResult]] = {}
    for r in results:
        by_type.setdefault(r.question.type, []).append(r)
    routed = [r for r in results if r.route_corpus is not None and r.question.type in TYPE_CORPUS]
    route_acc = (
        round(sum(r.route_corpus == TYPE_CORPUS[r.question.type] for r in routed) / len(routed), 4) if routed else None
    )
    lat = [r.latency_s * 1000 for r in results]
    return {
        "overall": _mean_metrics(results),
        "by_type": {t: {**_mean_metrics(rs), "questions": len(rs)} for t, rs in sorted(by_type.items())},
        "route_accuracy": route_acc,
        "latency_ms": {"p50": round(_percentile(lat, 0.5), 2), "p95": round(_percentile(lat, 0.95), 2)},
        "questions": len(results),
    }


def evaluate(
    questions: Iterable[Question],
    search: Callable[[str], tuple[Sequence[tuple[str, int]], str | None]],
    depth: int = 10,
) -> list[QuestionResult]:
    """Run each question through ``search`` (-> ranked (doc, page) list, top route corpus)."""
    out = []
    for q in questions:
        t0 = time.perf_counter()
        ranked, route_corpus = search(q.question)
        elapsed = time.perf_counter() - t0
        ranked = tuple(ranked)[:depth]
        out.append(QuestionResult(q, ranked, first_relevant_rank(ranked, q), elapsed, route_corpus))
    return out


def format_summary(summary: dict[str, Any]) -> str:
    """The ``mmrag eval`` table: overall, by type, route accuracy and latency."""

    def row(m: dict[str, float]) -> str:
        return "  ".join(f"{k} {m[k]:.3f}" for k in ("recall@1", "recall@5", "mrr@10", "ndcg@5"))

    lines = [f"{summary['questions']} questions   {row(summary['overall'])}"]
    lines += [f"  {t:8s} ({m['questions']:3d})  {row(m)}" for t, m in summary["by_type"].items()]
    lat = summary["latency_ms"]
    lines.append(f"route accuracy {summary['route_accuracy']}   latency p50 {lat['p50']} ms, p95 {lat['p95']} ms")
    return "\n".join(lines)


def misses_report(results: Sequence[QuestionResult]) -> list[dict[str, Any]]:
    """One entry per question not answered at rank 1: what came back instead."""
    rows = []
    for r in results:
        if r.rank == 1:
            continue
        rows.append(
            {
                "id": r.question.id,
                "type": r.question.type,
                "question": r.question.question,
                "doc_id": r.question.doc_id,
                "gold_pages": list(r.question.gold_pages),
                "rank": r.rank,
                "route": r.route_corpus,
                "retrieved": [{"doc": d, "page": p} for d, p in r.ranked],
            }
        )
    return rows


def load_page_manifest(path: str | Path) -> dict[str, tuple[int, int]]:
    """``{"documents": [{"doc_id": "a.pdf", "pages": [first, last]}, ...]}`` (or a bare list,
    or JSON lines) -> file name -> physical page range to index."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        rows = data.get("documents", []) if isinstance(data, dict) else data
        out = {}
        for row in rows:
            if row.get("pages") is None:
                continue
            first, last = (int(v) for v in row["pages"])
            if not 1 <= first <= last:
                raise ValueError(f"pages {row['pages']} of {row['doc_id']} must be 1 <= first <= last")
            out[str(row["doc_id"])] = (first, last)
        return out
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"{p}: not a page manifest ({exc}); expected {{\"documents\": [{{\"doc_id\": \"a.pdf\", \"pages\": [3, 9]}}]}}"
        ) from exc


def run_eval(
    questions_path: str | Path,
    docs: str | Path,
    kb_path: str | Path,
    *,
    config: Any = None,
    top_k: int = 10,
    progress: bool | None = None,
    manifest: str | Path | None = None,
) -> tuple[dict[str, Any], list[QuestionResult], list[Any]]:
    """Build (or reuse) a knowledge base from ``docs`` and score every question.

    ``manifest`` restricts documents to page ranges (only those pages are indexed; gold
    pages stay physical)."""
    from rag.kb import KnowledgeBase

    questions = load_questions(questions_path)
    ranges = load_page_manifest(manifest) if manifest is not None else None
    with KnowledgeBase.open(kb_path, config, create=True) as kb:
        reports = kb.ingest([Path(docs)], progress=progress, page_ranges=ranges)

        def search(text: str) -> tuple[list[tuple[str, int]], str | None]:
            result = kb.search(text, top_k=top_k)
            route = result.route
            top = max(zip(route.weights, route.corpora))[1] if route.corpora else None
            return [(h.source, h.page) for h in result.hits], top

        kb.search(questions[0].question, top_k=top_k)  # warm-up: models loaded, caches filled
        results = evaluate(questions, search, depth=top_k)
    return summarize(results), results, reports

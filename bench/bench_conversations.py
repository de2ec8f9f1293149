"""Follow-up questions with and without their conversation: recall@1 and @5 of the follow-up's
gold page, searching it as asked and with ``history=`` (:mod:`rag.conversation`).

    python bench/bench_conversations.py --kb KB [--conversations bench/data/conversations.jsonl]
        [--independent QUESTIONS.jsonl ...]

``conversations.jsonl``: one conversation a line, ``{id, doc_id, history: [{question, answer}],
question, gold_pages}``; the follow-up refers back to the earlier turn. ``--independent``: question
files whose questions stand alone; each is asked after an unrelated earlier turn and must never
be rewritten (the count of those that were is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.conversation import Turn, rewrite_followup  # noqa: E402


def _rank(hits, doc_id: str, gold: list[int]) -> int | None:
    for i, h in enumerate(hits, 1):
        if h.source == doc_id and h.page in gold:
            return i
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kb", required=True)
    p.add_argument("--conversations", default=str(ROOT / "bench" / "data" / "conversations.jsonl"))
    p.add_argument("--independent", nargs="*", default=[])
    p.add_argument("--top-k", type=int, default=5)
    args = p.parse_args(argv)

    from rag import KnowledgeBase

    rows = [json.loads(line) for line in Path(args.conversations).read_text(encoding="utf-8").splitlines() if line.strip()]
    counts = {"without": [0, 0], "with": [0, 0]}
    with KnowledgeBase.open(args.kb) as kb:
        for row in rows:
            ranks = {}
            for mode, history in (("without", None), ("with", row["history"])):
                result = kb.search(row["question"], top_k=args.top_k, history=history)
                rank = _rank(result.hits, row["doc_id"], row["gold_pages"])
                ranks[mode] = rank
                counts[mode][0] += rank == 1
                counts[mode][1] += rank is not None
            print(f"{row['id']}  rank without {ranks['without'] or '-':>2}  with {ranks['with'] or '-':>2}  "
                  f"searched for: {result.rewritten}")
    n = len(rows)
    for mode in ("without", "with"):
        r1, r5 = counts[mode]
        print(f"{mode:8s} history: recall@1 {r1}/{n} = {r1 / n:.3f}   recall@{args.top_k} {r5}/{n} = {r5 / n:.3f}")
    for path in args.independent:
        questions = [json.loads(line)["question"] for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        earlier = (Turn("How often should the inverter be inspected?", "Every 6 months."),)
        rewritten = [q for q in questions if rewrite_followup(q, earlier) is not None]
        print(f"{path}: {len(rewritten)}/{len(questions)} standalone questions rewritten")
        for q in rewritten:
            print(f"   rewritten: {q}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Check that a change to the search path leaves results alone: the same ranked pages (and
scores) for every question of one or more question files, against a file written before it.

    # before the change (e.g. from the main checkout)
    PYTHONPATH=/work/main .venv/bin/python bench/check_same_results.py --kb KB \\
        --questions ../shared/eval/questions.jsonl bench/data/paraphrased_questions.jsonl --write before.json
    # after it
    .venv/bin/python bench/check_same_results.py --kb KB --questions ... --compare before.json

Prints the questions whose ranked pages differ (exit status 1 when any does) and the median
CPU milliseconds per warm search of each run (``time.process_time``: the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def ranked(kb_dir: Path, files: list[Path], top_k: int) -> tuple[dict[str, list[list]], float]:
    from rag import KnowledgeBase

    questions = []
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                q = json.loads(line)
                questions.append((f"{f.name}:{q['id']}", q["question"]))
    out: dict[str, list[list]] = {}
    cpu = []
    with KnowledgeBase.open(kb_dir) as kb:
        kb.search(questions[0][1], top_k=top_k)  # warm-up: models loaded, store open
        for key, question in questions:
            started = time.process_time()
            result = kb.search(question, top_k=top_k)
            cpu.append(time.process_time() - started)
            out[key] = [[h.doc_id, h.page, round(h.score, 5)] for h in result.hits]
    return out, statistics.median(cpu) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb", required=True, type=Path)
    parser.add_argument("--questions", required=True, nargs="+", type=Path)
    parser.add_argument("--top-k", type=int, default=10)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", type=Path, help="write the ranked pages to this JSON file")
    what.add_argument("--compare", type=Path, help="compare with a file --write made")
    args = parser.parse_args(argv)
    found, cpu_ms = ranked(args.kb, args.questions, args.top_k)
    print(f"{len(found)} questions, median {cpu_ms:.2f} CPU ms per warm search")
    if args.write is not None:
        args.write.write_text(json.dumps({"cpu_ms": cpu_ms, "ranked": found}, indent=1), encoding="utf-8")
        return 0
    before = json.loads(args.compare.read_text(encoding="utf-8"))
    pages_differ = [k for k in found if [r[:2] for r in found[k]] != [r[:2] for r in before["ranked"].get(k, [])]]
    scores_differ = [k for k in found if k not in pages_differ and found[k] != before["ranked"].get(k)]
    for key in pages_differ:
        print(f"DIFFERENT PAGES {key}: before {[tuple(r[:2]) for r in before['ranked'].get(key, [])]}, now {[tuple(r[:2]) for r in found[key]]}")
    for key in scores_differ:
        print(f"same pages, other scores {key}")
    print(f"ranked pages: {len(found) - len(pages_differ)}/{len(found)} the same; scores: "
          f"{len(found) - len(pages_differ) - len(scores_differ)}/{len(found)} the same; "
          f"CPU ms per search {before['cpu_ms']:.2f} -> {cpu_ms:.2f} ({cpu_ms / before['cpu_ms']:.2f}x)")
    return 1 if pages_differ else 0


if __name__ == "__main__":
    sys.exit(main())

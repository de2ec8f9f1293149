"""Query latency: mmrag's warm search (route + retrieve + rerank) beside llama-index's
default retriever with the same embedder, in the same run; and cold `mmrag ask`.

    .venv/bin/python bench/bench_query.py [--kb DIR] [--docs DIR] [--questions Q.jsonl] [--repeat 3]

``--kb`` reuses a knowledge base built from ``--docs`` (e.g. by ``mmrag eval``); without
it one is built in a temporary folder. The two systems answer each question in turn (not one
system's whole run after the other's), so the ratio holds on a machine whose load changes.
Printed: p50/p95 of both and the ratio, the load average, and the wall time of ``mmrag ask``
from process start to exit (extractive generator), measured three times (``--no-cold``: skip).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path)
    ap.add_argument("--docs", type=Path, default=EVAL / "docs")
    ap.add_argument("--questions", type=Path, default=EVAL / "questions.jsonl")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-cold", action="store_true", help="skip the cold `mmrag ask` runs")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    from rag.eval import load_questions
    from rag.kb import KnowledgeBase

    questions = [q.question for q in load_questions(args.questions)]
    tmp = tempfile.TemporaryDirectory()
    kb_path = args.kb or Path(tmp.name) / "kb"

    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from retrievers.embedders.text import resolve_source

    embed = HuggingFaceEmbedding(model_name=resolve_source("all-MiniLM-L6-v2"), device="cpu")
    docs = SimpleDirectoryReader(str(args.docs), required_exts=[".pdf"]).load_data()
    retriever = VectorStoreIndex.from_documents(docs, embed_model=embed).as_retriever(similarity_top_k=5)
    retriever.retrieve(questions[0])

    # both systems answer each question in turn, so a change of load on the shared machine
    # during the run weighs on both alike
    ours, theirs = [], []
    with KnowledgeBase.open(kb_path, create=True) as kb:
        if args.kb is None:
            kb.ingest([args.docs], progress=False)
        kb.search(questions[0])
        for _ in range(args.repeat):
            for q in questions:
                kb.embedders.text._query_cache.clear()  # measure the full path, not the repeat-question cache
                t = time.perf_counter()
                kb.search(q, top_k=5)
                ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                retriever.retrieve(q)
                theirs.append(time.perf_counter() - t)

    cold = []
    mmrag = ROOT / ".venv" / "bin" / "mmrag"
    for _ in range(0 if args.no_cold else 3):
        t = time.perf_counter()
        subprocess.run([str(mmrag), "ask", questions[1], "--kb", str(kb_path)], check=True, capture_output=True)
        cold.append(time.perf_counter() - t)

    print(f"{'system':12s} {'p50 ms':>10s} {'p95 ms':>10s}   ({len(ours)} warm queries each)")
    print(f"{'mmrag':12s} {pct(ours, 0.5):10.1f} {pct(ours, 0.95):10.1f}")
    print(f"{'llama-index':12s} {pct(theirs, 0.5):10.1f} {pct(theirs, 0.95):10.1f}")
    print(f"mmrag/llama-index p50 ratio: {pct(ours, 0.5) / pct(theirs, 0.5):.2f}x (target <= 0.5x)")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    if cold:
        print(f"cold `mmrag ask` (process start to answer): median {statistics.median(cold):.2f} s over {len(cold)} runs "
              f"({', '.join(f'{c:.2f}' for c in cold)}; target <= 3 s)")
    tmp.cleanup()


if __name__ == "__main__":
    main()

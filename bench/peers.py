"""mmrag beside the tools a user would pick instead, scored by the same code in the same run.

    .venv/bin/python bench/peers.py [--set public|paraphrased|heldout|blind] [--systems mmrag,bm25,llamaindex]
    .venv/bin/python bench/peers.py --questions Q.jsonl --docs DIR      # any other set
    .venv/bin/python bench/peers.py --systems mmrag,llamaindex --profile fast --repeat 3

``--repeat N``: N rounds, each running every system once in turn; the table gives each measure's
median, each ratio row the median of the rounds' own ratios (two systems that ran back to back),
and the pages/s ratio of every round is printed (and kept in ``--json`` as the mmrag row's
``ratio_per_round``). llama-index's own speed moved between 10 and 14 pages/s from run to run on
the development machine (session 17), so one round's ratio is a sample, not the measure.

Question sets (``--set``, default ``public``): ``public`` (the 30 questions of ../shared/eval),
``paraphrased`` (the same needs in other words, same documents), ``heldout`` (21 questions on six
documents gathered by ``bench/heldout_docs.py``) and ``blind`` (66 questions on six documents
gathered by ``bench/blind_docs.py``, ``bench/data/BLIND.md``). The held-out and blind documents
are gathered on first use into ``--cache`` (default ``~/.cache/mmrag-bench/SET``) and reused.

Each system runs in its own subprocess: it ingests the
documents, answers every question with a ranked page list, and the parent scores all
of them with ``rag.eval`` (recall@1, recall@5, MRR@10, nDCG@5). Printed: one table with
quality, ingest pages/s, ingest CPU seconds per page (this process and its worker processes,
user + system: the work done, which a second core cannot hide), query p50 and memory, plus
ratios against mmrag. Memory, measured the same way for every system:

- ``peak_pss_mb``: the peak, over the whole run, of the summed PSS of the system's process and
  all its descendants (mmrag's extraction workers), sampled every 0.2 s by the parent
  (``bench/_tree_memory.py``): what the process tree held at once, a page shared by a forked
  worker counted once;
- ``peak_rss_mb``: the system's own process's peak RSS (``ru_maxrss``), its workers not counted
  (until session 12 this column added the workers' largest peak once per worker).

Peers:
- ``bm25``: BM25 (rank_bm25's BM25Okapi) over each page's text layer, as extracted by PyMuPDF;
- ``llamaindex``: llama-index's default pipeline (SimpleDirectoryReader -> VectorStoreIndex,
  default splitter) with the same bundled all-MiniLM-L6-v2, nodes mapped to physical pages.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _tree_memory import TreePss  # noqa: E402  (bench/ is the script's folder)

EVAL = ROOT.parent / "shared" / "eval"
DATA = ROOT / "bench" / "data"
CACHE = Path.home() / ".cache" / "mmrag-bench"


@dataclass(frozen=True)
class QuestionSet:
    questions: Path
    #: the documents' folder; ``None``: gathered into the cache by ``gather`` (a bench script)
    docs: Path | None
    gather: str | None = None


SETS = {
    "public": QuestionSet(EVAL / "questions.jsonl", EVAL / "docs"),
    "paraphrased": QuestionSet(DATA / "paraphrased_questions.jsonl", EVAL / "docs"),
    "heldout": QuestionSet(DATA / "heldout_questions.jsonl", None, "heldout_docs.py"),
    "blind": QuestionSet(DATA / "blind_questions.jsonl", None, "blind_docs.py"),
}


def set_docs(name: str, cache: Path) -> Path:
    """The documents of question set ``name``: its folder, or the cache folder its gathering
    script fills on first use (the script checks every file's SHA-256)."""
    qset = SETS[name]
    if qset.docs is not None:
        return qset.docs
    folder = cache / name
    if not (folder.is_dir() and _pdfs(folder)):
        assert qset.gather is not None
        subprocess.run([sys.executable, str(ROOT / "bench" / qset.gather), str(folder)], check=True)
    return folder


def _rss_mb() -> float:
    """Peak RSS of this process alone (its workers are in the parent's sampled PSS)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and of its ended child processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _pdfs(docs: Path) -> list[Path]:
    return sorted(p for p in docs.iterdir() if p.suffix.lower() == ".pdf")


def run_bm25(docs: Path, questions: list[str], workdir: Path) -> dict:
    import pymupdf
    from rank_bm25 import BM25Okapi

    t0, c0 = time.perf_counter(), _cpu_s()
    keys, corpus = [], []
    for pdf in _pdfs(docs):
        with pymupdf.open(pdf) as doc:
            for i, page in enumerate(doc, 1):
                keys.append((pdf.name, i))
                corpus.append(re.findall(r"\w+", page.get_text().lower()))
    index = BM25Okapi(corpus)
    ingest_s, ingest_cpu = time.perf_counter() - t0, _cpu_s() - c0
    ranked, lat = [], []
    for q in questions:
        t = time.perf_counter()
        scores = index.get_scores(re.findall(r"\w+", q.lower()))
        top = sorted(range(len(scores)), key=lambda i: -scores[i])[:10]
        lat.append(time.perf_counter() - t)
        ranked.append([keys[i] for i in top])
    return {"ranked": ranked, "latency_s": lat, "ingest_s": ingest_s, "ingest_cpu_s": ingest_cpu, "pages": len(keys)}


def run_llamaindex(docs: Path, questions: list[str], workdir: Path) -> dict:
    import logging

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from retrievers.embedders.text import resolve_source

    embed = HuggingFaceEmbedding(model_name=resolve_source("all-MiniLM-L6-v2"), device="cpu")
    t0, c0 = time.perf_counter(), _cpu_s()
    documents = SimpleDirectoryReader(str(docs), required_exts=[".pdf"]).load_data()
    counters: dict[str, int] = {}
    for d in documents:  # the reader yields one document per page, in order: physical page = position
        name = d.metadata["file_name"]
        counters[name] = counters.get(name, 0) + 1
        d.metadata["physical_page"] = counters[name]
        d.excluded_embed_metadata_keys.append("physical_page")
        d.excluded_llm_metadata_keys.append("physical_page")
    index = VectorStoreIndex.from_documents(documents, embed_model=embed)
    ingest_s, ingest_cpu = time.perf_counter() - t0, _cpu_s() - c0
    retriever = index.as_retriever(similarity_top_k=30)
    ranked, lat = [], []
    for q in questions:
        t = time.perf_counter()
        nodes = retriever.retrieve(q)
        lat.append(time.perf_counter() - t)
        pages: list[tuple[str, int]] = []
        for n in nodes:
            key = (n.node.metadata["file_name"], int(n.node.metadata["physical_page"]))
            if key not in pages:
                pages.append(key)
        ranked.append(pages[:10])
    return {"ranked": ranked, "latency_s": lat, "ingest_s": ingest_s, "ingest_cpu_s": ingest_cpu,
            "pages": sum(counters.values())}


def run_mmrag(docs: Path, questions: list[str], workdir: Path) -> dict:
    from rag.config import Config, IngestConfig
    from rag.kb import KnowledgeBase

    config = Config(ingest=IngestConfig(ocr=os.environ.get("MMRAG_PEERS_OCR", "auto"),  # type: ignore[arg-type]
                                        profile=os.environ.get("MMRAG_PEERS_PROFILE", "default")))  # type: ignore[arg-type]
    t0, c0 = time.perf_counter(), _cpu_s()
    with KnowledgeBase.open(workdir / "kb", config, create=True) as kb:
        reports = kb.ingest([docs], progress=False)  # its extraction workers have ended (counted)
        ingest_s, ingest_cpu = time.perf_counter() - t0, _cpu_s() - c0
        kb.search(questions[0], top_k=10)  # warm-up
        ranked, lat = [], []
        for q in questions:
            t = time.perf_counter()
            result = kb.search(q, top_k=10)
            lat.append(time.perf_counter() - t)
            ranked.append([(h.source, h.page) for h in result.hits])
    return {"ranked": ranked, "latency_s": lat, "ingest_s": ingest_s, "ingest_cpu_s": ingest_cpu,
            "pages": sum(r.pages for r in reports)}


SYSTEMS = {"mmrag": run_mmrag, "bm25": run_bm25, "llamaindex": run_llamaindex}


def child(system: str, docs: Path, questions_path: Path, out: Path) -> None:
    from rag.eval import load_questions

    questions = [q.question for q in load_questions(questions_path)]
    with tempfile.TemporaryDirectory() as tmp:
        result = SYSTEMS[system](docs, questions, Path(tmp))
    result["peak_rss_mb"] = _rss_mb()
    out.write_text(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=sorted(SETS), default="public", dest="qset",
                    help="the question set and its documents (default public); --questions/--docs override")
    ap.add_argument("--questions", type=Path, help="a questions file (default: the set's)")
    ap.add_argument("--docs", type=Path, help="the documents folder (default: the set's)")
    ap.add_argument("--cache", type=Path, default=CACHE, help=f"where held-out and blind documents are gathered (default {CACHE})")
    ap.add_argument("--systems", default="mmrag,bm25,llamaindex")
    ap.add_argument("--json", type=Path, help="also write the table as JSON here")
    ap.add_argument("--ocr", choices=["auto", "never"], default="auto", help="mmrag's OCR setting (default auto)")
    ap.add_argument("--profile", choices=["default", "fast"], default="default",
                    help="mmrag's ingest profile (ingest.profile; default 'default')")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds, each running every system once in turn; the table gives each measure's median and "
                         "each ratio's median over the rounds' own ratios (the machine is shared: a peer's speed moves "
                         "between runs)")
    ap.add_argument("--child", nargs=2, metavar=("SYSTEM", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.questions is None:
        args.questions = SETS[args.qset].questions
    if args.docs is None:
        args.docs = set_docs(args.qset, args.cache)
    if args.child:
        child(args.child[0], args.docs, args.questions, Path(args.child[1]))
        return

    from rag.eval import load_questions

    questions = load_questions(args.questions)
    systems = args.systems.split(",")
    rounds = [{system: run_system(system, args, questions) for system in systems} for _ in range(args.repeat)]
    rows = {system: _median_row([r[system] for r in rounds]) for system in systems}
    print(f"{'system':12s}" + "".join(f"{c:>19s}" for c in COLS))
    for system, row in rows.items():
        print(f"{system:12s}" + "".join(f"{row[c]:>19}" for c in COLS))
    if "mmrag" in rows:
        for system in systems:
            if system == "mmrag":
                continue
            # each round's ratio, then their median: both systems ran back to back in the round
            per_round = [{c: _ratio(r["mmrag"][c], r[system][c]) for c in COLS} for r in rounds]
            ratios = [f"{statistics.median(pr[c] for pr in per_round):.2f}x" for c in COLS]
            print(f"{'mmrag/' + system:12s}" + "".join(f"{r:>19s}" for r in ratios))
            if args.repeat > 1:
                print("  ingest_pages_s ratio per round: " + ", ".join(f"{pr['ingest_pages_s']:.2f}x" for pr in per_round))
                rows["mmrag"].setdefault("ratio_per_round", {})[system] = [pr["ingest_pages_s"] for pr in per_round]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


COLS = ["recall@1", "recall@5", "mrr@10", "ndcg@5", "ingest_pages_s", "ingest_cpu_ms_page", "query_p50_ms",
        "peak_pss_mb", "peak_rss_mb"]


def run_system(system: str, args: argparse.Namespace, questions: list) -> dict:
    """One system in its own subprocess: ingest, answer every question, scored here."""
    from rag.eval import evaluate, summarize

    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "MMRAG_PEERS_OCR": args.ocr,
               "MMRAG_PEERS_PROFILE": args.profile}
        cmd = [sys.executable, __file__, "--docs", str(args.docs), "--questions", str(args.questions), "--child", system, fh.name]
        proc = subprocess.Popen(cmd, env=env)
        with TreePss(proc.pid) as pss:
            if proc.wait() != 0:
                raise subprocess.CalledProcessError(proc.returncode, cmd)
        raw = json.loads(Path(fh.name).read_text())
    answers = iter(zip(raw["ranked"], raw["latency_s"]))

    def search(_q: str) -> tuple[list, None]:
        ranked, _ = next(answers)
        return [tuple(r) for r in ranked], None

    summary = summarize(evaluate(questions, search))
    lat = sorted(raw["latency_s"])
    return {
        **summary["overall"],
        "ingest_pages_s": round(raw["pages"] / raw["ingest_s"], 2),
        "ingest_cpu_ms_page": round(raw["ingest_cpu_s"] / raw["pages"] * 1000, 1),
        "query_p50_ms": round(lat[len(lat) // 2] * 1000, 2),
        "peak_pss_mb": round(pss.peak_mb, 1),
        "peak_rss_mb": round(raw["peak_rss_mb"], 1),
    }


def _median_row(runs: list[dict]) -> dict:
    """Each measure's median over the rounds (a single round: that round's row)."""
    return {key: runs[0][key] if len(runs) == 1 else round(statistics.median(r[key] for r in runs), 4) for key in runs[0]}


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("inf")

if __name__ == "__main__":
    main()

"""All evaluation documents in one knowledge base: does a page of the wrong document win?

    .venv/bin/python bench/bench_documents.py --work /tmp/alldocs            # builds what is missing
    .venv/bin/python bench/bench_documents.py --work /tmp/alldocs --no-documents   # the stage off
    .venv/bin/python bench/bench_documents.py --work /tmp/alldocs --thesaurus      # WordNet's related words on

Builds (once, into ``--work``) one knowledge base per document set — ``public`` (../shared/eval,
also the paraphrased questions' documents), ``heldout`` and ``blind`` (gathered as
``bench/peers.py`` does, into its cache) — and ``all``, holding every one of them; a knowledge
base already in ``--work`` is reused (``--public-kb`` etc. name prebuilt ones: copy them first, the
registry migrates on open). Then every question set is searched in its own knowledge base and in
``all``, and recall@1 / recall@5 / MRR@10 / nDCG@5 are printed side by side with the difference
(issue 19's target: recall@5 in ``all`` within 0.03 of each set alone).

``--no-documents`` turns the document stage off (``[ask] documents = false``,
:mod:`retrievers.documents`), to measure what it does on the same knowledge bases; ``--thesaurus``
turns the thesaurus on (``[ask] thesaurus = true``, :mod:`retrievers.thesaurus`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from peers import CACHE, SETS, set_docs  # noqa: E402

#: question set -> the document set its questions are about
DOCS_OF = {"public": "public", "paraphrased": "public", "heldout": "heldout", "blind": "blind"}


def _build(kb: Path, folders: list[Path]) -> None:
    if (kb / "store").is_dir():
        return
    cmd = [sys.executable, "-m", "rag.cli", "ingest", "--kb", str(kb), "--no-progress", *map(str, folders)]
    subprocess.run(cmd, check=True, cwd=ROOT)


def _measure(kb_path: Path, questions: Path, documents: bool, thesaurus: bool = False) -> dict:
    from rag.config import AskConfig, Config
    from rag.eval import evaluate, load_questions, summarize
    from rag.kb import KnowledgeBase

    config = replace(Config(), ask=AskConfig(documents=documents, thesaurus=thesaurus))
    qs = load_questions(questions)
    with KnowledgeBase.open(kb_path, config=config) as kb:

        def search(text: str) -> tuple[list[tuple[str, int]], str | None]:
            hits = kb.search(text, top_k=10).hits
            return [(h.source, h.page) for h in hits], (hits[0].corpus if hits else None)

        return summarize(evaluate(qs, search, depth=10))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="where the knowledge bases are built (or found)")
    ap.add_argument("--cache", type=Path, default=CACHE, help="where held-out and blind documents are gathered")
    ap.add_argument("--no-documents", action="store_true", help="the document stage off")
    ap.add_argument("--thesaurus", action="store_true", help="the thesaurus on ([ask] thesaurus)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    names = ("public", "heldout", "blind")
    missing = [n for n in (*names, "all") if not (args.work / n / "store").is_dir()]
    # documents are gathered only when a knowledge base must be built
    folders = {n: set_docs(n, args.cache) for n in names if missing}
    for name in missing:
        _build(args.work / name, list(folders.values()) if name == "all" else [folders[name]])
    rows = {}
    for qset, docs in DOCS_OF.items():
        alone = _measure(args.work / docs, SETS[qset].questions, not args.no_documents, args.thesaurus)
        together = _measure(args.work / "all", SETS[qset].questions, not args.no_documents, args.thesaurus)
        rows[qset] = {"alone": alone, "all": together}
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    keys = ("recall@1", "recall@5", "mrr@10", "ndcg@5")
    print(f"{'set':12s} {'n':>3s}  " + "  ".join(f"{k:>17s}" for k in keys) + "   (alone / all, all - alone)")
    for qset, row in rows.items():
        a, b = row["alone"]["overall"], row["all"]["overall"]
        cells = "  ".join(f"{a[k]:.3f}/{b[k]:.3f} {b[k] - a[k]:+.3f}" for k in keys)
        print(f"{qset:12s} {row['alone']['questions']:>3d}  {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

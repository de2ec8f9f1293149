"""``mmrag demo``: sample documents -> knowledge base -> a question answered with citations."""

from __future__ import annotations

import sys
import time
from pathlib import Path

__all__ = ["run_demo", "DEMO_QUESTION"]

DEMO_QUESTION = "How often should the inverter be inspected?"


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run_demo(folder: Path, question: str | None = None, progress: bool | None = None) -> int:
    from ingest.samples import make_samples
    from rag.kb import KnowledgeBase

    folder = folder.expanduser()
    started = time.perf_counter()
    samples = make_samples(folder / "samples")
    _say(f"1. Generated {len(samples)} sample documents in {folder / 'samples'}:")
    for path in samples:
        _say(f"     {path.name}")
    with KnowledgeBase.open(folder / "kb", create=True) as kb:
        _say(f"2. Building the knowledge base in {folder / 'kb'} (embedded Qdrant, bundled all-MiniLM-L6-v2, BM25, OCR)...")
        reports = kb.ingest(samples, progress=progress)
        for r in reports:
            detail = r.error if r.error else f"{r.pages} page(s)"
            _say(f"     {r.status:9s} {r.path.name}: {detail}")
        info = kb.info()
        counts = ", ".join(f"{c}: {v['points']}" for c, v in info["corpora"].items())
        _say(f"   {info['documents']} documents, {info['pages']} pages; points per corpus: {counts}")
        q = question or DEMO_QUESTION
        _say(f"3. Asking: {q}")
        answer = kb.ask(q)
        route = answer.route
        if route is not None:
            weights = ", ".join(f"{c}={w:.2f}" for c, w in zip(route.corpora, route.weights))
            _say(f"   route: {weights} ({route.reason})")
        _say("")
        _say(answer.text.strip())
        _say("")
        _say("Sources:")
        for c in answer.citations:
            box = ", ".join(f"{v:.0f}" for v in c.bbox.as_list()) if c.bbox else "whole page"
            _say(f"  [{c.marker}] {c.source}, page {c.page}, box [{box}]")
        if not answer.citations:
            _say("  (no citations)")
    _say(f"\nDone in {time.perf_counter() - started:.1f} s. Try: .venv/bin/mmrag ask \"...\" --kb {folder / 'kb'}")
    failed = [r for r in reports if not r.ok]
    return 2 if failed or not answer.citations else 0

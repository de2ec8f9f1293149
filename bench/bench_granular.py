"""Sentence-window granularity beside chunks (issue 19 item 4), measured on a built knowledge base.

    .venv/bin/python bench/bench_granular.py --kb KB --set public paraphrased --variants base A:24:0.2:2 B:0.2:2

``--variants``: ``base`` (as configured, sentences off), ``A:N:W:S`` (variant A with N candidates,
weight W, windows of S sentences; ``AS:N:W:S`` the same with the rescored list scaled back to its old
best score), ``B:W:S`` (variant B, weight W, windows of S sentences) and ``L:W:S`` (B with each window
pooled from its chunk's token states: late chunking).
Each prints recall@1 / recall@5 / nDCG@5 and the median CPU ms per search, over a first pass
(windows not yet embedded by an earlier variant of the same run) and a second pass (all cached).

Variant A (query time): the top-N text candidates rescored by their best sentence-window
similarity, added to the fused chunk score. Variant B (ingest time, emulated in memory): every
chunk's windows embedded once, searched by brute force per question, the window list fused into
the text corpus's list. Baseline and variants run in the same process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from peers import SETS  # noqa: E402
from retrievers.sentences import sentence_windows  # noqa: E402

STATE: dict = {}


def norm(values: np.ndarray) -> np.ndarray:
    from retrievers.search import normalise

    return np.asarray(normalise(list(map(float, values))))


def rescore_a(points, qv, emb, n: int, weight: float, size: int):
    from retrievers.sentences import rescore_by_sentences

    out = rescore_by_sentences(points, qv.dense, emb, candidates=n, weight=weight, size=size).points
    if not SCALE["on"] or not points:
        return out
    from retrievers.base import ScoredPoint

    # the corpus's best score stays what it was: windows reorder the text list, not its loudness
    top_old, top_new = points[0].score, out[0].score
    k = top_old / top_new if top_new > 0 else 1.0
    return [ScoredPoint(p.id, p.score * k, p.payload) for p in out[:n]] + list(out[n:])


SCALE = {"on": False}


def rescore_b(points, qv, store, spec, weight: float, depth: int):
    from retrievers.base import ScoredPoint

    index = STATE["windex"][spec.name]
    sims = index["vecs"] @ qv.dense
    top = np.argsort(-sims)[: depth * 3]
    best: dict[str, float] = {}
    for i in top:
        pid = index["ids"][i]
        if pid not in best:
            best[pid] = float(sims[i])
        if len(best) >= depth:
            break
    ids = list(best)
    wnorm = norm(np.asarray([best[i] for i in ids]))
    wfloor = float(wnorm.min())
    wmap = {pid: float(v) - wfloor for pid, v in zip(ids, wnorm)}
    have = {p.id: p for p in points}
    floor = min((p.score for p in points), default=0.0)
    missing = [pid for pid in ids if pid not in have]
    fetched = {p.id: p for p in store.retrieve(spec.name, missing)} if missing else {}
    out = [ScoredPoint(p.id, p.score + weight * wmap.get(p.id, 0.0), p.payload) for p in points]
    for pid in missing:
        if pid in fetched:
            out.append(ScoredPoint(pid, floor + weight * wmap[pid], fetched[pid].payload))
    return sorted(out, key=lambda p: (-p.score, p.id))[: len(points)]


def build_index(kb, size: int) -> dict:
    store, specs = kb._open_store()
    spec = specs["text"]
    ids, texts, pages = [], [], set()
    for p in store.scroll(spec.name):
        pages.add((p.payload.get("doc_id"), p.payload.get("page")))
        for w in sentence_windows(p.payload.get("text", ""), size):
            ids.append(p.id)
            texts.append(w)
    c0 = time.process_time()
    vecs = kb.embedders.text.embed_documents(texts)
    cpu = time.process_time() - c0
    return {spec.name: {"ids": ids, "vecs": np.asarray(vecs, dtype=np.float32)}, "_cost": (cpu, len(texts), len(pages))}


def _window_spans(text: str, size: int) -> list[tuple[int, int]]:
    """Character spans of the windows :func:`sentence_windows` makes, in the original text."""
    from retrievers.sentences import _SENTENCE_END, MIN_SENTENCE_CHARS

    spans: list[list[int]] = []
    start = 0
    cuts = [(m.start(), m.end()) for m in _SENTENCE_END.finditer(text)] + [(len(text), len(text))]
    for a, b in cuts:
        piece = text[start:a]
        if piece.strip():
            s0 = start + len(piece) - len(piece.lstrip())
            if spans and len(" ".join(text[spans[-1][0]:spans[-1][1]].split())) < MIN_SENTENCE_CHARS:
                spans[-1][1] = a
            else:
                spans.append([s0, a])
        start = b
    if len(spans) <= size:
        return [(spans[0][0], spans[-1][1])] if spans else []
    return [(spans[i][0], spans[i + size - 1][1]) for i in range(len(spans) - size + 1)]


def build_late_index(kb, size: int) -> dict:
    """Windows pooled from the chunk's own token states (late chunking): no extra forward pass
    beyond the chunk's, which ingest already runs."""
    import torch
    from sentence_transformers import SentenceTransformer

    from rag.vectors import l2_normalize
    from retrievers.embedders.text import resolve_source

    model = SentenceTransformer(resolve_source(kb.embedders.text.name), device="cpu")
    tok, bert = model.tokenizer, model[0].auto_model
    store, specs = kb._open_store()
    spec = specs["text"]
    ids, vecs, pages = [], [], set()
    c0 = time.process_time()
    pool_cpu = 0.0
    points = list(store.scroll(spec.name))
    for p in points:
        pages.add((p.payload.get("doc_id"), p.payload.get("page")))
    for at in range(0, len(points), 16):
        batch = points[at : at + 16]
        texts = [p.payload.get("text", "") for p in batch]
        enc = tok(texts, return_offsets_mapping=True, truncation=True, padding=True, max_length=model.max_seq_length, return_tensors="pt")
        offsets_all = enc.pop("offset_mapping").numpy()
        with torch.no_grad():
            states_all = bert(**enc).last_hidden_state.numpy()
        t0 = time.process_time()
        for j, p in enumerate(batch):
            offsets, states = offsets_all[j], states_all[j]
            real = (offsets[:, 1] > offsets[:, 0])
            for a, b in _window_spans(texts[j], size):
                rows = real & (offsets[:, 0] >= a) & (offsets[:, 1] <= b)
                if rows.any():
                    ids.append(p.id)
                    vecs.append(l2_normalize(states[rows].mean(axis=0)))
        pool_cpu += time.process_time() - t0
    cpu = time.process_time() - c0
    return {spec.name: {"ids": ids, "vecs": np.asarray(vecs, dtype=np.float32)}, "_cost": (pool_cpu, len(ids), len(pages)), "_forward": cpu}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", type=Path, required=True)
    ap.add_argument("--set", nargs="+", required=True)
    ap.add_argument("--variants", nargs="+", default=["base"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import retrievers.pipeline as pipeline
    from rag.config import Config
    from rag.eval import evaluate, load_questions, summarize
    from rag.kb import KnowledgeBase

    orig = pipeline.search_corpus
    variant: dict = {"kind": "base"}

    def patched(store, spec, qv, limit, flt=None, prefetch_depth=200, fusion="score"):
        points = orig(store, spec, qv, limit, flt, prefetch_depth=prefetch_depth, fusion=fusion)
        if not spec.name.endswith("text") or variant["kind"] == "base":
            return points
        if variant["kind"] == "A":
            return rescore_a(points, qv, KB.embedders.text, variant["n"], variant["w"], variant["size"])
        return rescore_b(points, qv, store, spec, variant["w"], limit)

    pipeline.search_corpus = patched
    out = {}
    with KnowledgeBase.open(args.kb, config=Config()) as KB:
        KB.search("warm up", top_k=10)
        for vname in args.variants:
            # base | A:n:w:size | B:w:size
            parts = vname.split(":")
            SCALE["on"] = parts[0] == "AS"
            if parts[0] in ("A", "AS"):
                variant.update(kind="A", n=int(parts[1]), w=float(parts[2]), size=int(parts[3]))
            elif parts[0] in ("B", "L"):
                size = int(parts[2])
                if STATE.get("wsize") != (parts[0], size):
                    STATE["windex"] = (build_index if parts[0] == "B" else build_late_index)(KB, size)
                    STATE["wsize"] = (parts[0], size)
                    cpu, nw, npages = STATE["windex"]["_cost"]
                    out.setdefault("_ingest", {})[f"{parts[0]}size{size}"] = {"cpu_s": round(cpu, 2), "windows": nw, "pages_with_chunks": npages,
                                                                   "cpu_ms_per_page": round(1000 * cpu / max(npages, 1), 1)}
                variant.update(kind="B", w=float(parts[1]))
            else:
                variant.update(kind="base")
            for qset in args.set:
                qs = load_questions(SETS[qset].questions)
                cpu = []

                def search(text: str):
                    c0 = time.process_time()
                    hits = KB.search(text, top_k=10).hits
                    cpu.append(time.process_time() - c0)
                    return [(h.source, h.page) for h in hits], (hits[0].corpus if hits else None)

                s = summarize(evaluate(qs, search, depth=10))
                cold = float(np.median(cpu))
                cpu.clear()
                for q in qs:  # warm pass: window cache filled
                    search(q.question)
                m = s["overall"]
                row = {k: round(m[k], 3) for k in ("recall@1", "recall@5", "ndcg@5")}
                row.update(cpu_ms_p50_first=round(cold * 1000, 1), cpu_ms_p50_warm=round(float(np.median(cpu)) * 1000, 1), n=s["questions"])
                out.setdefault(qset, {})[vname] = row
                print(qset, vname, row, flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    print(json.dumps(out.get("_ingest", {})))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

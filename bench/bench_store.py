"""Benchmark the late-interaction page store: edge vs qdrant-client local mode vs numpy.

Not a test. Run::

    .venv/bin/python bench/bench_store.py --pages 10000
    .venv/bin/python bench/bench_store.py --pages 100000 --local-cap 10000

Data and ground truth: see ``_synth_pages.py`` (synthetic ColPali-shaped pages, 64 pooled
vectors per page; exact float32 MaxSim over all pages).

The store runs mean-vector prefetch (``--prefetch`` candidates) -> MaxSim rescoring on the
multivectors stored as ``--datatype`` (default ``turbo8``: 8-bit TurboQuant codes, float query;
``float16`` is the exact-precision alternative at twice the disk). Build and peak RSS are
measured in a subprocess that streams the pages in.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _synth_pages import COLLECTION, Synth, chunk_indices, exact_maxsim, make_queries, points_of_chunk, unit  # noqa: E402
from retrievers.base import VectorQuery  # noqa: E402

logger = logging.getLogger("bench_store")


# -- children: each measures its own peak RSS --------------------------------------------


class RssSampler:
    """Peak RSS of this process from /proc (VmHWM restarts at exec, unlike ru_maxrss which
    inherits the parent's peak), plus the peak anonymous and file-backed (mmap) parts."""

    def __init__(self, every_s: float = 0.1) -> None:
        self.peak = {"RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)
        self._thread.start()

    @staticmethod
    def _status() -> dict[str, int]:
        out = {}
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0]) // 1024  # MB
        return out

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            st = self._status()
            for key in self.peak:
                self.peak[key] = max(self.peak[key], st.get(key, 0))

    def result(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {"peak_rss_mb": self._status()["VmHWM"], "peak_anon_mb": self.peak["RssAnon"],
                "peak_file_mb": self.peak["RssFile"]}  # fmt: skip


def build(backend: str, cfg: Synth, folder: str, optimize: bool):
    """Stream the pages into a store; return it (still open) and the build numbers."""
    from retrievers.store import EdgeStore, QdrantServerStore

    rss = RssSampler()
    t0 = time.perf_counter()
    store = EdgeStore(folder) if backend == "edge" else QdrantServerStore(location=":memory:")
    store.ensure_collection(cfg.spec())
    gen_s = 0.0
    for index in chunk_indices(cfg):
        g = time.perf_counter()
        points = points_of_chunk(cfg, index)
        gen_s += time.perf_counter() - g
        store.upsert(COLLECTION, points)
    upsert_s = time.perf_counter() - t0 - gen_s
    opt_s = 0.0
    if optimize and backend == "edge":
        o = time.perf_counter()
        store.optimize(COLLECTION)
        opt_s = time.perf_counter() - o
    if backend == "edge":
        store.close()  # durable on disk: the build ends here
    total = time.perf_counter() - t0 - gen_s
    numbers = {"build_s": total, "upsert_s": upsert_s, "optimize_s": opt_s, "gen_s": gen_s, **rss.result()}
    return store, numbers


def run_queries(store, queries: list, prefetches: list[int], truth: list) -> dict:
    """Time rescored queries (mean prefetch -> MaxSim) per prefetch size; recall@10 vs exact."""
    out = {}
    for prefetch in prefetches:
        times, recalls = [], []
        for i, q in enumerate(queries):
            t = time.perf_counter()
            hits = store.rescored(
                COLLECTION, VectorQuery("mean", unit(q.mean(0)), prefetch), VectorQuery("colpali", q), 10
            )
            dt = time.perf_counter() - t
            if i >= 2 or len(queries) <= 2:  # first two warm the caches
                times.append(dt)
            recalls.append(len({h.id for h in hits} & set(truth[i])) / 10)
        out[str(prefetch)] = {"p50_ms": 1000 * float(np.median(times)), "p95_ms": 1000 * float(np.percentile(times, 95)),
                              "recall10": float(np.mean(recalls))}  # fmt: skip
    return out


def _child(args: argparse.Namespace) -> None:
    cfg = Synth(**json.loads(args.child_cfg))
    prefetches = [int(x) for x in args.prefetch.split(",")]
    data = json.loads(Path(args.child_queries).read_text()) if args.child_queries else None
    if args.child == "build":
        _, out = build(args.backend, cfg, args.folder, args.optimize)
    elif args.child == "local":  # in memory: build and query in one process
        store, out = build(args.backend, cfg, "", False)
        queries = [np.asarray(q, dtype=np.float32) for q in data["queries"]]
        out["queries"] = run_queries(store, queries, prefetches, data["truth"])
        store.close()
    else:
        from retrievers.store import EdgeStore

        store = EdgeStore(args.folder)
        t = time.perf_counter()
        store.count(COLLECTION)
        queries = [np.asarray(q, dtype=np.float32) for q in data["queries"]]
        out = {"open_s": time.perf_counter() - t, "queries": run_queries(store, queries, prefetches, data["truth"])}
        store.close()
    print("RESULT " + json.dumps(out), flush=True)

def _spawn(mode: str, backend: str, cfg: Synth, folder: str, args: argparse.Namespace, extra: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--backend", backend, "--child-cfg", json.dumps(asdict(cfg)),
           "--folder", folder, "--prefetch", args.prefetch, *extra]  # fmt: skip
    if args.optimize:
        cmd.append("--optimize")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{mode} {backend} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk (st_blocks, so sparse/preallocated files count as written)."""
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


def _write_queries(cfg: Synth, count: int, target: Path, cache: Path | None) -> float:
    """Queries and their exact top-10 (cached by data config: the truth is the slow part)."""
    data = {k: v for k, v in asdict(cfg).items() if k != "datatype"}  # the truth is over the float data
    key = hashlib.sha1(json.dumps([data, count]).encode()).hexdigest()[:16]
    cached = cache / f"truth_{key}.json" if cache else None
    if cached is not None and cached.is_file():
        shutil.copy(cached, target)
        queries = [np.asarray(q, dtype=np.float32) for q in json.loads(target.read_text())["queries"][:3]]
        return exact_maxsim(cfg, queries)[1]  # the numpy peer is timed in this run too
    queries = make_queries(cfg, count)
    truth, numpy_ms = exact_maxsim(cfg, queries)
    target.write_text(json.dumps({"queries": [q.tolist() for q in queries], "truth": truth, "numpy_ms": numpy_ms}))
    if cached is not None:
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy(target, cached)
    return numpy_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--tokens", type=int, default=64, help="pooled vectors per page")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--prefetch", default="100,300,1000", help="mean-vector candidates rescored by MaxSim (list)")
    ap.add_argument("--local-cap", type=int, default=10_000, help="largest size run through qdrant-client local mode")
    ap.add_argument("--local-queries", type=int, default=10)
    ap.add_argument("--optimize", action="store_true", help="run the edge optimizer after the upserts")
    ap.add_argument("--datatype", default=Synth.datatype, choices=["float16", "turbo8", "turbo4"],
                    help="storage datatype of the rescoring multivectors")
    ap.add_argument("--full-tokens", action="store_true", help="generate 1,030 tokens per page, then pool")
    ap.add_argument("--page-spread", type=float, default=Synth.page_spread, help="page offset from its topic")
    ap.add_argument("--block-spread", type=float, default=Synth.block_spread, help="spread of blocks around a page")
    ap.add_argument("--cache", type=Path, default=None, help="reuse queries + exact truth from this folder")
    ap.add_argument("--keep", type=Path, default=None, help="build the edge store here and keep it")
    ap.add_argument("--child", choices=["build", "query", "local"], help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="edge", help=argparse.SUPPRESS)
    ap.add_argument("--child-cfg", help=argparse.SUPPRESS)
    ap.add_argument("--child-queries", help=argparse.SUPPRESS)
    ap.add_argument("--folder", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _child(args)
    for name in ("pages", "tokens", "queries", "local_cap", "local_queries"):
        if getattr(args, name) < 1:
            why = " (qdrant-client local mode always runs beside edge)" if name.startswith("local") else ""
            ap.error(f"--{name.replace('_', '-')} must be >= 1{why}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = Synth(pages=args.pages, tokens=args.tokens, full_tokens=args.full_tokens,
                page_spread=args.page_spread, block_spread=args.block_spread, datatype=args.datatype)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="bench_store_"))
    folder = args.keep or work / "edge"
    if folder.exists():
        shutil.rmtree(folder)

    t = time.perf_counter()
    numpy_ms = _write_queries(cfg, args.queries, work / "queries.json", args.cache)
    logger.info("queries + exact MaxSim truth: %.1f s; one exact query %.0f ms", time.perf_counter() - t, numpy_ms)
    edge_build = _spawn("build", "edge", cfg, str(folder), args, [])
    disk = {"total": disk_bytes(folder), "wal": sum(disk_bytes(w) for w in folder.glob("*/shard/wal"))}
    logger.info("edge build: %s, disk %s", edge_build, disk)
    edge_q = _spawn("query", "edge", cfg, str(folder), args, ["--child-queries", str(work / "queries.json")])
    logger.info("edge queries: %s", edge_q)

    local_cfg = replace(cfg, pages=min(cfg.pages, args.local_cap))
    local_numpy_ms = _write_queries(local_cfg, args.local_queries, work / "queries_local.json", args.cache)
    local = _spawn("local", "qdrant-local", local_cfg, "", args, ["--child-queries", str(work / "queries_local.json")])
    logger.info("qdrant-client local mode (%d pages): %s", local_cfg.pages, local)

    _report(cfg, args, edge_build, edge_q, disk, local_cfg.pages, local, numpy_ms, local_numpy_ms)
    shutil.rmtree(work, ignore_errors=True)  # a --keep store lives outside it


def _report(cfg, args, eb, eq, disk, local_pages, local, numpy_ms, local_numpy_ms) -> None:
    kib = disk["total"] / cfg.pages / 1024
    seg_kib = (disk["total"] - disk["wal"]) / cfg.pages / 1024
    capped = local_pages < cfg.pages
    note = f" (capped at {local_pages:,} pages)" if capped else ""
    print()
    print(f"store benchmark: {cfg.pages:,} pages x {cfg.tokens} pooled x {cfg.dim}-d float16; optimize={args.optimize}; "
          f"full_tokens={cfg.full_tokens}; page_spread={cfg.page_spread}, block_spread={cfg.block_spread}")  # fmt: skip
    print(f"{'query (mean prefetch -> MaxSim)':34}{'edge p50 ms':>12}{'p95 ms':>9}{'recall@10':>11}"
          f"{'local p50 ms':>14}{'recall@10':>11}{'numpy/edge':>12}{'local/edge':>12}")  # fmt: skip
    for pf, q in eq["queries"].items():
        lq = local["queries"][pf]
        print(f"{'prefetch ' + pf:34}{q['p50_ms']:>12.2f}{q['p95_ms']:>9.2f}{q['recall10']:>11.3f}"
              f"{lq['p50_ms']:>14.1f}{lq['recall10']:>11.3f}{numpy_ms / q['p50_ms']:>11.0f}x"
              f"{lq['p50_ms'] / q['p50_ms']:>11.0f}x")  # fmt: skip
    print(f"{'numpy exact MaxSim (1 query)':34}{numpy_ms:>12.1f}{'':>9}{1.0:>11.3f}{local_numpy_ms:>14.1f}")
    print(f"qdrant-client local mode{note}: build {local['build_s']:.1f} s, peak RSS {local['peak_rss_mb']:.0f} MB, "
          f"(anon {local['peak_anon_mb']:.0f}, mmap {local['peak_file_mb']:.0f}), "
          f"{local_pages / local['build_s']:.0f} pages/s (edge {cfg.pages / eb['build_s']:.0f} pages/s)")  # fmt: skip
    print(f"edge: build {eb['build_s']:.1f} s (upsert {eb['upsert_s']:.1f} s, optimize {eb['optimize_s']:.1f} s; "
          f"data generation {eb['gen_s']:.1f} s not counted), peak RSS {eb['peak_rss_mb']:.0f} MB "
          f"(anon {eb['peak_anon_mb']:.0f}, mmap {eb['peak_file_mb']:.0f}), "
          f"disk {kib:.1f} KiB/page ({seg_kib:.1f} without the WAL; raw float16 multivector "
          f"{cfg.tokens * cfg.dim * 2 / 1024:.1f}), open {eq['open_s']:.2f} s")  # fmt: skip
    best = next((pf for pf, q in eq["queries"].items() if q["recall10"] >= 0.99), list(eq["queries"])[-1])
    q = eq["queries"][best]
    targets = [(f"p50 <= 10 ms (prefetch {best})", q["p50_ms"] <= 10), ("recall@10 >= 0.99", q["recall10"] >= 0.99),
               ("<= 16 KiB/page", kib <= 16), ("build <= 120 s", eb["build_s"] <= 120),
               ("peak RSS <= 4 GB", eb["peak_rss_mb"] <= 4096)]  # fmt: skip
    print("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in targets))


if __name__ == "__main__":
    main()

"""Benchmark the late-interaction page store: edge vs qdrant-client local mode vs numpy.

Not a test. Run::

    .venv/bin/python bench/bench_store.py --pages 10000
    .venv/bin/python bench/bench_store.py --pages 100000 --local-cap 10000

Data: synthetic ColPali-shaped pages. A page is a 32x32 patch grid (+6 special tokens,
1,030 x 128 before pooling) cut into 64 blocks of 4x4 patches. Each page has a centroid
(its topic, one topic per 50 pages, plus a page offset); a content block (65%) is the
centroid plus a wide spread, a background block (35%) one of 8 shared directions. Pooling
is the group mean of each block (64 vectors per page). By default the pooled vectors are
generated directly (the mean of 16 unit-noise patches = block + noise/4); ``--full-tokens``
generates all 1,030 tokens per page and pools them (slower, statistically the same).
A query is 10 noisy content blocks of a random page plus 4 generic query tokens.

Ground truth: exact MaxSim (numpy, float32) over all pages' pooled float16 vectors. The store
runs mean-vector prefetch (``--prefetch`` candidates) -> MaxSim rescoring on the multivectors
stored as ``--datatype`` (default ``turbo8``: 8-bit TurboQuant codes, float query; ``float16``
is the exact-precision alternative at twice the disk). Build and peak RSS are measured in a
subprocess that streams the pages in.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrievers.base import CollectionSpec, Point, VectorQuery, VectorSpec  # noqa: E402

logger = logging.getLogger("bench_store")

CHUNK = 1000
COLLECTION = "bench_pages"


@dataclass(frozen=True)
class Synth:
    pages: int
    tokens: int = 64
    dim: int = 128
    topics: int = 0  # 0: one topic per 50 pages
    seed: int = 7
    full_tokens: bool = False
    page_spread: float = 0.5
    block_spread: float = 2.5
    background_share: float = 0.35
    datatype: str = "turbo8"  # storage of the pooled vectors (the data itself is float16)

    @property
    def n_topics(self) -> int:
        return self.topics or max(20, self.pages // 50)

    def spec(self) -> CollectionSpec:
        return CollectionSpec(
            COLLECTION,
            (
                VectorSpec("mean", "dense", self.dim, quantize=True),
                VectorSpec("colpali", "multi", self.dim, datatype=self.datatype),  # type: ignore[arg-type]
            ),
        )


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@functools.lru_cache(maxsize=2)
def _world(cfg: Synth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(cfg.seed)
    topics = _unit(rng.normal(size=(cfg.n_topics, cfg.dim))).astype(np.float32)
    background = _unit(rng.normal(size=(8, cfg.dim))).astype(np.float32)
    generic = _unit(rng.normal(size=(4, cfg.dim))).astype(np.float32)
    return topics, background, generic


def gen_chunk(cfg: Synth, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Pages ``index*CHUNK ...``: pooled multivectors (n, tokens, dim) float16 and a content mask.

    page centroid = topic + page offset; a content block = centroid + block spread;
    a background block = one of 8 shared directions; a pooled vector = block + patch noise / 4.
    """
    topics, background, _ = _world(cfg)
    n = min(CHUNK, cfg.pages - index * CHUNK)
    d = cfg.dim
    rng = np.random.default_rng([cfg.seed, index])
    centroid = _unit(topics[rng.integers(0, cfg.n_topics, size=n)] + cfg.page_spread * _noise(rng, (n, d)))
    content = rng.random(size=(n, cfg.tokens)) > cfg.background_share
    blocks = np.where(
        content[..., None],
        _unit(centroid[:, None, :] + cfg.block_spread * _noise(rng, (n, cfg.tokens, d))),
        background[rng.integers(0, 8, size=(n, cfg.tokens))],
    )
    if cfg.full_tokens:  # 1,024 patches (16 per block) + 6 special tokens, then group-mean pooling
        patches = _unit(blocks[:, :, None, :] + _noise(rng, (n, cfg.tokens, 16, d)))
        _special = rng.normal(size=(n, 6, d))  # generated like the model's, dropped by pooling
        pooled = _unit(patches.mean(axis=2))
    else:
        pooled = _unit(blocks + _noise(rng, blocks.shape) / 4)
    return pooled.astype(np.float16), content


def _noise(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Gaussian noise with unit expected norm per vector."""
    return rng.normal(size=shape).astype(np.float32) / np.sqrt(shape[-1])


def make_queries(cfg: Synth, count: int) -> list[np.ndarray]:
    _, _, generic = _world(cfg)
    rng = np.random.default_rng([cfg.seed, 999_999])
    pages = rng.integers(0, cfg.pages, size=count)
    noise = _noise(rng, (count, 10, cfg.dim))
    queries: list[np.ndarray] = [np.empty(0)] * count
    for index in sorted({int(p) // CHUNK for p in pages}):
        multi, content = gen_chunk(cfg, index)
        for k in np.flatnonzero(pages // CHUNK == index):
            j = int(pages[k]) % CHUNK
            toks = multi[j].astype(np.float32)[content[j]]
            pick = toks[rng.choice(len(toks), size=min(10, len(toks)), replace=False)]
            q = _unit(pick + 0.6 * noise[k, : len(pick)])
            queries[k] = np.concatenate([q, generic]).astype(np.float32)
    return queries


def point_id(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


def points_of_chunk(cfg: Synth, index: int) -> list[Point]:
    multi, _ = gen_chunk(cfg, index)
    start = index * CHUNK
    return [
        Point(point_id(start + j), {"mean": _unit(m.astype(np.float32).mean(0)), "colpali": m},
              {"doc_id": f"doc{(start + j) // 300}", "page": (start + j) % 300 + 1, "kind": "page"})
        for j, m in enumerate(multi)
    ]  # fmt: skip


def _chunks(cfg: Synth) -> range:
    return range((cfg.pages + CHUNK - 1) // CHUNK)


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
    for index in _chunks(cfg):
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
                COLLECTION, VectorQuery("mean", _unit(q.mean(0)), prefetch), VectorQuery("colpali", q), 10
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


def exact_maxsim(cfg: Synth, queries: list) -> tuple[list[list[str]], float]:
    """Exact top-10 by MaxSim over every page, and the p50 of one exact query (numpy peer).

    The peer holds all pooled vectors in RAM as float32 (the stored float16 values, upcast once).
    """
    docs = np.concatenate([gen_chunk(cfg, i)[0] for i in _chunks(cfg)]).astype(np.float32)
    flat = docs.reshape(-1, cfg.dim)

    def scores_of(q: np.ndarray) -> np.ndarray:
        out = np.empty(cfg.pages, dtype=np.float32)
        step = 4096  # pages per matmul, bounds the temporary
        for s in range(0, cfg.pages, step):
            e = min(cfg.pages, s + step)
            sim = flat[s * cfg.tokens : e * cfg.tokens] @ q.T  # (pages*tokens, qt)
            out[s:e] = sim.reshape(e - s, cfg.tokens, -1).max(axis=1).sum(axis=1)
        return out

    truth, times = [], []
    for i, q in enumerate(queries):
        t = time.perf_counter()
        row = scores_of(q)
        if i < 8:
            times.append(time.perf_counter() - t)
        truth.append([point_id(int(j)) for j in np.argsort(-row)[:10]])
    return truth, 1000 * float(np.median(times))


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

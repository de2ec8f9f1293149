"""Synthetic ColPali-shaped pages and queries for ``bench_store.py``, and their exact MaxSim truth.

A page is a 32x32 patch grid (+6 special tokens, 1,030 x 128 before pooling) cut into 64
blocks of 4x4 patches. Each page has a centroid
(its topic, one topic per 50 pages, plus a page offset); a content block (65%) is the
centroid plus a wide spread, a background block (35%) one of 8 shared directions. Pooling
is the group mean of each block (64 vectors per page). By default the pooled vectors are
generated directly (the mean of 16 unit-noise patches = block + noise/4); ``--full-tokens``
generates all 1,030 tokens per page and pools them (slower, statistically the same).
A query is 10 noisy content blocks of a random page plus 4 generic query tokens.

Ground truth: exact MaxSim (numpy, float32) over all pages' pooled float16 vectors.
"""

from __future__ import annotations

import functools
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrievers.base import CollectionSpec, Point, VectorSpec  # noqa: E402

CHUNK = 1000  # pages generated (and upserted) per step
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


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@functools.lru_cache(maxsize=2)
def _world(cfg: Synth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(cfg.seed)
    topics = unit(rng.normal(size=(cfg.n_topics, cfg.dim))).astype(np.float32)
    background = unit(rng.normal(size=(8, cfg.dim))).astype(np.float32)
    generic = unit(rng.normal(size=(4, cfg.dim))).astype(np.float32)
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
    centroid = unit(topics[rng.integers(0, cfg.n_topics, size=n)] + cfg.page_spread * _noise(rng, (n, d)))
    content = rng.random(size=(n, cfg.tokens)) > cfg.background_share
    blocks = np.where(
        content[..., None],
        unit(centroid[:, None, :] + cfg.block_spread * _noise(rng, (n, cfg.tokens, d))),
        background[rng.integers(0, 8, size=(n, cfg.tokens))],
    )
    if cfg.full_tokens:  # 1,024 patches (16 per block) + 6 special tokens, then group-mean pooling
        patches = unit(blocks[:, :, None, :] + _noise(rng, (n, cfg.tokens, 16, d)))
        _special = rng.normal(size=(n, 6, d))  # generated like the model's, dropped by pooling
        pooled = unit(patches.mean(axis=2))
    else:
        pooled = unit(blocks + _noise(rng, blocks.shape) / 4)
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
            q = unit(pick + 0.6 * noise[k, : len(pick)])
            queries[k] = np.concatenate([q, generic]).astype(np.float32)
    return queries


def point_id(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


def points_of_chunk(cfg: Synth, index: int) -> list[Point]:
    multi, _ = gen_chunk(cfg, index)
    start = index * CHUNK
    return [
        Point(point_id(start + j), {"mean": unit(m.astype(np.float32).mean(0)), "colpali": m},
              {"doc_id": f"doc{(start + j) // 300}", "page": (start + j) % 300 + 1, "kind": "page"})
        for j, m in enumerate(multi)
    ]  # fmt: skip


def chunk_indices(cfg: Synth) -> range:
    return range((cfg.pages + CHUNK - 1) // CHUNK)


def exact_maxsim(cfg: Synth, queries: list) -> tuple[list[list[str]], float]:
    """Exact top-10 by MaxSim over every page, and the p50 of one exact query (numpy peer).

    The peer holds all pooled vectors in RAM as float32 (the stored float16 values, upcast once).
    """
    docs = np.concatenate([gen_chunk(cfg, i)[0] for i in chunk_indices(cfg)]).astype(np.float32)
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

"""Pure scoring functions over numpy arrays: MaxSim, a prefetch mean vector, RRF fusion.

No model, no torch: these are the maths shared by the late-interaction embedder, the
rerankers and the search code. A multivector is a 2-D array ``(tokens, dim)``; its rows
are expected to be L2-normalised (as the ColPali family outputs them), so a dot product
is a cosine similarity.

MaxSim (ColBERT) of a query ``Q (q, d)`` and a document ``D (n, d)`` is
``sum_i max_j Q_i . D_j``: every query token picks its best document token. Unlike a
zero-padded batch scorer, these functions never see padding rows, so a document whose
every token is anti-correlated with a query token still scores exactly (negative).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

import numpy as np

from rag.vectors import l2_normalize

__all__ = ["maxsim", "maxsim_batch", "mean_vector", "rrf"]

K = TypeVar("K", bound=Hashable)


def _as_multivector(x: object, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (tokens, dim), got shape {arr.shape}")
    return arr


def maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    """MaxSim of one query ``(q, d)`` against one document ``(n, d)``.

    An empty query scores 0.0; an empty document with a non-empty query raises
    ``ValueError`` (there is no best token to pick).
    """
    q = _as_multivector(query, "query")
    dm = _as_multivector(doc, "doc")
    if q.shape[1] != dm.shape[1]:
        raise ValueError(f"query dim {q.shape[1]} != doc dim {dm.shape[1]}")
    if q.shape[0] == 0:
        return 0.0
    if dm.shape[0] == 0:
        raise ValueError("doc has no vectors")
    return float((q @ dm.T).max(axis=1).sum(dtype=np.float64))


def maxsim_batch(query: np.ndarray, docs: Sequence[np.ndarray]) -> np.ndarray:
    """MaxSim of one query against each document; returns float32 scores ``(len(docs),)``.

    Documents may have different token counts. Computed with one matrix product over the
    concatenated documents, then a per-document max (``np.maximum.reduceat``).
    """
    q = _as_multivector(query, "query")
    if len(docs) == 0:
        return np.zeros(0, dtype=np.float32)
    mats = [_as_multivector(d, f"docs[{i}]") for i, d in enumerate(docs)]
    for i, m in enumerate(mats):
        if m.shape[1] != q.shape[1]:
            raise ValueError(f"query dim {q.shape[1]} != docs[{i}] dim {m.shape[1]}")
        if m.shape[0] == 0 and q.shape[0] > 0:
            raise ValueError(f"docs[{i}] has no vectors")
    if q.shape[0] == 0:
        return np.zeros(len(mats), dtype=np.float32)
    lengths = np.fromiter((m.shape[0] for m in mats), dtype=np.int64, count=len(mats))
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    sims = q @ np.concatenate(mats, axis=0).T  # (q, total)
    best = np.maximum.reduceat(sims, starts, axis=1)  # (q, n_docs)
    return best.sum(axis=0, dtype=np.float64).astype(np.float32)


def mean_vector(multi: np.ndarray) -> np.ndarray:
    """One unit-length float32 vector ``(dim,)`` summarising a multivector, for prefetch.

    The mean of the rows, L2-normalised. A multivector whose mean is zero (or has no
    rows) gives the zero vector rather than NaNs.
    """
    m = _as_multivector(multi, "multi")
    if m.shape[0] == 0:
        return np.zeros(m.shape[1], dtype=np.float32)
    mean = m.mean(axis=0, dtype=np.float64)
    if not np.all(np.isfinite(mean)):
        return np.zeros(m.shape[1], dtype=np.float32)
    return l2_normalize(mean)


def rrf(
    rankings: Iterable[Sequence[K]],
    k: int = 60,
    weights: Sequence[float] | None = None,
) -> list[tuple[K, float]]:
    """Reciprocal rank fusion of ranked lists (best first).

    Each item scores ``sum_lists weight / (k + rank)`` with ``rank`` 1-based; an item
    absent from a list gets nothing from it; a repeat within one list counts only at its
    best rank. Returns ``(item, score)`` best first; ties keep first-seen order.
    """
    if k < 0:
        raise ValueError(f"rrf k must be >= 0, got {k}")
    lists = [list(r) for r in rankings]
    if weights is not None and len(weights) != len(lists):
        raise ValueError(f"rrf got {len(lists)} rankings but {len(weights)} weights")
    scores: dict[K, float] = {}
    for li, ranking in enumerate(lists):
        w = 1.0 if weights is None else float(weights[li])
        seen: set[K] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + w / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))

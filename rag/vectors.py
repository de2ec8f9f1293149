"""Vector helpers every stage shares (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["l2_normalize"]


def l2_normalize(vectors: Any, eps: float = 1e-12) -> np.ndarray:
    """Vectors scaled to unit L2 norm along the last axis, as C-contiguous float32.

    A single vector ``(d,)`` or rows ``(..., d)``; a zero vector stays zero (its norm is
    clamped to ``eps``), so no NaN ever comes out.
    """
    arr = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    return np.ascontiguousarray(arr / np.maximum(norms, eps), dtype=np.float32)

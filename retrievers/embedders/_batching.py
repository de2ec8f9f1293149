"""Batching and progress bars for the encoders and rerankers (standard library only)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

__all__ = ["batched", "wants_progress", "progress"]

T = TypeVar("T")


def batched(seq: Sequence[T] | Iterable[T], n: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``n`` items (the last one may be shorter)."""
    if n < 1:
        raise ValueError(f"batch size must be >= 1, got {n}")
    batch: list[T] = []
    for item in seq:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def wants_progress(show_progress: bool | None, logger: logging.Logger) -> bool:
    """``None`` follows the log level: a bar when the logger is at INFO or more verbose."""
    if show_progress is not None:
        return bool(show_progress)
    return logger.getEffectiveLevel() <= logging.INFO


def progress(
    iterable: Iterable[T],
    *,
    show: bool,
    total: int | None = None,
    desc: str = "",
    unit: str = "batch",
) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar when ``show``; otherwise return it unchanged."""
    if not show:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # deliberate fallback: a progress bar is cosmetic, so work on without tqdm
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False)

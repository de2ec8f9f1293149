"""The router's roles and shared helpers: protocols, route building, :class:`AllRouter`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from rag.errors import ConfigError
from rag.types import CORPORA, Route

__all__ = ["Router", "Completer", "AllRouter", "check_top_k", "make_route", "describe_weights"]


@runtime_checkable
class Router(Protocol):
    """Maps a question to the corpora to search."""

    name: str

    def route(self, question: str) -> Route: ...


@runtime_checkable
class Completer(Protocol):
    """Anything that completes a prompt with text (the generators satisfy it duck-typed)."""

    def complete(self, prompt: str) -> str: ...


def check_top_k(top_k: int) -> int:
    if not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"router top_k must be a positive integer, got {top_k!r}")
    return top_k


def make_route(weights: Mapping[str, float], top_k: int, reason: str, router: str) -> Route:
    """Normalise ``weights`` to sum 1, drop zero weights, list best first (ties in CORPORA order)."""
    kept = {c: float(weights.get(c, 0.0)) for c in CORPORA if weights.get(c, 0.0) > 0}
    total = sum(kept.values())
    if total <= 0:
        raise ConfigError(f"router {router!r} produced no positive weight: {dict(weights)}")
    order = sorted(kept, key=lambda c: (-kept[c], CORPORA.index(c)))
    return Route(
        corpora=tuple(order),  # type: ignore[arg-type]
        weights=tuple(round(kept[c] / total, 6) for c in order),
        top_k=top_k,
        reason=reason,
        router=router,
    )


def describe_weights(weights: Mapping[str, float]) -> str:
    total = sum(weights.values()) or 1.0
    return ", ".join(f"{c} {weights[c] / total:.2f}" for c in sorted(weights, key=lambda c: -weights[c]))


class AllRouter:
    """Every corpus with the same weight."""

    name = "all"

    def __init__(self, top_k: int = 10) -> None:
        self.top_k = check_top_k(top_k)

    def load(self) -> None:
        """Nothing to load."""

    def route(self, question: str) -> Route:
        return make_route({c: 1.0 for c in CORPORA}, self.top_k, "all corpora, equal weights", self.name)

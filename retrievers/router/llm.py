"""LLM routing: a constrained JSON answer from any completer, validated, with a fallback."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from rag.errors import ConfigError, MmragError
from rag.types import CORPORA, Route
from retrievers.router._base import Completer, Router, check_top_k, describe_weights, make_route
from retrievers.router.rules import RulesRouter

__all__ = ["LLM_PROMPT", "LLMRouter", "llm_router"]

logger = logging.getLogger(__name__)


LLM_PROMPT = """You route questions over a document collection to search indexes.
Indexes:
- "text": the prose of the documents, split into passages.
- "figures": figures, charts, diagrams and tables, with their captions and the text inside them.
- "pages": whole page images, for layout, screenshots, scans and anything visual.
Choose the indexes that can answer the question. Reply with JSON only, exactly like:
{{"corpora": ["text"], "reason": "one short sentence"}}
Question: {question}
JSON:"""

_DECODER = json.JSONDecoder()


class LLMRouter:
    """Ask a language model which corpora to search; validate; fall back on anything odd.

    The answer must be a JSON object with ``corpora`` (a non-empty list of known corpus
    names) and ``reason`` (a string); text around the first JSON object is ignored. The
    chosen corpora share ``1 - floor * unchosen``; the others keep ``floor`` each
    (``exclusive=True`` drops them). ``prompt`` is a ``str.format`` template with the
    single field ``{question}``. A failed call (an mmrag error such as ``GeneratorError``,
    or an ``OSError`` such as a timeout) also falls back; other exceptions propagate.
    """

    name = "llm"

    def __init__(
        self,
        completer: Completer,
        fallback: Router,
        top_k: int = 10,
        *,
        exclusive: bool = False,
        floor: float = 0.05,
        prompt: str = LLM_PROMPT,
    ) -> None:
        if not callable(getattr(completer, "complete", None)):
            raise ConfigError(f"LLMRouter needs an object with complete(prompt) -> str, got {type(completer).__name__}")
        if not callable(getattr(fallback, "route", None)):
            raise ConfigError(f"LLMRouter fallback must be a Router, got {type(fallback).__name__}")
        if not 0 <= floor < 1 / len(CORPORA):
            raise ConfigError(f"LLMRouter floor must be within [0, {1 / len(CORPORA):.3f}), got {floor}")
        if "{question}" not in prompt:
            raise ConfigError("LLMRouter prompt must contain the {question} placeholder")
        try:
            prompt.format(question="?")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"LLMRouter prompt is a str.format template with one field, {{question}}; write literal braces "
                f"as {{{{ and }}}} ({type(exc).__name__}: {exc})"
            ) from exc
        self.completer = completer
        self.fallback = fallback
        self.top_k = check_top_k(top_k)
        self.exclusive = bool(exclusive)
        self.floor = float(floor)
        self.prompt = prompt

    def load(self) -> None:
        """Load the fallback router (the completer manages its own model)."""
        load = getattr(self.fallback, "load", None)
        if callable(load):
            load()

    def parse(self, reply: str) -> tuple[list[str], str]:
        """Validate a reply; raise ``ValueError`` saying what is wrong with it."""
        start = reply.find("{")
        if start < 0:
            raise ValueError("no JSON object in the reply")
        data, _end = _DECODER.raw_decode(reply, start)  # the first object; fences and chatter around it are fine
        if not isinstance(data, dict):
            raise ValueError("the JSON is not an object")
        corpora = data.get("corpora")
        if not isinstance(corpora, list) or not corpora or not all(isinstance(c, str) for c in corpora):
            raise ValueError("'corpora' must be a non-empty list of strings")
        names = list(dict.fromkeys(c.strip().lower() for c in corpora))
        unknown = [c for c in names if c not in CORPORA]
        if unknown:
            raise ValueError(f"unknown corpora {unknown} (known: {list(CORPORA)})")
        reason = data.get("reason", "")
        if not isinstance(reason, str):
            raise ValueError("'reason' must be a string")
        return names, reason.strip()

    def route(self, question: str) -> Route:
        try:
            reply = self.completer.complete(self.prompt.format(question=question))
        except (MmragError, OSError) as exc:
            return self._fall_back(question, f"the model call failed ({type(exc).__name__}: {exc})")
        if not isinstance(reply, str):
            return self._fall_back(question, f"the model returned {type(reply).__name__}, not text")
        try:
            chosen, why = self.parse(reply)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return self._fall_back(question, f"unusable model reply ({exc}): {reply[:120]!r}")
        others = [c for c in CORPORA if c not in chosen]
        floor = 0.0 if self.exclusive else self.floor
        share = (1.0 - floor * len(others)) / len(chosen)
        weights = {**{c: share for c in chosen}, **{c: floor for c in others}}
        mix = describe_weights({c: w for c, w in weights.items() if w > 0})
        reason = f"model chose {', '.join(chosen)}: {why or 'no reason given'} -> {mix}"
        return make_route(weights, self.top_k, reason, self.name)

    def _fall_back(self, question: str, what: str) -> Route:
        logger.warning("LLMRouter falling back to %s: %s", getattr(self.fallback, "name", "fallback"), what)
        route = self.fallback.route(question)
        return replace(route, reason=f"LLM routing fell back to {route.router}: {what}; {route.reason}")


def llm_router(
    *,
    completer: Completer,
    fallback: Router | None = None,
    top_k: int = 10,
    exclusive: bool = False,
    floor: float = 0.05,
    prompt: str = LLM_PROMPT,
) -> LLMRouter:
    """The ``llm`` router kind. ``fallback`` defaults to the rules router, the default router
    (the hybrid one was measured below ``all`` on the blind set, BENCHMARKS.md)."""
    if fallback is None:
        fallback = RulesRouter(top_k)
    return LLMRouter(completer, fallback, top_k, exclusive=exclusive, floor=floor, prompt=prompt)

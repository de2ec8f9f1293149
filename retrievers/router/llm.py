"""LLM routing: a constrained JSON answer from any completer, validated, with a fallback."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace

from rag.errors import ConfigError, MmragError
from rag.types import CORPORA, Route
from retrievers.router._base import Completer, Router, check_top_k, describe_weights, make_route

__all__ = ["LLM_PROMPT", "LLMRouter"]

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

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class LLMRouter:
    """Ask a language model which corpora to search; validate; fall back on anything odd.

    The answer must be a JSON object with ``corpora`` (a non-empty list of known corpus
    names) and ``reason`` (a string). The chosen corpora share ``1 - floor * unchosen``;
    the others keep ``floor`` each (``exclusive=True`` drops them).
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
        self.completer = completer
        self.fallback = fallback
        self.top_k = check_top_k(top_k)
        self.exclusive = bool(exclusive)
        self.floor = float(floor)
        self.prompt = prompt

    def parse(self, reply: str) -> tuple[list[str], str]:
        """Validate a reply; raise ``ValueError`` saying what is wrong with it."""
        match = _JSON_OBJECT.search(reply or "")
        if match is None:
            raise ValueError("no JSON object in the reply")
        data = json.loads(match.group(0))
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
        try:
            chosen, why = self.parse(reply)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return self._fall_back(question, f"unusable model reply ({exc}): {reply[:120]!r}")
        others = [c for c in CORPORA if c not in chosen]
        floor = 0.0 if self.exclusive else self.floor
        share = (1.0 - floor * len(others)) / len(chosen)
        weights = {**{c: share for c in chosen}, **{c: floor for c in others}}
        reason = f"model chose {', '.join(chosen)}: {why or 'no reason given'} -> {describe_weights({c: w for c, w in weights.items() if w > 0})}"
        return make_route(weights, self.top_k, reason, self.name)

    def _fall_back(self, question: str, what: str) -> Route:
        logger.warning("LLMRouter falling back to %s: %s", getattr(self.fallback, "name", "fallback"), what)
        route = self.fallback.route(question)
        return replace(route, reason=f"LLM routing fell back to {route.router}: {what}; {route.reason}")

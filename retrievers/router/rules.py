"""Keyword/pattern routing: a table of cues (data) and a weight profile per intent."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rag.errors import ConfigError
from rag.types import CORPORA, Route
from retrievers.router._base import check_top_k, describe_weights, make_route

__all__ = ["Cue", "CUES", "PROFILES", "RulesRouter"]


@dataclass(frozen=True)
class Cue:
    """One pattern that signals an intent (``figure`` or ``table``)."""

    intent: str
    label: str
    pattern: str


def _words(intent: str, words: str) -> tuple[Cue, ...]:
    return tuple(Cue(intent, w, rf"\b{re.escape(w)}s?\b") for w in words.split())


#: The cue table. Labels are what the reason shows; patterns are case-insensitive regexes.
CUES: tuple[Cue, ...] = (
    *_words(
        "figure",
        "figure chart plot graph diagram screenshot image picture photo photograph illustration "
        "legend axis axes bar histogram curve drawing schematic map visual visualization sketch "
        "pie scatter heatmap icon logo flowchart cartoon cross-section infographic slide",
    ),
    Cue("figure", "fig.", r"\bfigs?\.\s*\d*"),
    Cue("figure", "drawn", r"\bdrawn\b"),
    Cue("figure", "shown", r"\b(?:shown|depicted|illustrated|pictured)\b"),
    Cue("figure", "labelled", r"\blabell?ed\b"),
    Cue("figure", "colour", r"\b(?:colou?r|red|blue|green|yellow|orange|purple|dashed|dotted)\b"),
    Cue("figure", "x-/y-axis", r"\b[xy]-?axis\b"),
    *_words("table", "table row column cell spreadsheet tabular entry entries infobox"),
    Cue("table", "how many", r"\bhow (?:many|much)\b"),
    Cue("table", "which ... most", r"\bwhich\b.*\b(?:most|least|highest|lowest|largest|smallest|best|worst)\b"),
    Cue("table", "superlative", r"\b(?:maximum|minimum|average|mean|median|total|sum|percentage|rate)\b"),
    Cue("table", "number with unit",
        r"\d[\d.,]*(?:\s*%|\s*(?:percent|kwh|kw|mw|gwh|mah|ma|hz|khz|mhz|ms|gb|mb|kg|km|cm|mm|usd|eur|"
        r"years?|months?|hours?|minutes?)\b|(?:v|a|w|s|m|g)\b)"),
    Cue("table", "currency", r"[$€£]\s*\d"),
    Cue("table", "percent", r"%|\bper ?cent\b"),
)

#: Intent -> (weights over every corpus, the corpora kept when ``exclusive``).
PROFILES: dict[str, tuple[dict[str, float], tuple[str, ...]]] = {
    "figure": ({"figures": 0.45, "pages": 0.40, "text": 0.15}, ("figures", "pages")),
    "table": ({"figures": 0.45, "text": 0.40, "pages": 0.15}, ("figures", "text")),
    "text": ({"text": 0.60, "pages": 0.30, "figures": 0.10}, ("text", "pages")),
}


class RulesRouter:
    """Keyword/pattern routing from the :data:`CUES` table and :data:`PROFILES` weights.

    With cues of both intents the profiles are mixed in proportion to the number of cues
    matched. ``exclusive=True`` drops the corpora outside the matched intents' core set.
    """

    name = "rules"

    def __init__(
        self,
        top_k: int = 10,
        *,
        exclusive: bool = False,
        cues: Sequence[Cue] = CUES,
        profiles: Mapping[str, tuple[Mapping[str, float], Sequence[str]]] | None = None,
    ) -> None:
        self.top_k = check_top_k(top_k)
        self.exclusive = bool(exclusive)
        self.profiles = dict(PROFILES if profiles is None else profiles)
        if "text" not in self.profiles:
            raise ConfigError("RulesRouter profiles need a 'text' entry (the no-cue default)")
        unknown = sorted({c.intent for c in cues} - set(self.profiles))
        if unknown:
            raise ConfigError(
                f"RulesRouter cues name intents without a profile: {unknown}; profiles: {sorted(self.profiles)}"
            )
        for intent, (weights, _core) in self.profiles.items():
            bad = sorted(set(weights) - set(CORPORA))
            if bad:
                raise ConfigError(f"RulesRouter profile {intent!r} names unknown corpora {bad}; known: {list(CORPORA)}")
        self._cues = [(c, re.compile(c.pattern, re.IGNORECASE)) for c in cues]

    def load(self) -> None:
        """Nothing to load (the patterns compile in the constructor)."""

    def matches(self, question: str) -> dict[str, list[str]]:
        """Intent -> labels of the cues found in ``question`` (table order)."""
        found: dict[str, list[str]] = {}
        for cue, rx in self._cues:
            if rx.search(question) and cue.label not in found.get(cue.intent, []):
                found.setdefault(cue.intent, []).append(cue.label)
        return found

    def route(self, question: str) -> Route:
        found = self.matches(question)
        counts = {intent: len(labels) for intent, labels in found.items()} or {"text": 1}
        total = sum(counts.values())
        weights = {c: 0.0 for c in CORPORA}
        for intent, n in counts.items():
            for corpus, w in self.profiles[intent][0].items():
                weights[corpus] += w * n / total
        if self.exclusive:
            core = {c for intent in counts for c in self.profiles[intent][1]}
            weights = {c: w for c, w in weights.items() if c in core}
        if found:
            cues = "; ".join(f"{intent} cues: {', '.join(repr(x) for x in labels)}" for intent, labels in found.items())
        else:
            cues = "no figure or table cues: text and page search"
        reason = f"{cues} -> {describe_weights({c: w for c, w in weights.items() if w > 0})}"
        return make_route(weights, self.top_k, reason, self.name)

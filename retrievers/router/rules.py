"""Keyword/pattern routing: a table of cues (data) and a weight profile per intent."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rag.errors import ConfigError
from rag.types import CORPORA, Route
from retrievers.router._base import check_top_k, describe_weights, make_route

__all__ = ["Cue", "CUES", "PROFILES", "SHIFT", "WORD", "RulesRouter"]


@dataclass(frozen=True)
class Cue:
    """One pattern that signals an intent (``figure`` or ``table``).

    ``strength`` is how sure a match makes the router: 1 for a phrase that points at a
    figure or a table ("in the chart", "Figure 6", "as drawn"), :data:`WORD` for a word that
    ordinary questions use too ("picture" in "load a picture file", "colour", "table" in
    "read.table", "how many").
    """

    intent: str
    label: str
    pattern: str
    strength: float = 1.0


#: The strength of a bare cue word: four of them count as one phrase.
WORD = 0.25

_VISUALS = (
    "figure chart plot graph diagram screenshot image picture photo photograph illustration legend axis axes "
    "histogram curve drawing schematic map visual visualization sketch heatmap icon logo flowchart cartoon "
    "cross-section infographic slide"
)
_TABLES = "table spreadsheet infobox"
#: Words that make the next noun phrase a particular one: "the chart", "the paper's speedup chart".
_DETERMINER = r"\b(?:the|this|that|these|those|which|each)\s+(?:[\w'’-]+\s+){0,3}?"


def _words(intent: str, words: str, strength: float = WORD) -> tuple[Cue, ...]:
    return tuple(Cue(intent, w, rf"\b{re.escape(w)}s?\b", strength) for w in words.split())


def _nouns(words: str) -> str:
    return "(?:" + "|".join(re.escape(w) for w in words.split()) + ")s?\\b"


#: The cue table. Labels are what the reason shows; patterns are case-insensitive regexes.
#: Phrases that point at a figure or table come first and count fully; bare words count
#: :data:`WORD` each, so a cue word inside an ordinary question only leans the route.
CUES: tuple[Cue, ...] = (
    Cue("figure", "fig. N", r"\bfig(?:ure)?s?\.?\s*\d+"),
    Cue("figure", "the figure", _DETERMINER + _nouns(_VISUALS)),
    Cue("figure", "shown", r"\b(?:shown|depicted|illustrated|pictured|drawn|plotted)\b"),
    Cue("figure", "labelled", r"\blabell?ed\b"),
    Cue("figure", "x-/y-axis", r"\b[xy]-?axis\b"),
    *_words("figure", _VISUALS + " bar pie scatter"),
    Cue("figure", "colour", r"\b(?:colou?r|red|blue|green|yellow|orange|purple|dashed|dotted)\b", WORD),
    Cue("table", "table N", r"\btables?\s*\d+"),
    Cue("table", "the table", _DETERMINER + _nouns(_TABLES)),
    *_words("table", _TABLES + " row column cell tabular entry entries"),
    Cue("table", "how many", r"\bhow (?:many|much)\b", WORD),
    Cue("table", "which ... most", r"\bwhich\b.*\b(?:most|least|highest|lowest|largest|smallest|best|worst)\b", WORD),
    Cue("table", "superlative", r"\b(?:maximum|minimum|average|mean|median|total|sum|percentage|rate)\b", WORD),
    Cue("table", "number with unit",
        r"\d[\d.,]*(?:\s*%|\s*(?:percent|kwh|kw|mw|gwh|mah|ma|hz|khz|mhz|ms|gb|mb|kg|km|cm|mm|usd|eur|"
        r"years?|months?|hours?|minutes?)\b|(?:v|a|w|s|m|g)\b)", WORD),
    Cue("table", "currency", r"[$€£]\s*\d", WORD),
    Cue("table", "percent", r"%|\bper ?cent\b", WORD),
)

#: How far a route moves from equal weights toward its profiles (see :class:`RulesRouter`).
SHIFT = 0.5
#: How much the absence of any cue counts as a cue for the ``text`` profile. 0: a question
#: without cues searches every corpus with equal weights (measured: leaning plain questions
#: toward text cost table answers found in the figures corpus their first rank).
PLAIN = 0.0

#: Intent -> (weights over every corpus, the corpora kept when ``exclusive``).
PROFILES: dict[str, tuple[dict[str, float], tuple[str, ...]]] = {
    "figure": ({"figures": 0.45, "pages": 0.40, "text": 0.15}, ("figures", "pages")),
    "table": ({"figures": 0.45, "text": 0.40, "pages": 0.15}, ("figures", "text")),
    "text": ({"text": 0.60, "pages": 0.30, "figures": 0.10}, ("text", "pages")),
}


class RulesRouter:
    """Keyword/pattern routing from the :data:`CUES` table and :data:`PROFILES` weights.

    Each matched cue adds its ``strength`` to its intent; ``plain`` times whatever is left of
    a total of 1 goes to the ``text`` profile (default 0: no cue, no lean). The profiles, mixed in those
    proportions, say which way to lean; ``shift`` says how far the weights move from equal
    toward them (0: every corpus equal, 1: the profiles as they are). So a phrase that points
    at a figure decides the direction, a cue word inside an ordinary question ("load a
    picture file") only tilts it, and no corpus is ever weighted far below the others.
    ``exclusive=True`` drops the corpora outside the matched intents' core sets.
    """

    name = "rules"

    def __init__(
        self,
        top_k: int = 10,
        *,
        exclusive: bool = False,
        cues: Sequence[Cue] = CUES,
        profiles: Mapping[str, tuple[Mapping[str, float], Sequence[str]]] | None = None,
        shift: float = SHIFT,
        plain: float = PLAIN,
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
        weak = [c.label for c in cues if not c.strength > 0]
        if weak:
            raise ConfigError(f"RulesRouter cue strengths must be > 0; cues {weak} have none")
        for intent, (weights, _core) in self.profiles.items():
            bad = sorted(set(weights) - set(CORPORA))
            if bad:
                raise ConfigError(f"RulesRouter profile {intent!r} names unknown corpora {bad}; known: {list(CORPORA)}")
        if not 0 <= shift <= 1:
            raise ConfigError(f"RulesRouter shift must be within [0, 1] (0: equal weights, 1: the profiles), got {shift!r}")
        self.shift = float(shift)
        if not 0 <= plain <= 1:
            raise ConfigError(f"RulesRouter plain must be within [0, 1] (the weight of 'no cue' as a text cue), got {plain!r}")
        self.plain = float(plain)
        self._cues = [(c, re.compile(c.pattern, re.IGNORECASE)) for c in cues]

    def load(self) -> None:
        """Nothing to load (the patterns compile in the constructor)."""

    def found(self, question: str) -> list[tuple[Cue, str]]:
        """The cues that match ``question`` (table order) with the text each matched."""
        out = []
        for cue, rx in self._cues:
            m = rx.search(question)
            if m:
                out.append((cue, m.group(0).strip()))
        return out

    def matches(self, question: str) -> dict[str, list[str]]:
        """Intent -> labels of the cues found in ``question`` (table order)."""
        found: dict[str, list[str]] = {}
        for cue, _text in self.found(question):
            if cue.label not in found.get(cue.intent, []):
                found.setdefault(cue.intent, []).append(cue.label)
        return found

    def route(self, question: str) -> Route:
        found = self.found(question)
        mass: dict[str, float] = {}
        for cue, _text in found:
            mass[cue.intent] = mass.get(cue.intent, 0.0) + cue.strength
        cued = sum(mass.values())
        if cued < 1 and self.plain > 0:
            mass["text"] = mass.get("text", 0.0) + self.plain * (1 - cued)
        total = sum(mass.values())
        scale = 1 / total if total > 1 else 1.0  # the evidence moves the route at most all the way
        equal = 1 / len(CORPORA)
        weights = {c: equal for c in CORPORA}
        for intent, m in mass.items():
            profile = self.profiles[intent][0]
            norm = sum(profile.values())
            for c in CORPORA:
                weights[c] += self.shift * m * scale * (profile.get(c, 0.0) / norm - equal)
        if self.exclusive:
            core = {c for intent in (mass or {"text": 1.0}) for c in self.profiles[intent][1]}
            weights = {c: w for c, w in weights.items() if c in core}
        if found:
            parts = []
            for intent in dict.fromkeys(cue.intent for cue, _ in found):
                quoted = ", ".join(dict.fromkeys(repr(text) for cue, text in found if cue.intent == intent))
                parts.append(f"{intent} cues: {quoted} (strength {mass[intent]:.2f})")
            if "text" in mass:
                parts.append(f"text {mass['text']:.2f} (no phrase points at a figure or table)")
            cues = "; ".join(parts)
        else:
            cues = "no figure or table cues" + (": text search" if self.plain > 0 else ": every corpus alike")
        moved = f"moved {self.shift:.0%} of the way from equal weights" if mass else "equal weights"
        reason = f"{cues}; {moved} -> {describe_weights({c: w for c, w in weights.items() if w > 0})}"
        return make_route(weights, self.top_k, reason, self.name)

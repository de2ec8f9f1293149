"""Corpus term statistics: in how many pages of the whole knowledge base each term occurs.

The abstention judge (:mod:`generators.abstention`) weighs a question's terms by how rare they
are in the *whole* knowledge base, not only among the few passages retrieved: a term that
occurs on a handful of pages (a name, an identifier, a technical noun, a number) is specific,
and when it is absent from every retrieved page the pages do not answer; a word on every other
page ("system", "use") says little either way.

:class:`TermStats` is a frozen record of page counts (``pages``) and document frequencies
(``df``: term -> pages holding it), counted with :func:`terms` (lower-cased, crudely stemmed
content words; a versioned tokenizer, :data:`TOKENIZER_VERSION`, so a cache written with an
older one is recounted). Counting is pure (:meth:`TermStats.count`); the knowledge base counts
once from the page texts in its store and caches the result in its folder
(``rag/_term_stats.py``), recounting when the documents change.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["strip_suffix", "TOKENIZER_VERSION", "TermStats", "terms"]

#: Bump when :func:`terms` changes: cached statistics counted by another version are recounted.
TOKENIZER_VERSION = 1

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

#: Function words and the words questions are phrased with ("how many", "what is the name of",
#: "according to the document"): never what a question is specifically about.
STOPWORDS = frozenset(
    """a an the of to in on at for and or but is are was were be been being by with from as it its this that these
    those what which who whom whose how many much where when why does do did done has have had can could should
    would will shall may might must i you he she we they me my your our their there here than then so such not no
    yes if into onto about over under between per all any each some most more less very also only just show shows
    tell give given list describe explain please according document documents page pages say says said
    use used using get got make made take took one two first new way kind sort name named called value
    number amount long large often big small""".split()
)

_SUFFIXES = ("ings", "ing", "ed", "es", "s")


def strip_suffix(word: str) -> str:
    """Drop one of ``-ings -ing -ed -es -s`` when at least four letters remain (not ``-ss``)."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def terms(text: str) -> list[str]:
    """Lower-cased, crudely stemmed content words (letters or digits), stopwords dropped, in order."""
    return [strip_suffix(w) for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in STOPWORDS]


@dataclass(frozen=True, slots=True)
class TermStats:
    """How many pages (``pages``) the knowledge base holds and how many of them hold each term."""

    pages: int
    df: Mapping[str, int] = field(default_factory=dict)
    version: int = TOKENIZER_VERSION

    @classmethod
    def count(cls, page_texts: Iterable[str]) -> TermStats:
        """Count document frequencies over ``page_texts``, one text per page."""
        df: Counter[str] = Counter()
        n = 0
        for text in page_texts:
            n += 1
            df.update(set(terms(text)))
        return cls(n, dict(df))

    def idf(self, term: str) -> float:
        """``ln((N + 1) / (df + 0.5))``: 0 for a term on every page, largest for one on none."""
        return math.log((self.pages + 1) / (self.df.get(term, 0) + 0.5))

    def max_idf(self) -> float:
        """The weight of a term on no page (the largest :meth:`idf` can be)."""
        return math.log((self.pages + 1) / 0.5)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "pages": self.pages, "df": dict(sorted(self.df.items()))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TermStats:
        return cls(int(data["pages"]), {str(k): int(v) for k, v in data["df"].items()}, int(data["version"]))

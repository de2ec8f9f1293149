"""Quoted phrases in a question: "exact words" the answer page must hold.

A user who writes ``which boxes sit inside the dashed 'User Motivation' box?`` quotes a label
they read on the page, the way web and library search engines read quotes. Embeddings and
BM25 both treat the quoted words as a few terms among many (a page about "User's Motivation to
Use System" scores as well). This module is the pure text part, shared by retrieval and
generation: :func:`quoted_phrases` reads the phrases (once per question: the search result
carries them), :func:`holds` counts those a text holds word for word (case, punctuation and
line breaks aside). Search lifts the candidate pages holding more of them
(:func:`retrievers.pipeline.promote`); the extractive generator puts the sentences holding
them first. Quotes lift, they never filter.

Apostrophes inside and at the end of words (``Davis's``, ``users'``, ``don't``) are not quotes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = ["quoted_phrases", "normalise", "holds"]

#: Opening and closing marks, each pair on its own: a quote opens after a non-word character
#: (or the start) and closes before one (or the end), so an apostrophe inside a word never does.
_QUOTED = re.compile(
    r"""(?<!\w)(?:'([^'\n]{1,120}?)'|"([^"\n]{1,120}?)"|\u201c([^\u201d\n]{1,120}?)\u201d|\u2018([^\u2019\n]{1,120}?)\u2019)(?!\w)"""
)
_NON_WORD = re.compile(r"[\W_]+")
#: A word broken across lines by a hyphen ("play-\nfulness").
_LINE_HYPHEN = re.compile(r"(\w)-\s*\n\s*(\w)")


def normalise(text: str) -> str:
    """Case-folded words separated by single spaces, with a space at each end (ligatures and
    full-width forms folded by NFKC; punctuation, quotes and line breaks are separators)."""
    words = _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    return f" {words} " if words else ""


def quoted_phrases(question: str) -> tuple[str, ...]:
    """The phrases quoted in ``question``, normalised (see :func:`normalise`), in order, without
    repeats; empty phrases (quotes around punctuation) are dropped."""
    out: list[str] = []
    for match in _QUOTED.finditer(question):
        phrase = normalise(next(g for g in match.groups() if g is not None))
        if phrase and phrase not in out:
            out.append(phrase)
    return tuple(out)


def holds(text: str, phrases: Sequence[str]) -> int:
    """How many of the normalised ``phrases`` occur in ``text`` as whole words; a word split by a
    line-end hyphen counts both joined ("playfulness") and as written ("play fulness")."""
    if not phrases or not text:
        return 0
    joined = _LINE_HYPHEN.sub(r"\1\2", text)
    forms = (normalise(text),) if joined == text else (normalise(text), normalise(joined))
    return sum(1 for p in phrases if any(p in f for f in forms))


"""Is a page's text layer usable? Detects empty and garbled (mis-encoded) text.

A PDF can carry a text layer that renders fine but extracts as garbage: glyphs mapped
to control characters, private-use code points, or to the wrong letters. Such a page
needs OCR exactly like a scan. The checks, cheapest first:

1. too little text (fewer than ``MIN_CHARS`` visible characters) -> ``"empty"``;
2. a large share of control / private-use / unassigned / replacement characters;
3. for text mostly in Latin script: too few letters, too few words that contain a vowel,
   an implausible mean word length, or (on pages with enough words) almost no common
   stop-words of English, German, French, Spanish, Italian, Portuguese or Dutch.

Text in other scripts is judged by checks 1 and 2 only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

__all__ = ["TextQuality", "assess_text", "MIN_CHARS"]

MIN_CHARS = 20
_BAD_CATEGORIES = {"Cc", "Co", "Cs", "Cn"}
_VOWELS = set("aeiouyAEIOUYàáâãäåæèéêëìíîïòóôõöøùúûüýÿœÀÁÂÃÄÅÆÈÉÊËÌÍÎÏÒÓÔÕÖØÙÚÛÜÝŒ")
_STOPWORDS = frozenset(
    """
    a an and are as at be by for from has have in is it its of on or that the this to was
    were which with not but we you he she they their our can will also than then there these
    those into such been more may if all one no so do
    der die das und ist nicht ein eine zu den von mit sich des auf für im dem wird auch
    le la les et est un une du des en que qui dans pour pas sur au avec ce il sont par
    el los las y es un una del que en por con para se lo como su al
    il di che è non per una della delle gli
    o os as e um uma do da dos das em não para com que
    de het een en van is dat op te zijn met voor niet
    """.split()
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class TextQuality:
    """The verdict on one page's text layer and the numbers behind it."""

    verdict: Literal["ok", "empty", "garbled"]
    chars: int
    bad_char_share: float = 0.0
    letter_share: float = 0.0
    vowel_word_share: float = 0.0
    stopword_share: float = 0.0
    mean_word_len: float = 0.0
    reason: str = ""

    @property
    def usable(self) -> bool:
        return self.verdict == "ok"


def _is_latin(ch: str) -> bool:
    return ch.isascii() or "LATIN" in unicodedata.name(ch, "")


def assess_text(text: str) -> TextQuality:
    """Judge whether ``text`` (one page's text layer) is usable or needs OCR."""
    visible = [c for c in text if not c.isspace()]
    n = len(visible)
    if n < MIN_CHARS:
        return TextQuality("empty", n, reason=f"only {n} visible characters")
    bad = sum(1 for c in visible if unicodedata.category(c) in _BAD_CATEGORIES or c == "\ufffd")
    bad_share = bad / n
    # decorative symbols (dingbats, box drawing) are neither garbage nor words
    wordish = [c for c in visible if unicodedata.category(c) != "So"]
    letters = [c for c in wordish if c.isalpha()]
    letter_share = len(letters) / len(wordish) if wordish else 0.0
    if bad_share > 0.05:
        return TextQuality(
            "garbled", n, bad_share, letter_share,
            reason=f"{bad_share:.0%} control/private-use characters",
        )
    if not letters:
        if not wordish:
            return TextQuality("ok", n, bad_share, 0.0, reason="only symbols")
        return TextQuality("garbled", n, bad_share, 0.0, reason="no letters at all")
    latin = sum(1 for c in letters if _is_latin(c)) / len(letters)
    if latin < 0.6:
        return TextQuality("ok", n, bad_share, letter_share, reason="non-Latin script")
    words = _WORD.findall(text)
    long_words = [w for w in words if len(w) >= 2]
    vowel_share = (
        sum(1 for w in long_words if any(c in _VOWELS for c in w)) / len(long_words) if long_words else 0.0
    )
    mean_len = sum(len(w) for w in words) / len(words) if words else 0.0
    stop_share = sum(1 for w in words if w.lower() in _STOPWORDS) / len(words) if words else 0.0
    numbers = TextQuality("ok", n, bad_share, letter_share, vowel_share, stop_share, mean_len)

    def verdict(reason: str) -> TextQuality:
        return TextQuality("garbled", n, bad_share, letter_share, vowel_share, stop_share, mean_len, reason)

    if letter_share < 0.25:
        return verdict(f"only {letter_share:.0%} of characters are letters")
    if len(long_words) >= 10 and vowel_share < 0.6:
        return verdict(f"only {vowel_share:.0%} of words contain a vowel")
    if len(words) >= 10 and not 2.0 <= mean_len <= 12.0:
        return verdict(f"mean word length {mean_len:.1f}")
    if len(words) >= 60 and stop_share < 0.03:
        return verdict(f"only {stop_share:.1%} of words are common stop-words")
    return numbers

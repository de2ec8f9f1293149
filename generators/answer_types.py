"""What kind of answer a question asks for, and whether a quoted answer holds one.

The abstention judge (:mod:`generators.abstention`) reads only the question and what the answer
quotes, never a model's verdict, so the shape of the answer is what it can check:

- **A unit.** "How long, in milliseconds, ...?", "How large ..., in yen?": a question that
  names the unit it wants the answer in is answered only by a quote that holds that unit, as a
  word or its symbol ("ms", "¥"). :func:`asked_unit` finds the unit (:data:`UNITS`),
  :func:`holds_unit` looks for it.
- **A person or a name.** "Who built ...?", "..., and who carried it out?", "What were the names
  of ...?": answered only by a quote that names someone or something the question does not: a
  capitalised word that does not start a sentence and is not one of the question's own words
  (:func:`asks_for_name`, :func:`new_names`). "Who is the keeper named Ottoline?" is not
  counted (it asks what someone already named is), nor "What is it called?" (often a lower-case
  term, "varchar").
- **A count, not a citation year.** A count or a measure ("how many bank employees") is not
  answered by the year of a reference ("Brown et al. (2002)", "Davis, 1989"):
  :func:`without_citation_years` removes those years before the judge looks for a number,
  unless the question asks for a year or a date.
"""

from __future__ import annotations

import re

from generators.term_stats import STOPWORDS

__all__ = ["UNITS", "unit_plural", "asked_unit", "holds_unit", "asks_for_name", "new_names", "asks_for_date", "without_citation_years"]

#: unit -> the ways a quote writes it (whole words, case-insensitive; symbols as they are)
UNITS: dict[str, tuple[str, ...]] = {
    "millisecond": ("millisecond", "milliseconds", "ms", "msec"),
    "microsecond": ("microsecond", "microseconds", "µs", "us", "usec"),
    "nanosecond": ("nanosecond", "nanoseconds", "ns"),
    "second": ("second", "seconds", "s", "sec", "secs"),
    "minute": ("minute", "minutes", "min", "mins"),
    "hour": ("hour", "hours", "h", "hr", "hrs"),
    "day": ("day", "days"),
    "week": ("week", "weeks"),
    "month": ("month", "months"),
    "year": ("year", "years"),
    "byte": ("byte", "bytes", "b"),
    "bit": ("bit", "bits"),
    "kilobyte": ("kilobyte", "kilobytes", "kb", "kib", "k"),
    "megabyte": ("megabyte", "megabytes", "mb", "mib"),
    "gigabyte": ("gigabyte", "gigabytes", "gb", "gib"),
    "terabyte": ("terabyte", "terabytes", "tb", "tib"),
    "dollar": ("dollar", "dollars", "usd", "$"),
    "euro": ("euro", "euros", "eur", "€"),
    "pound": ("pound", "pounds", "gbp", "£", "lb", "lbs"),
    "yen": ("yen", "jpy", "¥", "円"),
    "percent": ("percent", "per cent", "percentage", "%"),
    "degree": ("degree", "degrees", "°"),
    "millimetre": ("millimetre", "millimetres", "millimeter", "millimeters", "mm"),
    "centimetre": ("centimetre", "centimetres", "centimeter", "centimeters", "cm"),
    "metre": ("metre", "metres", "meter", "meters", "m"),
    "kilometre": ("kilometre", "kilometres", "kilometer", "kilometers", "km"),
    "inch": ("inch", "inches", "in.", '"'),
    "foot": ("foot", "feet", "ft", "'"),
    "mile": ("mile", "miles", "mi"),
    "gram": ("gram", "grams", "g"),
    "kilogram": ("kilogram", "kilograms", "kg"),
    "volt": ("volt", "volts", "v"),
    "watt": ("watt", "watts", "w"),
    "hertz": ("hertz", "hz"),
}

#: how a question names the unit it wants ("in seconds", not "in second place"; "in MB", not "in us")
_SPELLING = {
    spelling: unit
    for unit, spellings in UNITS.items()
    for spelling in spellings
    if spelling.replace(" ", "").isalpha()
    and len(spelling) >= 2
    and (spelling.endswith("s") or len(spelling) <= 3 or spelling in ("yen", "percent", "per cent", "percentage", "hertz", "feet"))
    and spelling not in ("us", "in", "mi", "hr", "day", "bit", "min", "sec", "as", "is")
}
#: "in milliseconds", "in yen", "as a percentage": the unit a question wants its answer in
_ASKED_UNIT = re.compile(r"\b(?:in|into|as)\s+(?:a\s+)?(" + "|".join(sorted(map(re.escape, _SPELLING), key=len, reverse=True)) + r")\b", re.IGNORECASE)

#: an interrogative "who" that asks who did something (starting the question or a clause of it) or
#: "the name(s) of" ("Who built ...?", "Who are listed ...?", "..., and who carried it out?", "... and by
#: whom?"; not the relative "women who had", nor "Who is the keeper named Ottoline?", which asks what
#: someone already named is: "who" + a form of "be" + anything but a participle)
_NAME_QUESTION = re.compile(
    r"(?:^|[,;:]\s*(?:and|or)\s+)who(?:m|se)?\b(?!\s+(?:is|are|was|were|'s)\s+(?![a-z]+(?:ed|en)\b))"
    r"|\bby\s+whom\b|\bnames?\s+of\b",
    re.IGNORECASE,
)
#: a word starting with a letter (capitalised or not: callers check)
_WORD = re.compile(r"[^\W\d_][\w'’.-]*", re.UNICODE)
#: words that start with a capital for reasons other than naming (besides the stopwords: "There" after a
#: footnote mark the sentence split missed)
_NOT_NAMES = frozenset({"i", "he", "she", "we", "you", "his", "her", "its", "our", "us", "him", "them"})

_DATE_QUESTION = re.compile(r"\b(?:when|what\s+year|which\s+year|what\s+date|which\s+date|since\s+(?:when|which)|in\s+what\s+year|how\s+old|what\s+decade)\b", re.IGNORECASE)
#: "(2002)", "(1989a)", "(Davis, 1989)", "Davis 1989;", "et al., 2003": a reference's year
_CITATION_YEAR = re.compile(
    r"\(\s*(?:[^()]*?,\s*)?(?:1[5-9]|20)\d\d[a-z]?(?:\s*[,;]\s*(?:[^()]*?,\s*)?(?:1[5-9]|20)\d\d[a-z]?)*\s*\)"
    r"|(?<=[A-Za-z.]),?\s+(?:1[5-9]|20)\d\d[a-z]?(?=\s*[;)])"
)


_PLURALS = {"yen": "yen", "percent": "percent", "hertz": "hertz", "inch": "inches", "foot": "feet"}


def unit_plural(unit: str) -> str:
    """How a sentence names ``unit`` in the plural ("milliseconds", "yen", "feet")."""
    return _PLURALS.get(unit, unit + "s")


def asked_unit(question: str) -> str | None:
    """The unit the question wants its answer in ("in milliseconds" -> ``"millisecond"``), or ``None``."""
    m = _ASKED_UNIT.search(question)
    return _SPELLING[m.group(1).lower()] if m else None


def holds_unit(text: str, unit: str) -> bool:
    """Whether ``text`` writes ``unit`` (:data:`UNITS`): one of its words, or its symbol."""
    for spelling in UNITS[unit]:
        if spelling.isalpha() or " " in spelling:
            # a word, or an abbreviation right after a number ("12 ms", "12ms")
            if re.search(r"(?<![^\W\d_])" + re.escape(spelling) + r"(?![^\W\d_])", text, re.IGNORECASE):
                if len(spelling) > 2 or re.search(r"\d\s*" + re.escape(spelling) + r"(?![^\W\d_])", text, re.IGNORECASE):
                    return True
        elif spelling in text:
            return True
    return False


def asks_for_name(question: str) -> bool:
    """Whether the question asks who did something (a person, a body) or for the name(s) of something."""
    return _NAME_QUESTION.search(question.strip()) is not None


def new_names(text: str, question: str) -> list[str]:
    """Capitalised words of ``text`` that do not start a sentence and are not words of
    ``question`` (compared lower-cased, with a possessive "'s" dropped)."""
    asked = {_name_key(w) for w in _WORD.findall(question)}
    found: list[str] = []
    for m in _WORD.finditer(text):
        word = m.group(0).rstrip(".")
        before = text[: m.start()].rstrip()
        starts = not before or before.endswith((".", "?", "!", ":", "\n", "|", "[", "(", "“", '"'))
        key = _name_key(word)
        if word[:1].isupper() and not starts and key not in asked and key not in _NOT_NAMES and key not in STOPWORDS:
            found.append(word)
    return found


def _name_key(word: str) -> str:
    """A word as names are compared: lower-cased, without a possessive "'s"."""
    return word.lower().removesuffix("'s").removesuffix("’s")


def asks_for_date(question: str) -> bool:
    """Whether the question asks when, or for a year or a date."""
    return _DATE_QUESTION.search(question) is not None


def without_citation_years(text: str) -> str:
    """``text`` without the years of references ("(2002)", "(Davis, 1989; King, 2006)", "Davis, 1989;")."""
    return _CITATION_YEAR.sub(" ", text)

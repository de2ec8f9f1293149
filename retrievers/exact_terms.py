"""Exact terms in a question: identifiers, options, labels and codes that must match verbatim.

A question naming ``\\heavyrulewidth``, ``HairEyeColor``, ``--no-cache``, ``vcovHC()``, node
``v8`` or ``ASN.1`` is asking about the pages that hold that very string. A sentence embedding
reads such a token as a few meaningless word pieces, and in BM25 it is one term among the
question's many (a common phrase such as "default values" can outscore it), so the page that
holds it can fall out of the top pages that plain BM25 ranks first. Search gives these terms a
list of their own (:func:`retrievers.search.search_corpus`).

:func:`exact_terms` is pure and reads only the *shape* of each whitespace-separated token:

- a command or option prefix: ``\\name`` (TeX), ``--name`` / ``-x`` (command line), ``@name``,
  ``$name``, ``%name``;
- code punctuation between word characters: ``_`` ``.`` ``::`` ``/`` ``#`` ``->`` (``os.path``,
  ``x86_64``, ``ASN.1``, ``std::vector``, ``usr/share/mime``), or a call ``name()``;
- letters and digits mixed in one word (``v8``, ``TAM3``, ``e21``, ``10GB``, ``0.4pt``);
- a capital after a lower-case letter inside a word (``HairEyeColor``, ``vcovCL``, ``iPhone``);
- text in backticks (```mmrag ingest```).

Plain words, hyphenated English (``file-name``, ``standard-error``), capitalised words, acronyms
and bare numbers are not exact terms: they are ordinary BM25 terms. Whether a detected term is
*rare* enough to decide is the index's call (how many points hold it), not this module's.
"""

from __future__ import annotations

import re

__all__ = ["exact_terms"]

#: Characters stripped from both ends of a token before its shape is read.
_EDGE = "\"'`“”‘’«»[]{}<>,;:!?."
_BACKTICKED = re.compile(r"`([^`\n]{1,80})`")
#: Tokens: runs without whitespace, cut at brackets and commas ("NeweyWest(fm.inv," -> two),
#: a call's "()" kept with its name.
_TOKEN = re.compile(r"[^\s(),;\[\]{}]+(?:\(\))?")
_PREFIX = re.compile(r"^(?:\\[A-Za-z@]{2,}|--?[A-Za-z][\w-]*|[@$%][A-Za-z_]\w*)$")
_CODE_PUNCT = re.compile(r"\w(?:_|\.|::|/|#|->)\w|\(\)$")
#: Dots between single letters are abbreviations ("U.S", "e.g"), not code.
_ABBREVIATION = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]?$")
_LETTER_DIGIT = re.compile(r"^(?=[\w.-]*[A-Za-z])(?=[\w.-]*\d)[\w.-]+$")
_INNER_CAPITAL = re.compile(r"[a-z][A-Z]")
_POSSESSIVE = re.compile(r"['’]s$")


def _is_exact(token: str) -> bool:
    if len(token) < 2 or _ABBREVIATION.match(token):
        return False
    if _PREFIX.match(token) or _CODE_PUNCT.search(token) or _INNER_CAPITAL.search(token):
        return True
    return bool(_LETTER_DIGIT.match(token))


def exact_terms(question: str) -> tuple[str, ...]:
    """The exact terms of ``question`` as written (a possessive's ``'s``, a call's ``()`` and
    surrounding punctuation dropped), in order, without repeats; see the module docstring for
    what counts."""
    out: list[str] = []

    def add(term: str) -> None:
        if term and term not in out:
            out.append(term)

    for match in _BACKTICKED.finditer(question):
        add(match.group(1).strip())
    for match in _TOKEN.finditer(_BACKTICKED.sub(" ", question)):
        token = _POSSESSIVE.sub("", match.group(0).strip(_EDGE))
        if _is_exact(token):
            add(token.removesuffix("()"))
    return tuple(out)

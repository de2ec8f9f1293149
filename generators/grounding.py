"""Generated answers checked against their citations: a cited claim must be in what it cites.

A model-written answer (local VLM, OpenAI-compatible API) cites its numbered evidence with
markers like ``[1]``. :func:`ground` checks every cited clause against the text of the evidence
its markers name, removes the markers that do not hold it, and lists the sentences left
uncited; :func:`generators.markers.cited_answer` (``check=True``) then resolves the markers
that are left to citations. The check is deterministic and cheap (regular expressions and
sets, no model). The extractive generator quotes its evidence and is not checked.

**Clauses.** The text is split into sentences (``.``, ``!`` or ``?`` followed by a space and a
capital letter, quote, bracket or list mark; or a line break); markers written right after the
full stop (``... months. [1]``) belong to the sentence before them. Inside a sentence each
marker group (adjacent groups like ``[1][2]`` count as one) closes a clause that runs back to
the previous group or the sentence start; the words after the sentence's last group belong to
that last clause, so ``X [1].`` and ``According to [1], X.`` both cite X with [1].

**Claims** of a clause (markers, markdown and list bullets aside):

- *numbers*: ``6``, ``6.50`` (= ``6.5``), ``1,200`` (= ``1200``, also with thin or no-break
  spaces); a unit glued to or written after a number is not part of the claim (``230V``,
  ``230 V`` and ``230 volts`` all claim 230; units are written in too many ways to compare);
  ranges, dates and times give each of their numbers (``10–20``, ``2024-03-01``); the number
  words two … twenty and thirty … ninety count as their digits (in evidence ``one`` does too);
- *names*: capitalised words not at the start of a sentence or after a colon (``Siemens``),
  all-capital words (``NASA``) and words with a capital inside (``ColPali``) anywhere;
  capitalised function words (``The``, ``However``) are not names;
- *identifiers and code*: tokens that mix letters and digits (``E21``, ``Qwen2-VL``) or join
  word characters with ``_ . / :`` (``config.yaml``, ``os.path``), and text in backticks;
- *key words*: the remaining words of four or more letters that are not function words or
  words about the evidence itself (``according``, ``document``, ``figure``, ``mentioned``...).

**Support.** A marker supports a clause when every number, name, identifier and code token of
the clause is found in that marker's evidence, and at least a third (at least one) of its key
words are. Matching forgives case, unicode dashes, soft hyphens, words hyphenated across a line
end, hyphens inside compounds (``Col-Pali`` = ``ColPali``), thousands separators, a decimal
comma, trailing decimal zeros, possessives and simple plurals (``GPUs`` = ``GPU``,
``batteries`` = ``battery``); key words compare on their first six letters (``inspected`` =
``inspection``), so a paraphrase that keeps a third of its key words passes while a clause
about another passage does not. A clause without claims (``See [1].``) is supported by any
marker it cites, and so is any marker whose evidence has no text (a page the model saw only as
an image: there is nothing to check against). When several markers cite a clause and none
holds all its claims alone but together they do, the markers holding at least one claim are
kept (the model split the claims across them).

**Evidence** of a marker (:func:`evidence_texts`): the full text of the evidence item (the text
a model is shown is cut to ``max_chars``, but a model reading the page image may state what is
past the cut), plus its heading as the model saw it: file name, ``page N`` and printed label.

**Result** (:class:`Grounded`). A marker that does not support its clause is removed from its
bracket group; an emptied group is removed with the space before it. A sentence with a cited
clause left without any marker is listed in ``unsupported`` (its text without markers).
Markers keep the evidence numbers the model was given (no renumbering, as in
:func:`generators.markers.resolve_citations`); citations are then those of the markers left.
Sentences without markers are not checked.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from generators.base import MARKER_RE, ContextItem

__all__ = [
    "Claims",
    "EvidenceIndex",
    "Grounded",
    "MIN_WORD_SHARE",
    "claims",
    "evidence_texts",
    "ground",
    "sentence_spans",
]

logger = logging.getLogger(__name__)

#: share of a clause's key words that its cited evidence must hold (at least one word)
MIN_WORD_SHARE = 1 / 3
#: key words compare on this many leading letters (after plurals are made singular)
STEM_CHARS = 6

_STOP = frozenset(
    """a about above after again against all also although am an and another any are around as at
    be because been before being below between both but by can could did do does doing done down
    during each either else even ever every few for from further had has have having he her here
    hers herself him himself his how however i if in into is it its itself just least less like
    many may me might more most much must my myself neither no nor not now of off often on once
    only onto or other others otherwise our ours ourselves out over own per rather same shall she
    should since so some such than that the their theirs them themselves then there therefore
    these they this those though through thus to too under until up upon us very via was we well
    were what whatever when whenever where whereas whether which while who whom whose why will
    with within without would yet you your yours yourself yourselves
    according answer answers based cited cites citing context describe described describes
    document documents evidence excerpt excerpts figure figures find found given image images indicate indicated indicates
    information mention mentioned mentions note noted notes passage passages provide provided
    provides page pages question refer referred refers say says section shown shows specifically state
    stated states table tables text""".split()
)

#: number words -> digits (claims use these; evidence also maps ``one``)
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {w: str(10 * i) for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), start=3)}
_CLAIM_NUMBER_WORDS = {w: d for w, d in _NUMBER_WORDS.items() if w != "one"}

_DASHES = re.compile("[\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d]")
_LINE_HYPHEN = re.compile(r"(\w)-[ \t]*\n\s*(\w)")
_THOUSANDS = re.compile(r"(?<=\d)[,\u00a0\u202f\u2009'](?=\d{3}(?!\d))")
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d{1,2}(?!\d))")
_POSSESSIVE = re.compile(r"'s\b")
#: a word, possibly joined to more words by - _ . / : ' (identifiers, code, compounds)
_TOKEN = re.compile(r"\w+(?:[-_./:'+]\w+)*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NUMBER_UNIT = re.compile(r"(\d+(?:\.\d+)?)[^\W\d_]{1,4}")
_NUMBER_LIST = re.compile(r"\d+(?:\.\d+)?(?:[-/:]\d+(?:\.\d+)?)+")
_ABBREVIATION = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]?")
_CODE_JOIN = re.compile(r"\w[_./:]\w")
_BACKTICKS = re.compile(r"`([^`\n]+)`")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
#: a sentence ends at . ! ? (closing quotes/brackets and marker groups go with it) before a
#: space and a capital, quote, bracket or list mark; or at a line break
_SENTENCE_END = re.compile(
    r"[.!?][\"'\u201d\u2019)]*(?:\s*" + MARKER_RE.pattern + r")*(?=\s+[\"'\u201c\u2018(*#>\u2022\-A-Z\u00c0-\u00de])|\n"
)
_BULLET = re.compile(r"^\s*(?:[-*\u2022>#]+|\d{1,2}[.)])\s+")


def _fold(text: str) -> str:
    """Unicode-compatible forms, ASCII dashes and apostrophes, line-end hyphenation joined,
    thousands separators and possessives removed; case is kept."""
    text = unicodedata.normalize("NFKC", _THOUSANDS.sub("", text)).replace("\u00ad", "")
    text = _DASHES.sub("-", text).replace("\u2019", "'").replace("\u2018", "'")
    text = _THOUSANDS.sub("", _LINE_HYPHEN.sub(r"\1\2", text))
    return _POSSESSIVE.sub("", text)


def _number(value: str) -> str:
    """``6.50`` -> ``6.5``, ``007`` -> ``7``, ``6.0`` -> ``6``."""
    whole, _, frac = value.partition(".")
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _squash(text: str) -> str:
    return _NON_ALNUM.sub("", text.lower())


def _stem(word: str) -> str:
    return _singular(word.lower())[:STEM_CHARS]


def _forms(token: str) -> set[str]:
    """The spellings a token is looked up under: as written, squashed, singular."""
    low = token.lower()
    squashed = _squash(low)
    return {low, squashed, _singular(low), _singular(squashed)} - {""}


@dataclass(frozen=True, slots=True)
class Claims:
    """What a clause states: ``hard`` claims must all be found; of ``words``, a share."""

    numbers: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    words: tuple[str, ...] = ()

    @property
    def hard(self) -> tuple[tuple[str, str], ...]:
        return (
            *(("number", n) for n in self.numbers),
            *(("name", n) for n in self.names),
            *(("code", c) for c in self.codes),
        )

    @property
    def needed_words(self) -> int:
        """How many key words must be found: a share of them, at least one (none without words)."""
        return max(1, math.floor(MIN_WORD_SHARE * len(self.words))) if self.words else 0

    def __bool__(self) -> bool:
        return bool(self.numbers or self.names or self.codes or self.words)


def claims(clause: str, *, sentence_start: bool = True) -> Claims:
    """The claims of one clause (see the module doc); ``sentence_start``: the clause opens its
    sentence, so its first capitalised word is not taken for a name."""
    text = _fold(MARKER_RE.sub(" ", clause))
    numbers: list[str] = []
    names: list[str] = []
    codes: list[str] = []
    words: list[str] = []
    for span in _BACKTICKS.findall(text):
        codes.append(span.strip())
    text = _BULLET.sub("", _BACKTICKS.sub(" ", text))
    initial = sentence_start
    last, after_number = 0, False
    for m in _TOKEN.finditer(text):
        between = text[last : m.start()]
        last = m.end()
        if ":" in between or "\n" in between:
            initial = True
        token, at_start, initial = m.group(0).strip("'"), initial, False
        unit, after_number = after_number and not between.strip() and len(token) <= 4, False
        if not token or unit or _ABBREVIATION.fullmatch(token):
            continue  # a unit after a number (230 V, 5 kWh), an abbreviation (e.g, U.S)
        if _NUMBER.fullmatch(token):
            after_number = True
            numbers.append(_number(token))
        elif glued := _NUMBER_UNIT.fullmatch(token):
            numbers.append(_number(glued.group(1)))
        elif _NUMBER_LIST.fullmatch(token):
            after_number = True
            numbers.extend(_number(n) for n in re.split(r"[-/:]", token) if n)
        elif any(c.isdigit() for c in token) or _CODE_JOIN.search(token):
            codes.append(token)
        elif "'" in token:  # a contraction: don't, isn't
            continue
        elif "-" in token:  # a compound: a name when a part is one, else its parts are words
            parts = [p for p in token.split("-") if p]
            if any(p.isupper() and len(p) > 1 or p[:1].isupper() and (not at_start or p is not parts[0]) for p in parts):
                names.append(token)
            else:
                words.extend(p.lower() for p in parts if len(p) >= 4 and p.lower() not in _STOP)
        elif (token.isupper() and len(token) > 1) or any(c.isupper() for c in token[1:]):
            names.append(token)
        elif token[0].isupper():
            low = token.lower()
            if low in _STOP:
                continue
            if low in _CLAIM_NUMBER_WORDS:
                numbers.append(_CLAIM_NUMBER_WORDS[low])
            elif not at_start:
                names.append(token)
            elif len(low) >= 4:
                words.append(low)
        else:
            if token in _CLAIM_NUMBER_WORDS:
                numbers.append(_CLAIM_NUMBER_WORDS[token])
            elif len(token) >= 4 and token not in _STOP:
                words.append(token)
    unique = lambda xs: tuple(dict.fromkeys(xs))  # noqa: E731 - order kept, duplicates once
    return Claims(unique(numbers), unique(names), unique(codes), unique(words))


@dataclass(frozen=True, slots=True)
class EvidenceIndex:
    """One marker's evidence text, indexed for :meth:`found`."""

    numbers: frozenset[str]
    tokens: frozenset[str]
    stems: frozenset[str]
    squashed: str

    @classmethod
    def of(cls, text: str) -> EvidenceIndex:
        folded = _fold(MARKER_RE.sub(" ", text))
        # a comma between digits read three ways: thousands (folded away), decimal, separator
        variants = (folded, _DECIMAL_COMMA.sub(".", folded), unicodedata.normalize("NFKC", text).replace(",", " "))
        numbers: set[str] = set()
        for variant in variants:
            numbers.update(_number(n) for n in re.findall(r"(?<!\d)\d+(?:\.\d+)?", variant))
        tokens: set[str] = set()
        stems: set[str] = set()
        for m in _TOKEN.finditer(folded):
            token = m.group(0).strip("'")
            tokens |= _forms(token)
            for part in re.split(r"[-_./:'+]", token):
                if part:
                    tokens |= _forms(part)
                    stems.add(_stem(part))
                    if part.lower() in _NUMBER_WORDS:
                        numbers.add(_NUMBER_WORDS[part.lower()])
        return cls(frozenset(numbers), frozenset(tokens), frozenset(stems), _squash(folded))

    @property
    def empty(self) -> bool:
        return not self.squashed

    def found(self, what: Claims) -> set[tuple[str, str]]:
        """The claims of ``what`` this evidence holds, as ``(kind, value)`` pairs."""
        out: set[tuple[str, str]] = set()
        for kind, value in what.hard:
            if kind == "number":
                hit = value in self.numbers
            elif kind == "name":
                hit = bool(_forms(value) & self.tokens)
            else:
                squashed = _squash(value)
                hit = bool(_forms(value) & self.tokens) or (len(squashed) >= 4 and squashed in self.squashed)
            if hit:
                out.add((kind, value))
        out.update(("word", w) for w in what.words if _stem(w) in self.stems)
        return out


def _supported(what: Claims, found: set[tuple[str, str]]) -> bool:
    if any(claim not in found for claim in what.hard):
        return False
    return sum(1 for w in what.words if ("word", w) in found) >= what.needed_words


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text`` (see the module doc), blanks left out."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        if s < e:
            out.append((s, e))
    return out


@dataclass(frozen=True, slots=True)
class Grounded:
    """The checked text, the sentences left uncited, and what was removed (marker, clause)."""

    text: str
    unsupported: tuple[str, ...] = ()
    removed: tuple[tuple[int, str], ...] = ()
    clauses: int = 0


def _plain_sentence(text: str) -> str:
    """A sentence as listed in ``unsupported``: no markers, tidy spacing."""
    text = re.sub(r"[ \t]*" + MARKER_RE.pattern, "", text)
    return re.sub(r"\s+", " ", text).strip()


def ground(text: str, evidence: Mapping[int, str]) -> Grounded:
    """Check each cited clause of ``text`` against ``evidence`` (marker -> its text); remove the
    markers that do not support their clause. See the module doc for the rules."""
    index = {marker: EvidenceIndex.of(body) for marker, body in evidence.items()}
    replacements: dict[int, tuple[int, str]] = {}  # group start -> (group end, new text)
    uncited: list[tuple[int, int]] = []
    removed: list[tuple[int, str]] = []
    clauses = 0
    for s, e in sentence_spans(text):
        groups = list(MARKER_RE.finditer(text, s, e))
        if not groups:
            continue
        slots: list[list[re.Match[str]]] = []
        for g in groups:
            if slots and not text[slots[-1][-1].end() : g.start()].strip():
                slots[-1].append(g)
            else:
                slots.append([g])
        left_uncited = False
        for i, slot in enumerate(slots):
            begin = s if i == 0 else slots[i - 1][-1].end()
            clause = text[begin : slot[0].start()]
            if i == len(slots) - 1:
                clause += " " + text[slot[-1].end() : e]
            clauses += 1
            what = claims(clause, sentence_start=i == 0)
            numbers = [int(n) for g in slot for n in g.group(1).split(",")]
            found = {n: index[n].found(what) for n in dict.fromkeys(numbers) if n in index}
            keep = {n for n, f in found.items() if not what or index[n].empty or _supported(what, f)}
            if not keep and len(found) > 1 and _supported(what, set().union(*found.values())):
                keep = {n for n, f in found.items() if f}
            if not keep:
                left_uncited = True
            for n in dict.fromkeys(numbers):
                if n not in keep:
                    removed.append((n, _plain_sentence(clause)))
                    if n in index:
                        missing = [v for claim in what.hard if claim not in found[n] for v in claim[1:]]
                        logger.debug("marker [%d] does not support %r: not in its evidence: %s", n, _plain_sentence(clause), missing)
            for g in slot:
                kept = [n for n in (int(x) for x in g.group(1).split(",")) if n in keep]
                if len(kept) != len(g.group(1).split(",")):
                    replacements[g.start()] = (g.end(), "[" + ", ".join(map(str, kept)) + "]" if kept else "\0")
        if left_uncited:
            uncited.append((s, e))
    if not replacements:
        return Grounded(text, (), (), clauses)
    pieces, pos = [], 0
    for start in sorted(replacements):
        end, new = replacements[start]
        pieces.append(text[pos:start])
        pieces.append(new)
        pos = end
    pieces.append(text[pos:])
    marked = "".join(pieces)
    unsupported = [_plain_sentence(text[s:e]) for s, e in uncited]
    # an emptied group goes with the space before it, or after it when a kept group follows
    checked = re.sub(r"[ \t]*\0", "", re.sub(r"\0[ \t]*(?=" + MARKER_RE.pattern + ")", "", marked))
    logger.info(
        "grounding: %d cited clause(s), %d marker(s) removed, %d sentence(s) left unsupported",
        clauses, len(removed), len(unsupported),
    )
    return Grounded(checked, tuple(unsupported), tuple(removed), clauses)


def _heading(item: ContextItem) -> str:
    label = f" printed page {item.label}" if item.label else ""
    return f"{item.source} page {item.page}{label}"


def evidence_texts(items: Sequence[ContextItem], hits: Sequence[Any]) -> dict[int, str]:
    """Marker -> the text its claims are checked against: the heading the model saw (file name,
    page, printed label) and the evidence's full text, found in the hit the item came from (an
    item's own text is cut to ``max_chars``); the item's text when no evidence matches."""
    out: dict[int, str] = {}
    for item in items:
        body = item.text
        if body.endswith("\u2026") and 0 <= item.rank < len(hits):
            prefix = _squash(body[:-1])
            for ev in getattr(hits[item.rank], "evidence", ()):
                if ev.kind == item.kind and _squash(ev.text).startswith(prefix):
                    body = ev.text
                    break
        out[item.marker] = f"{_heading(item)}\n{body}" if body.strip() else ""
    return out

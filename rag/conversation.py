"""Conversations: the earlier turns of a conversation, and the rewrite of a follow-up question
that refers back to them ("and what about its default value?") into one retrieval can use.

A follow-up is rewritten only when it **depends** on the earlier turn (:func:`depends_on_context`):

- it opens elliptically: "what about …", "how about …", "and …", "also …", "same for …";
- it holds a pronoun or demonstrative (it, its, they, their, this, that, those, he, his, …,
  "the … one") with no antecedent in the question itself (a name, an identifier or quoted
  words, or a "the …" noun phrase before it);
- it names nothing at all ("Why?", "How many?").

Any other question is left untouched. The rewrite is the question as asked followed by the
subject of the most recent earlier turn (:func:`turn_subject`): the content words of that
turn's question (names, identifiers, quoted words, noun phrases; not the question words, not
the focus of "which X" / "how many X", not the passive verb), plus the names and identifiers
of its answer when the answer is short (an entity: "access-fannkuch"). When that turn was
itself a bare follow-up, the turn before it is used, at most :data:`MAX_TURNS` back.

With a language model (:func:`rewrite_with_model`, any object with ``complete(prompt)``), the
model condenses the follow-up with the last :data:`MAX_TURNS` turns; an empty, multi-line,
over-long reply, or one that drops the follow-up's own words, falls back to the rule.

The answer is still about the question as asked; the rewrite is what was searched for
(:class:`Rewrite`, ``Answer.rewritten``, ``"rewritten"`` in the JSON).

History, as a file (:func:`read_history`, ``mmrag ask --history FILE``) or a list
(:func:`parse_history`, the Python and HTTP APIs): turns oldest first, each an object with
``question`` (required, non-empty) and ``answer`` (optional). A file holds JSON lines, a JSON
list, or JSON objects one after another — so the output of ``mmrag ask --json`` (which has
both keys) can be appended to a history file as it is. Errors name the file, the line and the
problem (:class:`rag.errors.HistoryError`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from rag.errors import HistoryError, MmragError

__all__ = [
    "MAX_TURNS",
    "MAX_HISTORY",
    "Turn",
    "Rewrite",
    "Completer",
    "parse_history",
    "read_history",
    "depends_on_context",
    "turn_subject",
    "rewrite_followup",
    "rewrite_with_model",
]

log = logging.getLogger("mmrag.conversation")

#: Earlier turns a rewrite looks at (the rule walks back at most this far; the model is shown this many).
MAX_TURNS = 3
#: Turns a history may hold (older turns are never used; a longer history is refused as a mistake).
MAX_HISTORY = 200
#: Words of the subject added to a follow-up.
MAX_SUBJECT_WORDS = 8
#: An earlier answer this short (in words) is an entity whose names may be the subject.
SHORT_ANSWER_WORDS = 12


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier exchange of a conversation: the question asked and the answer given."""

    question: str
    answer: str = ""


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A follow-up rewritten with its conversation: ``rewritten`` is what retrieval searched for."""

    question: str
    rewritten: str
    #: Why the question was taken as a follow-up ("the pronoun 'its' has no antecedent in the question").
    reason: str
    method: Literal["rule", "model"] = "rule"


class Completer(Protocol):
    """Anything that completes a prompt with text (the configured generator)."""

    def complete(self, prompt: str) -> str: ...


# -- history ---------------------------------------------------------------------------------
def _turn(item: Any, where: str) -> Turn:
    if not isinstance(item, Mapping):
        raise HistoryError(f"{where}: expected an object {{\"question\": ..., \"answer\": ...}}, got {type(item).__name__}")
    question = item.get("question")
    if not isinstance(question, str) or not question.strip():
        raise HistoryError(f"{where}: expected a non-empty \"question\" string, got {question!r}")
    answer = item.get("answer", "")
    if answer is None:
        answer = ""
    if not isinstance(answer, str):
        raise HistoryError(f"{where}: expected \"answer\" to be a string, got {type(answer).__name__}")
    return Turn(question.strip(), answer.strip())


def parse_history(items: Any, source: str = "history") -> tuple[Turn, ...]:
    """Turns from a list of ``{question, answer}`` objects (or :class:`Turn` s), oldest first.
    :class:`HistoryError` names the item and the problem."""
    if items is None:
        return ()
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise HistoryError(f"{source}: expected a list of {{\"question\", \"answer\"}} objects, got {type(items).__name__}")
    if len(items) > MAX_HISTORY:
        raise HistoryError(f"{source}: {len(items)} turns; at most {MAX_HISTORY} are accepted (only the last {MAX_TURNS} are used)")
    return tuple(t if isinstance(t, Turn) else _turn(t, f"{source}[{i}]") for i, t in enumerate(items))


def read_history(path: str | Path) -> tuple[Turn, ...]:
    """The turns of a history file: JSON lines, a JSON list, or JSON objects one after another
    (``mmrag ask --json >> history.json``). :class:`HistoryError` names the file, line and problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryError(f"history file {p}: cannot be read ({exc}); give a UTF-8 JSON file of {{question, answer}} turns") from exc
    decoder = json.JSONDecoder()
    turns: list[Turn] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        line = text.count("\n", 0, pos) + 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise HistoryError(
                f"history file {p}, line {line}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                "expected JSON lines, a JSON list "
                "or the output of mmrag ask --json, each turn an object with \"question\" and \"answer\""
            ) from None
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            turns.append(_turn(item, f"history file {p}, line {line}" + (f", item {i}" if isinstance(value, list) else "")))
    if len(turns) > MAX_HISTORY:
        raise HistoryError(f"history file {p}: {len(turns)} turns; at most {MAX_HISTORY} are accepted")
    return tuple(turns)


# -- the rule ------------------------------------------------------------------------------
_WORD = re.compile(r"[\"“”‘’']|[^\W_](?:[\w.+#/-]*[\w+#])?|[?!.,;:()]")
_WH = frozenset("what which who whom whose where when why how".split())
_AUX = frozenset(
    "is are was were be been being am do does did done has have had having can could shall should will would may might must "
    "'s 're".split()
)
_PRONOUNS = frozenset("it its itself they them their theirs themselves he him his she her hers".split())
_DEMONSTRATIVES = frozenset("this that these those".split())
_DETERMINERS = frozenset("the a an my your our".split())
_PREPOSITIONS = frozenset(
    "of in on at for to from by with about into onto over under after before during between through per via than as".split()
)
_ELLIPTIC_OPENERS = (("what", "about"), ("how", "about"), ("and",), ("also",), ("same", "for"), ("but", "what"), ("what", "else"))
_FUNCTION = frozenset(
    "a an the and or but nor so if then else than as not no yes any some all each every both either neither other others "
    "more most less least much many few several such own same there here also only just very too again further once "
    "i me my we us our you your one ones thing things something anything way "
    "please tell say says said show shows shown explain describe described mention mentions mentioned list give given "
    "mean means meant happen happens happened use used using make made get got know find found look see "
    "does do did doing done out up".split()
) | _WH | _AUX | _PRONOUNS | _DEMONSTRATIVES | _PREPOSITIONS


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text)


def _is_word(tok: str) -> bool:
    return tok[0].isalnum()


def _specific(tok: str, first: bool) -> bool:
    """A name, an acronym or an identifier: capitalised (not as the first word), or letters
    mixed with digits or joined by . _ - /."""
    if not _is_word(tok):
        return False
    if any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok):
        return True
    if re.search(r"\w[._/-]\w", tok):
        return True
    return not first and tok[0].isupper() and tok.lower() not in _FUNCTION


def _content(tok: str) -> bool:
    return _is_word(tok) and tok.lower() not in _FUNCTION and (len(tok) > 1 or tok.isdigit())


def _focus_positions(toks: list[str]) -> set[int]:
    """Positions of the focus noun of "which X", "what X", "how many X": what is asked, not the subject."""
    out: set[int] = set()
    low = [t.lower() for t in toks]
    for i, t in enumerate(low):
        start = None
        if t in ("which", "what", "whose") and i + 1 < len(low) and low[i + 1] not in _AUX and low[i + 1] not in _FUNCTION:
            start = i + 1
        elif t == "how" and i + 2 < len(low) and low[i + 1] in ("many", "much"):
            start = i + 2
        elif t == "how" and i + 1 < len(low) and low[i + 1] not in _AUX and _content(toks[i + 1]):
            out.add(i + 1)  # "how often", "how long": part of the question word
            continue
        if start is None:
            continue
        j = start
        while j < len(toks) and _content(toks[j]) and low[j] not in _AUX:
            if not _specific(toks[j], first=False):
                out.add(j)
            j += 1
    return out


def _wh_phrase(toks: list[str]) -> set[int]:
    """Positions of every word of "which X Y", "what X", "how many X" (names included)."""
    low = [t.lower() for t in toks]
    out: set[int] = set()
    for i, t in enumerate(low):
        start = i + 1 if t in ("which", "what", "whose") else i + 2 if t == "how" and low[i + 1 : i + 2] in (["many"], ["much"]) else None
        j = start
        while j is not None and j < len(toks) and _content(toks[j]) and low[j] not in _AUX:
            out.add(j)
            j += 1
    return out


def _antecedent_before(toks: list[str], end: int, focus: set[int]) -> bool:
    """Whether the words before position ``end`` name something a pronoun there can refer to;
    the words of the question's own "which X" phrase count only across "and", "," or ";"
    ("which benchmark aborted most, and how often did it?")."""
    quoted = False
    clause_break = max((i for i, t in enumerate(toks[:end]) if t.lower() in ("and", ",", ";")), default=-1)
    wh = _wh_phrase(toks)
    for i, tok in enumerate(toks[:end]):
        if tok in "\"“”‘’'":
            quoted = not quoted
            continue
        if not _is_word(tok) or ((i in focus or i in wh) and i > clause_break):
            continue
        if (i in focus or i in wh) and _content(tok):
            return True
        if quoted and _content(tok):
            return True
        if _specific(tok, first=i == 0):
            return True
        if i > 0 and toks[i - 1].lower() in _AUX and _content(tok) and (i < 2 or toks[i - 2].lower() in _WH):
            return True  # the subject of the question's clause: "where should people put their …"
        if (
            i > 0
            and toks[i - 1].lower() in _DETERMINERS
            and _content(tok)
            and not (i >= 2 and toks[i - 2].lower() in _WH)
        ):
            return True
    return False


def depends_on_context(question: str) -> str | None:
    """Why ``question`` needs its conversation to be understood, or ``None`` when it stands alone."""
    toks = _tokens(question)
    words = [t.lower() for t in toks if _is_word(t)]
    if not words:
        return None
    for opener in _ELLIPTIC_OPENERS:
        if tuple(words[: len(opener)]) == opener:
            return f"it opens elliptically ({' '.join(opener)!r} …)"
    focus = _focus_positions(toks)
    low = [t.lower() for t in toks]
    for i, t in enumerate(low):
        anaphoric = t in _PRONOUNS
        if t in _DEMONSTRATIVES:
            # "that" after a noun or a verb is a relative pronoun or a conjunction, not a reference
            prev = low[i - 1] if i > 0 else ""
            anaphoric = t != "that" or prev in ("", "and", ",") or prev in _PREPOSITIONS or prev in _WH or prev in _AUX
            anaphoric = anaphoric and not (i > 0 and low[i - 1] in _DETERMINERS)
            if t in ("this", "these") and i + 1 < len(toks) and _content(toks[i + 1]):
                anaphoric = False  # "this manual", "these table lines": the documents, not the conversation
        if t == "it" and i + 1 < len(low) and low[i + 1] in ("take", "takes", "took", "possible", "true", "necessary", "safe", "recommended"):
            anaphoric = False  # "how long does it take", "is it possible": no referent
        if t == "it" and i > 0 and low[i - 1] in ("is", "was", "are", "were", "be") and {"that", "to", "whether", "if"} & set(low[i + 1 : i + 4]):
            anaphoric = False  # "how is it recorded that …", "is it safe to …": the clause is the subject
        if t in ("one", "ones") and i > 0 and _is_word(toks[i - 1]) and low[i - 1] not in _PREPOSITIONS and not low[i - 1].isdigit():
            nxt = low[i + 1] if i + 1 < len(low) else ""
            # "the stainless steel one:", "which one is …"; not "things one does" (anyone)
            anaphoric = nxt in ("", "?", ":", ",", ".", "!") or (nxt in _AUX and low[i - 1] in ("the", "which", "that", "this", "other"))
        if anaphoric and not _antecedent_before(toks, i, focus):
            return f"{toks[i]!r} refers to something the question does not name"
    if not any(_content(t) for t in toks):
        return "it names nothing to search for"
    return None


def _is_verb(toks: list[str], i: int) -> bool:
    """The verb of a question, by position: "be inspected" / "were recorded" (a participle after
    an auxiliary), "who carried", "does Davis define" (a lowercase word after a name that follows do)."""
    low = [t.lower() for t in toks]
    tok = toks[i]
    if _specific(tok, first=i == 0):
        return False
    if tok.lower().endswith("ed") and i > 0 and low[i - 1] in _AUX:
        return True
    if i > 0 and low[i - 1] in ("who", "that", "which") and low[i - 1] not in _AUX:
        return low[i - 1] == "who"
    j = i - 1
    while j >= 0 and _specific(toks[j], first=False):
        j -= 1
    return j < i - 1 and j >= 0 and low[j] in ("do", "does", "did")


def turn_subject(turn: Turn) -> str:
    """The subject of an earlier turn: the content words of its question in their order (names,
    identifiers, noun phrases; not its question words, its "which X" focus or a passive verb),
    then the names and identifiers of a short answer; at most :data:`MAX_SUBJECT_WORDS` words."""
    toks = _tokens(turn.question)
    low = [t.lower() for t in toks]
    focus = _focus_positions(toks)
    words: list[str] = []
    for i, tok in enumerate(toks):
        if not _content(tok) or i in focus or _is_verb(toks, i):
            continue
        words.append(tok)
    answer = turn.answer.split()
    asks_entity = bool(focus) or "who" in low or "whom" in low
    if asks_entity and answer and len(answer) <= SHORT_ANSWER_WORDS:
        toks_a = _tokens(turn.answer)
        words += [t for i, t in enumerate(toks_a) if _specific(t, first=False) or (i == 0 and _content(t) and len(toks_a) <= 4)]
    seen: set[str] = set()
    kept: list[str] = []
    for w in words:
        if w.lower() not in seen:
            seen.add(w.lower())
            kept.append(w)
    # names and identifiers are the subject before anything else
    specific = [w for w in kept if _specific(w, first=False)]
    rest = [w for w in kept if not _specific(w, first=False)]
    chosen = set((specific + rest)[:MAX_SUBJECT_WORDS])
    return " ".join(w for w in kept if w in chosen)


def rewrite_followup(question: str, history: Sequence[Turn]) -> Rewrite | None:
    """The rule: ``question`` plus the subject of the most recent earlier turn when the question
    depends on it (:func:`depends_on_context`); ``None`` when it stands alone or there is no history."""
    if not history:
        return None
    reason = depends_on_context(question)
    if reason is None:
        return None
    asked = {t.lower() for t in _tokens(question)}
    for turn in reversed(history[-MAX_TURNS:]):
        subject = " ".join(w for w in turn_subject(turn).split() if w.lower() not in asked)
        if subject:
            return Rewrite(question, f"{question.strip()} ({subject})", reason, "rule")
        # a bare follow-up ("why?") carries no subject: look one turn further back
    return None


# -- the model ------------------------------------------------------------------------------
PROMPT = """Rewrite the last question of this conversation so that it can be understood without the conversation: \
replace the words that refer back (it, its, this, that, they, "what about ...") with what they refer to, \
and keep every other word of the question. If it already stands alone, repeat it exactly. \
Reply with the rewritten question only, on one line.

{turns}
Last question: {question}
Rewritten question:"""


def rewrite_with_model(question: str, history: Sequence[Turn], completer: Completer) -> Rewrite | None:
    """The model condenses ``question`` with the last :data:`MAX_TURNS` turns; the rule decides
    instead when the model fails or its reply is unusable (empty, several lines, too long, the
    follow-up's own content words missing). ``None``: the question stands alone."""
    if not history:
        return None
    turns = "\n".join(f"Q: {t.question}\nA: {t.answer[:400]}" for t in history[-MAX_TURNS:])
    try:
        reply = completer.complete(PROMPT.format(turns=turns, question=question.strip()))
    except MmragError as exc:
        log.info("follow-up rewrite: the model failed (%s); using the rule", exc)
        return rewrite_followup(question, history)
    text = reply.strip().strip('"').strip() if isinstance(reply, str) else ""
    problem = _check_model_rewrite(question, text)
    if problem is not None:
        log.info("follow-up rewrite: the model's reply %r is unusable (%s); using the rule", text[:80], problem)
        return rewrite_followup(question, history)
    if _norm(text) == _norm(question):
        return None
    reason = depends_on_context(question) or "the model rewrote it with the conversation"
    return Rewrite(question, text, reason, "model")


def _norm(text: str) -> str:
    return " ".join(t.lower() for t in _tokens(text) if _is_word(t))


def _check_model_rewrite(question: str, text: str) -> str | None:
    if not text:
        return "empty"
    if "\n" in text:
        return "more than one line"
    if len(text) > 3 * len(question) + 300:
        return "far longer than the question"
    own = {t.lower() for t in _tokens(question) if _content(t)}
    kept = {t.lower() for t in _tokens(text)}
    if own and len(own & kept) * 2 < len(own):
        return "most of the question's own words are missing"
    return None

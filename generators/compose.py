"""How an extractive answer is written from the units chosen for it.

The answer leads with the shortest span that answers, then adds supporting sentences while
the word budget (``max_words``, about 60) lasts; a sentence of another document than the lead's
only when it adds at least :data:`OTHER_DOCUMENT_TERMS` question words the answer does not hold
yet (the second half of a two-part question), since one sharing a word with the question reads
as a non sequitur after the lead (its pages stay among the sources):

- a **table row** leads as a small markdown table: the table's caption, then its header and
  the matching row(s) (up to :data:`MAX_ROWS`, in table order); a question for the most or the
  least of something ("which benchmark had the most aborts?") whose words name a numeric column
  of a table in the two best hits is answered by that table's row with the largest (smallest)
  value in the column (:func:`extreme_row`);
- a **figure** leads with its caption (first sentence) and the labels read from it (those
  sharing the question's words first), citing the figure item, so its crop reaches the
  answer's citation; a question that asks about a figure ("diagram", "chart", "pictured", ...)
  is answered from a figure when one is among the matching units;
- a **sentence** leads as it is, or, when long, by its stretch of at most :data:`LEAD_WORDS`
  words holding most of the question's words (cut ends marked "…");
- a **flattened run** of cells or labels that could not be re-rowed is never written as prose
  in full: only its best stretch of :data:`FLAT_WORDS` words, and never as support.

Every quoted span is text of the item it cites (spacing aside), so
:mod:`generators.matching` can find it on the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from generators.base import ContextItem
from rag.phrases import quoted_phrases
from generators.furniture import strip_furniture
from generators.matching import MATCH_CHARS, plain_text
from generators.spans import (
    ELLIPSIS,
    LABEL_MAX_WORDS,
    SENTENCE_END,
    best_window,
    defined_term,
    figure_parts,
    is_caption,
    is_flattened,
    is_title_run,
    markdown_table,
    named_number,
    numbered_as,
    opens_section,
    tokenize,
)

if TYPE_CHECKING:
    from generators.units import Unit

__all__ = ["compose", "extreme_row", "lead_passage", "supports", "passage_holding", "asks_about_figure", "MAX_WORDS", "LEAD_WORDS", "FLAT_WORDS", "MAX_ROWS"]

#: words an answer aims at (a lead table or figure may go over; support stops there)
MAX_WORDS = 60
#: longest stretch of a sentence quoted as the lead (one that nearly fits, up to SUPPORT_SLACK words
#: more, is quoted whole: its end is often the answer)
LEAD_WORDS = 45
#: longest stretch of a flattened run quoted
FLAT_WORDS = 20
#: most rows of one table in an answer
MAX_ROWS = 3
#: words of figure labels written after a caption
LABEL_WORDS = 30
#: words a whole supporting sentence may run past the budget rather than be cut
SUPPORT_SLACK = 10
#: question words a sentence of another document than the lead's must add to be written after it
OTHER_DOCUMENT_TERMS = 2
#: a supporting sentence shorter than this after cutting is left out
MIN_SUPPORT_WORDS = 8

_FIGURE_CUES = frozenset(
    "figure fig diagram chart graph plot picture pictured image screenshot photo photograph illustration drawn drawing "
    "depicted shown labelled labeled sketch map cartoon infographic schematic flowchart histogram poster".split()
)
_SENTENCE_END = SENTENCE_END


_MOST = re.compile(r"\b(?:most|highest|largest|greatest|biggest|maximum|longest|fastest)\b", re.IGNORECASE)
_LEAST = re.compile(r"\b(?:least|lowest|smallest|fewest|minimum|shortest|slowest)\b", re.IGNORECASE)
_CELL_NUMBER = re.compile(r"^\s*[$€£]?\s*(-?\d[\d,]*(?:\.\d+)?)\s*(?:[%x×]|[A-Za-z]{0,4})\s*$")
#: a table is searched for the extreme row only among the hits ranked this well (0-based)
EXTREME_RANKS = 1


def _cell_number(cell: str) -> float | None:
    m = _CELL_NUMBER.match(cell)
    return float(m.group(1).replace(",", "")) if m else None


def extreme_row(question: str, units: Sequence[Unit]) -> Unit | None:
    """For a question that asks for the most or the least of something: the row of a table
    (among the hits ranked up to :data:`EXTREME_RANKS`) with the largest (smallest) number in a
    column whose heading holds one of the question's words; ``None`` when the question asks for
    neither, asks for both, or no table has such a column with numbers in most of its rows.
    Ties go to the row that comes first in the table."""
    most, least = _MOST.search(question), _LEAST.search(question)
    if bool(most) == bool(least):
        return None
    terms = set(tokenize(question))
    tables: dict[tuple[int, tuple[str, ...]], list[Unit]] = {}
    for unit in units:
        if unit.is_row and unit.header and len(unit.cells) == len(unit.header) and unit.item.rank <= EXTREME_RANKS:
            tables.setdefault((unit.item.marker, unit.header), []).append(unit)
    for (_, header), rows in sorted(tables.items(), key=lambda kv: (kv[1][0].item.rank, kv[0][0])):
        for column, name in enumerate(header):
            if not terms.intersection(tokenize(name)):
                continue
            valued = [(v, i, row) for i, row in enumerate(rows) if (v := _cell_number(row.cells[column])) is not None]
            if len(valued) < max(2, (len(rows) + 1) // 2):
                continue
            best = max(valued, key=lambda x: (x[0], -x[1])) if most else min(valued, key=lambda x: (x[0], x[1]))
            return best[2]
    return None


def asks_about_figure(question: str) -> bool:
    """The question names a picture of some kind (figure, diagram, chart, screenshot, ...)."""
    return any(w in _FIGURE_CUES for w in re.findall(r"[a-z]+", question.lower()))


def passage_holding(unit: Unit, items: Sequence[ContextItem]) -> ContextItem:
    """The item to cite for ``unit``: a sentence taken from a whole page's text is cited from a
    chunk (or figure) of the same page in the context that holds it too, so its box is the
    passage, and the answer does not give one passage two markers (the page's box is narrowed
    to that same chunk later)."""
    if unit.item.kind != "page":
        return unit.item
    wanted = plain_text(unit.text)[:MATCH_CHARS]
    for other in items:
        if (other.kind != "page" and other.doc_id == unit.item.doc_id and other.page == unit.item.page
                and wanted and wanted in plain_text(other.text)):
            return other
    return unit.item


def _words(text: str) -> int:
    return len(text.split())


def _sentence(text: str, end: str = ".") -> tuple[str, str]:
    """``text`` without its closing punctuation, and that punctuation (``end`` when none)."""
    text = text.rstrip()
    return (text[:-1], text[-1]) if text and text[-1] in ".!?" else (text, end)


class _Writer:
    """Collects answer pieces and renumbers cited items in the order of first citation."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.cited: dict[int, ContextItem] = {}
        self.words = 0

    def marker(self, item: ContextItem) -> int:
        return self.cited.setdefault(item.marker, replace(item, marker=len(self.cited) + 1)).marker

    def sentence(self, text: str, item: ContextItem) -> None:
        body, end = _sentence(text)
        self.add(f"{body} [{self.marker(item)}]{end}", _words(body))

    def add(self, piece: str, words: int) -> None:
        sep = "" if not self.pieces else "\n\n" if self.pieces[-1].endswith("|") or "\n|" in piece else " "
        self.pieces.append(sep + piece)
        self.words += words


def _said_terms(writer: _Writer) -> set[str]:
    """The question words the answer holds so far (any word, for comparison with a question's terms)."""
    return set(tokenize(" ".join(writer.pieces)))


def _window(text: str, terms: set[str], max_words: int) -> str:
    def weight(word: str) -> float:
        return 1.0 if terms.intersection(tokenize(word)) else 0.0

    span, cut_start, cut_end = best_window(text, weight, max_words)
    return (ELLIPSIS if cut_start else "") + span + (ELLIPSIS if cut_end else "")


def _caption_sentence(caption: str) -> str:
    """The first sentence of a caption; "Figure 2." alone is a label, not a sentence."""
    sentences = _SENTENCE_END.split(caption)
    if len(sentences) > 1 and _words(sentences[0]) <= 3:
        return f"{sentences[0]} {sentences[1]}"
    return sentences[0]


def _table(writer: _Writer, lead: Unit, candidates: Sequence[Unit], terms: set[str]) -> None:
    # further rows must match the question by their own cells (every row repeats the header's
    # words), and not by only part of what the lead row matches: "3d-cube" shares "3d" with a
    # question about "3d-raytrace", whose row holds both words
    led = terms.intersection(tokenize(" ".join(lead.cells)))
    rows = [
        u for u in candidates
        if u.item is lead.item and u.is_row and u.header == lead.header
        and (matched := terms.intersection(tokenize(" ".join(u.cells)))) and not matched < led
    ]
    rows = sorted(([lead] + [u for u in rows if u is not lead])[:MAX_ROWS], key=lambda u: u.position)
    header = lead.header if lead.header else tuple("" for _ in lead.cells)
    table = markdown_table(header, [u.cells for u in rows])
    caption, _ = figure_parts(lead.item.text)
    caption = caption.split("\n")[0]
    first = _caption_sentence(caption) if caption and not caption.lstrip().startswith("|") else ""
    marker = writer.marker(lead.item)
    lead_in = _sentence(first)[0] if first else f"The table on page {lead.item.page}"
    writer.add(f"{lead_in} [{marker}]:\n\n{table}", _words(lead_in) + sum(len(u.cells) for u in rows) + len([h for h in header if h]))


def _figure(writer: _Writer, lead: Unit, terms: set[str]) -> None:
    caption, labels = figure_parts(strip_furniture(lead.item.text))
    sentences = _SENTENCE_END.split(caption) if caption else []
    if sentences:
        sentences[0] = _caption_sentence(caption)
    said = sentences[:1]
    if not lead.flat and lead.text in caption and plain_text(lead.text) not in plain_text(" ".join(said)):
        said.append(lead.text)
    for text in said:
        writer.sentence(_window(text, terms, LEAD_WORDS), lead.item)
    if not caption:
        # a picture without a caption whose text is sentences (a cartoon's speech, a screenshot's
        # message): those lines are what it says, not labels
        lines = [ln.strip() for ln in strip_furniture(lead.item.text).splitlines() if ln.strip()]
        sentences_in = " ".join(ln for ln in lines if len(ln.split()) > LABEL_MAX_WORDS and not is_flattened(ln))
        if sentences_in:
            writer.add(f"Text in the figure: {_window(sentences_in, terms, LEAD_WORDS)} [{writer.marker(lead.item)}].",
                       min(_words(sentences_in), LEAD_WORDS))  # fmt: skip
    if not labels:
        return
    # the labels that share the question's words first, then the others, in reading order
    scored = sorted(range(len(labels)), key=lambda i: (-len(terms.intersection(tokenize(labels[i]))), i))
    keep: list[int] = []
    budget = LABEL_WORDS
    for i in scored:
        if _words(labels[i]) <= budget:
            keep.append(i)
            budget -= _words(labels[i])
    shown = "; ".join(labels[i] for i in sorted(keep))
    writer.add(f"Labels in the figure: {shown} [{writer.marker(lead.item)}].", LABEL_WORDS - budget)


def _definition(question: str, lead: Unit) -> str | None:
    """A term the question quotes and its definition, when ``lead`` is a terms-and-definitions
    table read as one run ("... Computer playfulness The degree of cognitive spontaneity in
    microcomputer interactions Perceived enjoyment ..."): :func:`generators.spans.defined_term`."""
    return next((d for p in quoted_phrases(question) if (d := defined_term(lead.text, p))), None)


def lead_passage(lead: Unit, units: Sequence[Unit], terms: set[str], limit: int) -> tuple[str, list[Unit]]:
    """The lead sentence and the running text after it in the same item, up to ``limit`` words:
    an answer usually follows the words that match the question ("In 1969, Lear created a
    pilot ... He took the pilot to ABC. The network didn't like it ..."). A long lead is quoted
    by its best stretch instead. Returns the text and the units it holds."""
    if _words(lead.text) > limit + SUPPORT_SLACK:
        return _window(lead.text, terms, limit), [lead]
    following = sorted((u for u in units if u.item is lead.item and u.position > lead.position), key=lambda u: u.position)
    parts, held, words = [lead.text], [lead], _words(lead.text)
    for expected, unit in enumerate(following, start=lead.position + 1):
        if unit.position != expected or unit.is_row or unit.flat or unit.heading or opens_section(unit.text):
            break  # the passage ends where a table, a heading or a lead-in to something else starts
        room = limit - words
        # a sentence that nearly fits is given whole: its cut-off end is often the answer
        if _words(unit.text) <= room + SUPPORT_SLACK:
            parts.append(unit.text)
            held.append(unit)
            words += _words(unit.text)
            continue
        if room >= MIN_SUPPORT_WORDS:
            parts.append(" ".join(unit.text.split()[:room]) + ELLIPSIS)
            held.append(unit)
        break
    return " ".join(parts), held


def supports(unit: Unit) -> bool:
    """Whether ``unit`` may follow the lead: a table row with at least two filled cells (a
    one-cell "table" is a box of stray words such as a wrapped URL, ``| /mozilla/pdf.js |``),
    or a sentence of running text of at least :data:`MIN_SUPPORT_WORDS` words (or a shorter
    one holding a number) that is not a caption ("Table 1: Inverter fault codes", "Figure 5:
    First modified version of TAM") nor a heading line — a caption or title after the answer
    only repeats what it is about."""
    if unit.is_row:
        return sum(bool(c.strip()) for c in unit.cells) >= 2
    if unit.flat or unit.heading or is_caption(unit.text) or is_title_run(unit.text):
        return False
    # a short line only when it is a sentence ("The pump is grey.") or carries a value
    # ("p-value = 0.008"), not a title ("SolarWatch - Inverter status")
    text = unit.text.rstrip()
    return _words(text) >= MIN_SUPPORT_WORDS or text.endswith((".", "!", "?")) or any(c.isdigit() for c in text)


def compose(
    question: str,
    chosen: Sequence[Unit],
    candidates: Sequence[Unit],
    items: Sequence[ContextItem],
    *,
    max_words: int = MAX_WORDS,
    units: Sequence[Unit] = (),
) -> tuple[list[str], list[ContextItem]]:
    """The answer's pieces and the cited items (renumbered from 1).

    ``chosen``: the units selected to answer, best first; ``candidates``: every unit that
    matched well enough, best first (where further rows of a table, or a figure for a figure
    question, are taken from)."""
    terms = set(tokenize(question))
    writer = _Writer()
    held: list[Unit] = []
    lead = chosen[0]
    if asks_about_figure(question) and lead.item.kind != "figure":
        # a figure of the same or a better-ranked hit; a lower hit's figure is another picture
        # (one whose words did not match counts too: a cartoon's OCR'd words, "VIDEORECORDER ON
        # WHICH ITEM ...", share none with "What question does the cartoon ask?")
        figures = (u for pool in (candidates, units) for u in pool if u.item.kind == "figure" and u.item.rank <= lead.item.rank)
        lead = next(figures, lead)
    if not lead.is_row and lead.item.kind == "table":
        # a table's caption matched: its best row whose own cells hold a question word answers
        # (a row that only shares the header's words is just the table's first row)
        lead = next((u for u in candidates if u.item is lead.item and u.is_row and terms.intersection(tokenize(" ".join(u.cells)))), lead)
    extreme = extreme_row(question, units)
    if extreme is not None:
        lead = extreme
        _table(writer, lead, (), terms)  # the one row that holds the most (least): no other matching rows
    elif lead.is_row:
        _table(writer, lead, candidates, terms)
    elif lead.item.kind == "figure":
        _figure(writer, lead, terms)
    elif lead.flat:
        # a quoted term in a flattened terms-and-definitions table: the term and its definition
        writer.sentence(_definition(question, lead) or _window(lead.text, terms, FLAT_WORDS), passage_holding(lead, items))
    elif (number := named_number(question)) is not None and numbered_as(lead.text, number):
        # the entry the question names by its number, alone: the next entry is another answer
        held = [lead]
        writer.sentence(_window(lead.text, terms, LEAD_WORDS), passage_holding(lead, items))
    elif definition := _definition(question, lead):
        writer.sentence(definition, passage_holding(lead, items))
        # the same table read again (a chunk of the page, perhaps cut short) says it again
        said = plain_text(" ".join(definition.split()[:6]))
        held = [u for u in chosen if said in plain_text(u.text)]
    else:
        text, held = lead_passage(lead, units, terms, LEAD_WORDS)
        writer.sentence(text, passage_holding(lead, items))
    tables = {lead.item.marker} if lead.is_row else set()
    for unit in chosen:
        if unit is lead or unit in held or not supports(unit) or (lead.item.kind == "figure" and unit.item is lead.item):
            continue
        if unit.item.doc_id != lead.item.doc_id and len(terms.intersection(tokenize(unit.text)) - _said_terms(writer)) < OTHER_DOCUMENT_TERMS:
            continue  # another document's sentence adds to the answer only with more of the question
        room = min(max_words - writer.words, LEAD_WORDS)
        if room < MIN_SUPPORT_WORDS:
            break
        if plain_text(unit.text) in plain_text(" ".join(writer.pieces)):
            continue  # already said (a table's caption written as the lead-in of its row)
        if unit.is_row:  # a matching row of another table: that table's header and row(s)
            if unit.item.marker not in tables:
                tables.add(unit.item.marker)
                _table(writer, unit, candidates, terms)
            continue
        if _words(unit.text) > room + SUPPORT_SLACK and room < 2 * MIN_SUPPORT_WORDS:
            continue  # a short cut of a long sentence says little
        # a sentence that nearly fits is given whole: its cut-off end is often the answer
        fits = _words(unit.text) <= room + SUPPORT_SLACK
        writer.sentence(unit.text if fits else _window(unit.text, terms, room), passage_holding(unit, items))
    return writer.pieces, list(writer.cited.values())

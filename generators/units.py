"""Evidence text split into the units an extractive answer is made of.

A unit is a sentence of running text, a heading line of its own, a list item, or a row of a
markdown table (rendered with its header: ``Month: March | Output: 420``). :func:`split_units`
gives their texts, :func:`split_pieces` each one's header, cells and whether it is a heading;
:class:`generators.extractive.ExtractiveGenerator` scores them against the question. Garbled
text-layer debris is recognised by :func:`looks_like_text`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from generators.base import ContextItem
from generators.spans import FUNCTION_WORDS, HEADING, SENTENCE_END, is_flattened

__all__ = [
    "BODY_WORDS",
    "HEADING_WORDS",
    "PROSE_CELL_WORDS",
    "TITLE_WORDS",
    "Unit",
    "is_heading_line",
    "is_title_line",
    "looks_like_text",
    "row_text",
    "split_pieces",
    "split_units",
]

_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?$")
# inside a paragraph whose lines were joined: a command-line option pair ("-b, --benchmark ...")
# starts a unit. (Splitting at bullet glyphs too made single-word bullets win answers they do
# not hold: "• Ultra-fast 3½" disk drive ..." for a question about mounted disks.)
_ITEM_INSIDE = re.compile(r"\s+(?=-[A-Za-z0-9],\s+--[A-Za-z])")
# a list number the sentence rule cut off its item ("2." of "2. Portability")
_NUMBER_ONLY = re.compile(r"^\(?\d{1,2}(?:\.\d{1,2})*[.)]$")
# a line that starts a list item: a bullet, a command-line option ("-b, --benchmark ..."), or
# "1." / "a)" numbering; an item is a unit of its own even without a full stop before it
_LIST_ITEM = re.compile(r"^\s*(?:[•●▪■◦‣∙·*–—-]\s+\S|-{1,2}[A-Za-z0-9][\w-]*(?:[,=\s]|$)|\(?(?:\d{1,2}|[a-z])[.)]\s+\S)")


@dataclass(frozen=True, slots=True)
class Unit:
    """A sentence or a table row of one context item."""

    item: ContextItem
    position: int
    text: str
    #: for a table row: the column headings (may be empty) and the row's cells
    header: tuple[str, ...] = ()
    cells: tuple[str, ...] = ()
    #: a run of table cells or diagram labels read as one line (:func:`generators.spans.is_flattened`)
    flat: bool = False
    #: a heading line of its own ("Pump maintenance" above "Grease the bearings ..."): it names a
    #: section and says nothing; an answer never quotes it with the sentence below
    heading: bool = False

    @property
    def is_row(self) -> bool:
        return bool(self.cells)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


_Piece = tuple[str, tuple[str, ...], tuple[str, ...], bool]  # text, header, cells, heading


def row_text(header: Sequence[str], cells: Sequence[str]) -> str:
    if len(cells) == len(header) and any(header):
        return " | ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells))
    return " | ".join(cells)


#: a table cell of at least this many words that reads as running text is prose, not a value
PROSE_CELL_WORDS = 20


def _prose_cell(cell: str) -> bool:
    return len(cell.split()) >= PROSE_CELL_WORDS and not is_flattened(cell)


def _table_units(lines: list[str]) -> list[_Piece]:
    rows = [ln for ln in lines if not _TABLE_SEPARATOR.match(ln.strip())]
    if not rows:
        return []
    header = tuple(_cells(rows[0]))
    units: list[_Piece] = []
    for row in rows[1:]:
        cells = tuple(_cells(row))
        prose = [c for c in cells if _prose_cell(c)]
        if prose:
            # a paragraph the table finder took in with a table ("|Because traces are in SSA
            # form ... two loop passes over the|xx1 000|"): its sentences, not a row of cells
            units.extend((p, (), (), False) for c in prose for p in SENTENCE_END.split(" ".join(c.split())) if p.strip())
            continue
        units.append((row_text(header, cells), header if len(cells) == len(header) else (), cells, False))
    return units or [(" | ".join(header), (), (), False)]


def split_units(text: str) -> list[str]:
    """Split evidence text into sentences and table rows (markdown ``| a | b |`` lines)."""
    return [piece[0] for piece in split_pieces(text)]


def split_pieces(text: str) -> list[_Piece]:
    """:func:`split_units` with each table row's header and cells."""
    units: list[_Piece] = []
    prose: list[str] = []
    table: list[str] = []

    def flush_prose(heading: bool = False) -> None:
        joined = re.sub(r"-\s*\n\s*(?=[a-z])", "", "\n".join(prose))
        joined = " ".join(joined.split())
        parts = [p.strip() for s in SENTENCE_END.split(joined) for p in _ITEM_INSIDE.split(s) if p.strip()]
        for i, part in enumerate(parts):  # "2." cut off its item by the sentence rule goes back in front of it
            if i + 1 < len(parts) and _NUMBER_ONLY.match(part):
                parts[i + 1] = f"{part} {parts[i + 1]}"
            else:
                units.append((part, (), (), heading and i == len(parts) - 1 and len(part.split()) <= 2 * TITLE_WORDS))
        prose.clear()

    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith("|"):
            if prose:
                flush_prose()
            table.append(line)
            continue
        if table:
            units.extend(_table_units(table))
            table.clear()
        if not line.strip():
            flush_prose()
        else:
            following = lines[index + 1].strip() if index + 1 < len(lines) else ""
            titled = is_title_line(line, prose[-1] if prose else None, following)
            if prose and (titled or _LIST_ITEM.match(line)):
                # a title-shaped line above a heading is a heading too (the document's title)
                flush_prose(heading=titled and len(prose) == 1 and _title_shaped(prose[0].strip()))
            prose.append(line)
            if following[:1].isupper() and (titled or is_heading_line(line)):
                # a heading ends its unit: it never opens the sentence below it
                flush_prose(heading=True)
    if table:
        units.extend(_table_units(table))
    flush_prose()
    return units


def is_heading_line(line: str) -> bool:
    """A numbered heading line ("2. Inspection schedule", "4.1 Tools"): at most :data:`HEADING_WORDS` words and no
    closing punctuation. (Title-case titles were tried too: they also split infobox rows such as
    "Stable release" and lowered the paraphrased answers' gold words, 0.289 -> 0.239.)"""
    text = line.strip()
    if not text or len(text.split()) > HEADING_WORDS or text.endswith((".", "!", "?", ":", ";", ",")):
        return False
    return bool(HEADING.match(text))


#: most words of a numbered heading line ("4.3. Testing and dating structural changes in the
#: presence of heteroskedasticity and autocorrelation" has 13)
HEADING_WORDS = 16


#: most words of an unnumbered heading line
TITLE_WORDS = 8
#: fewest words of the line below a heading (an infobox value such as "Mozilla" is no sentence)
BODY_WORDS = 4


_NOT_TITLE = re.compile(r"[\d,;()/=|\[\]]")


def _title_shaped(text: str) -> bool:
    words = text.split()
    if not words or len(words) > TITLE_WORDS or not text[:1].isupper() or text.endswith((".", "!", "?", ":", ";", ",")):
        return False
    if _NOT_TITLE.search(text):
        return False  # a value or a wrapped line of prose: "Stable release 4.0.379 / December 31, 2023"
    return re.sub(r"\W+", "", words[-1]).lower() not in FUNCTION_WORDS and not text.startswith("|") and not _LIST_ITEM.match(text)


def is_title_line(line: str, before: str | None, after: str) -> bool:
    """An unnumbered heading on a line of its own, as converted documents (Markdown, HTML, DOCX)
    and many PDFs have them ("Pump maintenance" between "... at the same time." and "Grease the
    bearings every 500 hours."): at most :data:`TITLE_WORDS` words starting with a capital, no
    closing punctuation, not ending on a function word (a wrapped line "The pump made by" is not
    a title); the line before it (``before``, ``None`` at the start of a block) ends a sentence
    or is shaped like a title itself (a document title above a section heading), and the line
    after it (``after``) starts with a capital and has at least :data:`BODY_WORDS` words."""
    text = line.strip()
    if not _title_shaped(text):
        return False
    if before is not None and not (before.rstrip().endswith((".", "!", "?")) or _title_shaped(before.strip())):
        return False
    return after[:1].isupper() and len(after.split()) >= BODY_WORDS


def looks_like_text(unit: str) -> bool:
    """False for garbled text-layer debris (``.  @!3  @  6 "(@6")``): too few letters and digits."""
    chars = [c for c in unit if not c.isspace() and c != "|"]
    alnum = sum(c.isalnum() for c in chars)
    return alnum >= 2 and alnum >= 0.6 * len(chars)

"""Repair a garbled text layer by learning what its fonts' codes mean from OCR of a few lines.

Many PDFs embed subset fonts without a usable code-to-Unicode map: the page renders fine,
but its text layer extracts as control characters or the wrong letters (a substitution
cipher, one per font). OCR of every such page is slow (seconds per page) and loses the
text layer's exact boxes and reading order. Instead, per document:

1. the text layer is read character by character with each character's *font* (the subset
   font's full name, so two subsets of one family are kept apart) and *glyph id* (a broken
   map can give two glyphs the same character: the glyph tells them apart);
2. a few lines whose codes are not yet known are rendered and read by the OCR recogniser
   alone (no text detection: the line boxes come from the text layer); a long level line is
   read in pieces of whole words (:data:`_SEGMENT_CHARS`), so the recogniser reads the words
   that hold unknown codes, not the full width of the line around them;
3. each line's codes are aligned with the recognised characters (whole line, or word by
   word when the lengths disagree) and every alignment is a vote for code -> character;
4. a font whose codes mostly read as themselves is *sound* (its characters are kept); the
   others are decoded by the majority vote of each code.

What is learned on one page is reused on the next, so a 200-page paper with three broken
fonts costs a few dozen line recognitions instead of 200 page OCRs. The caller judges the
decoded text like any text layer and falls back to full OCR when it is still unusable.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ingest._layout import RawBlock, block_from_lines

__all__ = ["GlyphRepair"]

logger = logging.getLogger("ingest")
Box = tuple[float, float, float, float]
Symbol = tuple[str, str, str]  # (font with subset tag, glyph id or character, character the text layer gives)

_FONT_NAMES_LOCK = threading.Lock()
_SPACES = frozenset(" \u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u3000")
_LINE_PX = 48  # the recogniser's input height
_MIN_SCORE = 0.8  # recognised lines below this confidence teach nothing
_SOUND = 0.8  # share of a font's aligned characters that read as themselves
_MIN_EVIDENCE = 8  # aligned characters before a font is judged
_MAX_TRIES = 4  # a glyph read in this many rounds of recognition without being learned is given up on
_CONSISTENT = 0.75  # an alignment must read this share of confidently known glyphs as learned
#: a level line of more characters (spaces aside) is learned from in pieces of whole words of
#: about this many: the recogniser's CPU grows with the rendered width, and most of a long
#: line's glyphs are already known after its first page (measured in BENCHMARKS.md, session 17)
_SEGMENT_CHARS = 24
_PER_ROUND = 8  # lines read together; what they teach steers the next round's choice


@dataclass(frozen=True, slots=True, eq=False)
class _Line:
    bbox: Box
    symbols: tuple[Symbol, ...]
    turns: int | None  # quarter turns (np.rot90) that make the line read left to right; None: slanted
    #: the pieces of whole words it is learned from (:func:`_segments`); empty: the line itself
    pieces: tuple[_Line, ...] = ()


@dataclass
class GlyphRepair:
    """Per-document state: votes per symbol and per-font evidence, kept across pages."""

    lines_per_page: int = 32
    votes: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)  # (font, glyph) -> characters read
    _same: Counter[str] = field(default_factory=Counter)  # font -> aligned chars read as themselves
    _seen: Counter[str] = field(default_factory=Counter)  # font -> aligned chars
    recognised_lines: int = 0
    decoded: int = 0  # characters of broken fonts decoded on the last page
    _tries: Counter[tuple[str, str]] = field(default_factory=Counter)  # glyph -> rounds it was read in
    # what the recogniser read for a run of glyphs (a running header, a repeated label): once per document
    _read: dict[tuple[tuple[Symbol, ...], int | None, float], tuple[str, float]] = field(default_factory=dict)

    def repair(self, page: Any) -> list[RawBlock]:
        """The page's text blocks with every learned code decoded (learning first as needed).

        :attr:`decoded` tells afterwards how many characters of broken fonts were decoded."""
        blocks = _raw_blocks(page)
        self._learn(page, [piece for block in blocks for ln in block for piece in (ln.pieces or (ln,))])
        self.decoded = sum(
            1 for block in blocks for ln in block for sym in ln.symbols if sym[2] not in _SPACES and self.sound(sym[0]) is False
        )
        out = []
        for block in blocks:
            lines = [(ln.bbox, self._decode(ln.symbols).strip()) for ln in block]
            lines = [(b, t) for b, t in lines if t]
            if lines:
                out.append(block_from_lines(lines))
        return out

    # -- judging fonts and codes ---------------------------------------------------------
    def sound(self, font: str) -> bool | None:
        """True: the font's codes read as themselves; False: a cipher; None: not judged yet."""
        seen = self._seen[font]
        if seen < _MIN_EVIDENCE:
            return None
        return self._same[font] / seen >= _SOUND

    def _known(self, sym: Symbol) -> bool:
        if sym[2] in _SPACES:
            return True
        verdict = self.sound(sym[0])
        if verdict:
            return True
        counter = self.votes.get(sym[:2])
        return bool(counter) and (verdict is False and sum(counter.values()) >= 2)

    def _decode(self, symbols: tuple[Symbol, ...]) -> str:
        out = []
        for sym in symbols:
            font, _, char = sym
            if char in _SPACES:  # not str.isspace(): a broken font's codes are often \t, \n, \x1c...
                out.append(" ")
            elif self.sound(font) is not False:
                out.append(char)
            else:
                counter = self.votes.get(sym[:2])
                out.append(counter.most_common(1)[0][0] if counter else "")
        return "".join(out)

    # -- learning -------------------------------------------------------------------------
    def _learn(self, page: Any, lines: list[_Line]) -> None:
        """Rounds of recognition of :data:`_PER_ROUND` lines, up to ``lines_per_page`` lines,
        each round picking lines greedily by the unknown glyphs they would add (so a chart's
        labels get their turn once the body font is learned)."""
        from ingest._ocr import recognize_lines

        budget = self.lines_per_page
        while budget > 0:
            wanted = self._pick(lines, min(_PER_ROUND, budget))
            budget -= len(wanted)
            if not wanted:
                return
            fresh = list({self._run(ln): ln for ln in wanted if self._run(ln) not in self._read}.values())
            results = recognize_lines([_render_line(page, ln.bbox, ln.turns or 0) for ln in fresh])
            self._read.update(zip((self._run(ln) for ln in fresh), results))
            self.recognised_lines += len(fresh)
            # a try is a round a glyph was read in: with many lines a round, a glyph in several
            # lines that do not align (a ligature, a misread) would otherwise be given up on
            # before the line that teaches it is counted
            self._tries.update({sym[:2] for line in wanted for sym in line.symbols})
            for line in wanted:
                text, score = self._read[self._run(line)]
                if score >= _MIN_SCORE and text.strip():
                    self._vote(line.symbols, text)

    @staticmethod
    def _run(line: _Line) -> tuple[tuple[Symbol, ...], int | None, float]:
        """A line's glyph run, writing direction and height (what its render depends on, not where)."""
        size = (line.bbox[3] - line.bbox[1]) if (line.turns or 0) % 2 == 0 else (line.bbox[2] - line.bbox[0])
        return line.symbols, line.turns, round(size, 1)

    def _pick(self, lines: list[_Line], limit: int) -> list[_Line]:
        """Lines that cover the most still-unknown glyphs, each glyph counted once; a run already
        read in this document is not read again (its votes are in: reading it would only spend
        a try of each of its glyphs)."""
        todo = {ln: {s[:2] for s in ln.symbols if not self._known(s) and self._tries[s[:2]] < _MAX_TRIES}
                for ln in lines if ln.turns is not None and self._run(ln) not in self._read}
        picked: list[_Line] = []
        covered: set[tuple[str, str]] = set()
        while len(picked) < limit:
            best = max(todo, key=lambda ln: len(todo[ln] - covered), default=None)
            if best is None or not todo[best] - covered:
                break
            picked.append(best)
            covered |= todo.pop(best)
        return picked

    def _vote(self, symbols: tuple[Symbol, ...], text: str) -> None:
        """Vote with the alignment of ``symbols`` to ``text`` that agrees best with what is
        already known; none when every candidate contradicts confident glyphs (a misread line)."""
        best, best_agree = None, -1.0
        for pairs in _alignments(symbols, text):
            agree = self._agreement(pairs)
            if agree > best_agree:
                best, best_agree = pairs, agree
        if best is None or best_agree < _CONSISTENT:
            return
        for sym, char in best:
            self.votes.setdefault(sym[:2], Counter())[char] += 1
            self._seen[sym[0]] += 1
            self._same[sym[0]] += char == sym[2]

    def _agreement(self, pairs: list[tuple[Symbol, str]]) -> float:
        """Share of confidently known glyphs in ``pairs`` read as learned (1.0 with < 2 known)."""
        known = agree = 0
        for sym, char in pairs:
            counter = self.votes.get(sym[:2])
            if counter:
                top, count = counter.most_common(1)[0]
                if count >= 2 and count >= 0.75 * sum(counter.values()):
                    known += 1
                    agree += top == char
        return agree / known if known >= 2 else 1.0


def _alignments(symbols: tuple[Symbol, ...], text: str) -> list[list[tuple[Symbol, str]]]:
    """Candidate (glyph, character) pairings of a line and what the recogniser read."""
    syms = [s for s in symbols if s[2] not in _SPACES]
    chars = "".join(text.split())
    if len(syms) == len(chars):
        return [list(zip(syms, chars))]
    words: list[list[Symbol]] = [[]]
    for sym in symbols:
        if sym[2] in _SPACES:
            if words[-1]:
                words.append([])
        else:
            words[-1].append(sym)
    words = [w for w in words if w]
    read = text.split()
    if len(words) == len(read):
        return [[pair for w, r in zip(words, read) if len(w) == len(r) for pair in zip(w, r)]]
    return _with_space_glyphs(list(symbols), " ".join(read))


def _with_space_glyphs(symbols: list[Symbol], text: str) -> list[list[tuple[Symbol, str]]]:
    """Broken fonts may draw the space as a glyph of their own (``3d-cube (2.2x)`` extracts as
    ``&-./012#3%4%56#``): align position by position, spaces included, allowing up to two
    glyphs at either end that the recogniser did not report (leading or trailing spaces)."""
    spare = len(symbols) - len(text)
    if not 0 <= spare <= 2:
        return []
    out = []
    for lead in range(spare + 1):
        pairs = list(zip(symbols[lead : lead + len(text)], text))
        if any(sym[2] in _SPACES and char != " " for sym, char in pairs):
            continue  # a real space against a character: not this alignment
        out.append([(sym, char) for sym, char in pairs if sym[2] not in _SPACES])
    return out


def _render_line(page: Any, bbox: Box, turns: int = 0) -> Any:
    """The line rendered so that its text height is about the recogniser's input height,
    turned to read left to right (vertical axis labels of charts)."""
    import numpy as np
    import pymupdf

    from ingest._render import pixmap_to_array, render

    x0, y0, x1, y1 = bbox
    size = (y1 - y0) if turns % 2 == 0 else (x1 - x0)
    pad = 0.15 * size
    rect = pymupdf.Rect(x0 - pad, y0 - pad, x1 + pad, y1 + pad) & page.rect
    dpi = int(max(72, min(600, _LINE_PX * 72 / max(size + 2 * pad, 1.0))))
    array = pixmap_to_array(render(page, dpi, rect))
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def _segments(chars: list[tuple[Symbol, Any]], bbox: Box, limit: int = _SEGMENT_CHARS) -> tuple[_Line, ...]:
    """A level line of more than ``limit`` characters (spaces aside) cut at its spaces into
    pieces of whole words of at most ``limit`` (a longer word is a piece of its own), each
    boxed from its characters' left and right and the line's top and bottom; () for a
    shorter line or one with no space to cut at (a font that draws its spaces as glyphs)."""
    if sum(1 for sym, _ in chars if sym[2] not in _SPACES) <= limit:
        return ()
    words: list[tuple[int, int]] = []  # [first, last] indices of each word's characters
    for i, (sym, _) in enumerate(chars):
        if sym[2] in _SPACES:
            continue
        if words and words[-1][1] == i - 1:
            words[-1] = (words[-1][0], i)
        else:
            words.append((i, i))
    if len(words) < 2:
        return ()
    groups: list[list[tuple[int, int]]] = [[]]
    size = 0  # letters in the last group
    for first, last in words:
        if groups[-1] and size + last - first + 1 > limit:
            groups.append([])
            size = 0
        groups[-1].append((first, last))
        size += last - first + 1
    pieces = []
    for group in groups:
        first, last = group[0][0], group[-1][1]
        span = chars[first : last + 1]  # the words and the spaces between them, as the line has them
        boxes = [box for sym, box in span if sym[2] not in _SPACES]
        piece = (min(float(b[0]) for b in boxes), bbox[1], max(float(b[2]) for b in boxes), bbox[3])
        pieces.append(_Line(piece, tuple(sym for sym, _ in span), 0))
    return tuple(pieces)


def _turns(direction: tuple[float, float]) -> int | None:
    """Quarter turns for a line's writing direction: (1, 0) none, (0, -1) up, (0, 1) down."""
    dx, dy = direction
    if abs(dy) < 1e-3 and dx > 0:
        return 0
    if abs(dx) < 1e-3:
        return -1 if dy < 0 else 1
    return None


def _raw_blocks(page: Any) -> list[list[_Line]]:
    """Text lines per block, each character with its font's full (subset-tagged) name."""
    import pymupdf

    flags = pymupdf.TEXTFLAGS_RAWDICT & ~pymupdf.TEXT_PRESERVE_IMAGES
    with _FONT_NAMES_LOCK:  # a process-wide MuPDF switch: on only while we read
        pymupdf.TOOLS.set_subset_fontnames(True)
        try:
            raw = page.get_text("rawdict", flags=flags)
            trace = page.get_texttrace()
        finally:
            pymupdf.TOOLS.set_subset_fontnames(False)
    glyphs: dict[tuple[str, float, float], int] = {}  # (font, origin) -> glyph id
    for span in trace:
        for char in span["chars"]:
            glyphs[(span["font"], round(char[2][0], 2), round(char[2][1], 2))] = char[1]

    def symbol(font: str, ch: dict[str, Any]) -> Symbol:
        gid = glyphs.get((font, round(ch["origin"][0], 2), round(ch["origin"][1], 2)))
        return (font, ch["c"] if gid is None or ch.get("synthetic") else f"#{gid}", ch["c"])

    blocks = []
    for b in raw["blocks"]:
        if b.get("type", 0) != 0:
            continue
        lines = []
        for line in b.get("lines", ()):
            chars = [(symbol(span["font"], ch), ch["bbox"]) for span in line.get("spans", ()) for ch in span.get("chars", ())]
            symbols = tuple(sym for sym, _ in chars)
            if any(c not in _SPACES for _, _, c in symbols):
                bbox: Box = tuple(float(v) for v in line["bbox"])  # type: ignore[assignment]
                turns = _turns(tuple(line.get("dir", (1.0, 0.0))))  # type: ignore[arg-type]
                lines.append(_Line(bbox, symbols, turns, _segments(chars, bbox) if turns == 0 else ()))
        if lines:
            blocks.append(lines)
    return blocks

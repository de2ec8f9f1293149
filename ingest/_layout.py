"""Pure layout functions: reading order of text blocks, chunking, caption detection.

Boxes here are plain ``(x0, y0, x1, y1)`` tuples in points; no PDF engine is needed,
so everything is testable with hand-made blocks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.types import BBox, TextBlock, TextChunk

__all__ = ["RawBlock", "block_from_lines", "keep_lines", "reading_order", "is_two_column", "make_chunks", "is_caption", "join_lines"]

Box = tuple[float, float, float, float]

# "Figure 3:", "Fig. 2.", "Table 1", "FIGURE 7-26.", "Table IV -", "Figure 13." ...
# The keyword is case-insensitive; after the number we need punctuation, the end, or a
# capitalised word, so that prose like "Figure 10 shows ..." is not a caption.
_CAPTION = re.compile(
    r"^\s*(?i:fig(?:ure)?s?\.?|tab(?:le)?\.?|chart|exhibit|plate|diagram|photo|image)\s*"
    r"(?:\d+(?:[.\-–]\d+)*[a-z]?|[IVXLC]+)\s*(?:[:.\-–—|]|$|(?=[A-Z(\[\"“]))"
)


@dataclass(frozen=True, slots=True)
class RawBlock:
    """A block of text as the engine (or OCR) gave it: box, text, and its lines."""

    bbox: Box
    text: str
    lines: tuple[tuple[Box, str], ...] = ()
    #: the font size most of its characters are set in (points; 0 when unknown, e.g. OCR)
    size: float = 0.0


def block_from_lines(lines: list[tuple[Box, str]]) -> RawBlock:
    """A block made of ``lines`` (non-empty): their union box and their joined text."""
    box = (min(b[0] for b, _ in lines), min(b[1] for b, _ in lines), max(b[2] for b, _ in lines), max(b[3] for b, _ in lines))
    return RawBlock(box, join_lines([t for _, t in lines]), tuple(lines))


def keep_lines(blocks: list[RawBlock], keep: Callable[[Box, str], bool]) -> list[RawBlock]:
    """``blocks`` with only the lines ``keep`` accepts; a block losing a line is rebuilt from
    the rest, a block losing all of them is dropped."""
    out = []
    for block in blocks:
        lines = list(block.lines) or [(block.bbox, block.text)]
        kept = [(box, text) for box, text in lines if keep(box, text)]
        if len(kept) == len(lines):
            out.append(block)
        elif kept:
            rebuilt = block_from_lines(kept)
            out.append(RawBlock(rebuilt.bbox, rebuilt.text, rebuilt.lines, block.size))
    return out


def is_caption(text: str) -> bool:
    """True for text that starts like a figure or table caption."""
    return bool(_CAPTION.match(text))


def join_lines(lines: list[str]) -> str:
    """Join wrapped lines into a paragraph, undoing end-of-line hyphenation of lowercase words."""
    out = ""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if not out:
            out = line
        elif out.endswith("-") and len(out) > 1 and out[-2].isalpha() and line[:1].islower():
            out = out[:-1] + line
        else:
            out = f"{out} {line}"
    return out


def is_two_column(blocks: list[RawBlock], page_width: float) -> bool:
    """Both halves of the page hold a real share of the text in blocks confined to one half."""
    mid, tol = page_width / 2, page_width * 0.02
    total = sum(len(b.text) for b in blocks) or 1
    left = [b for b in blocks if b.bbox[2] <= mid + tol]
    right = [b for b in blocks if b.bbox[0] >= mid - tol]
    share_l = sum(len(b.text) for b in left) / total
    share_r = sum(len(b.text) for b in right) / total
    return len(left) >= 2 and len(right) >= 2 and share_l >= 0.15 and share_r >= 0.15


def reading_order(blocks: list[RawBlock], page_width: float) -> list[RawBlock]:
    """Blocks in reading order: top to bottom; on two-column pages, left column then right
    column between full-width blocks (headings, wide figures and captions)."""
    if not blocks:
        return []
    by_y = _by_rows(blocks)
    if not is_two_column(blocks, page_width):
        return by_y
    mid, tol = page_width / 2, page_width * 0.02
    ordered: list[RawBlock] = []
    left: list[RawBlock] = []
    right: list[RawBlock] = []

    def flush() -> None:
        ordered.extend(left)
        ordered.extend(right)
        left.clear()
        right.clear()

    for b in by_y:
        if b.bbox[2] <= mid + tol:
            left.append(b)
        elif b.bbox[0] >= mid - tol:
            right.append(b)
        else:
            flush()
            ordered.append(b)
    flush()
    return ordered


def _by_rows(blocks: list[RawBlock]) -> list[RawBlock]:
    """Sort top to bottom, then left to right among blocks whose tops are within half a
    line of each other (OCR boxes of one row differ by a pixel or two)."""
    ordered = sorted(blocks, key=lambda b: (b.bbox[1], b.bbox[0]))
    keyed: list[tuple[int, float, RawBlock]] = []
    band, band_top = -1, float("-inf")
    for b in ordered:
        line_h = b.bbox[3] - b.bbox[1]
        if b.lines:
            line_h = min(lb[3] - lb[1] for lb, _ in b.lines)
        if b.bbox[1] > band_top + max(line_h, 1.0) * 0.5:
            band, band_top = band + 1, b.bbox[1]
        keyed.append((band, b.bbox[0], b))
    return [b for _, _, b in sorted(keyed, key=lambda k: (k[0], k[1]))]


def _split_long(text: str, limit: int) -> list[str]:
    """Cut text into pieces of at most ``limit`` chars, preferring sentence then word ends."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind(". "), window.rfind("? "), window.rfind("! "))
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 4:
            cut = limit - 1
        pieces.append(rest[: cut + 1].strip())
        rest = rest[cut + 1 :].strip()
    if rest:
        pieces.append(rest)
    return pieces


_SENTENCE_END = re.compile(r"[.!?][)\]\"”’]?\s+(?=[A-Z0-9(\[\"“‘])")


def _tail(text: str, n: int, fragment: bool = True) -> str:
    """The last ~n characters of text: all of it when it is at most 1.5 n long, else from a
    sentence start within the last 1.5 n characters (an overlap that begins mid-sentence embeds
    a fragment), else from a word boundary when ``fragment`` allows it, else nothing."""
    if len(text) <= 1.5 * n:
        return text
    found = _SENTENCE_END.search(text, len(text) - int(1.5 * n))
    if found is not None:
        return text[found.end() :]
    if not fragment:
        return ""
    cut = text.find(" ", len(text) - n)
    return text[cut + 1 :] if cut != -1 else text[-n:]


def make_chunks(
    blocks: list[TextBlock], chunk_chars: int, overlap_chars: int, sections: Sequence[tuple[str, ...]] | None = None
) -> list[TextChunk]:
    """Pack one page's blocks (in reading order) into chunks of about ``chunk_chars`` characters.

    Consecutive chunks share about ``overlap_chars`` characters. Each chunk keeps the union
    box of the blocks it came from and their boxes. Chunks never cross pages: call once
    per page. ``sections``: each block's section path; a chunk takes that of the block its
    first new (not overlapping) text came from.
    """
    if not blocks:
        return []
    if sections is not None and len(sections) != len(blocks):
        raise ValueError(f"{len(blocks)} blocks but {len(sections)} section paths")
    doc_id, page = blocks[0].doc_id, blocks[0].page
    segments: list[tuple[str, BBox]] = []
    seg_section: dict[int, tuple[str, ...]] = {}  # id of a segment's text box -> section
    for i, block in enumerate(blocks):
        for piece in _split_long(block.text, chunk_chars):
            seg = (piece, block.bbox)
            segments.append(seg)
            if sections is not None:
                seg_section[id(seg)] = sections[i]

    chunks: list[TextChunk] = []
    current: list[tuple[str, BBox]] = []

    def size(items: list[tuple[str, BBox]]) -> int:
        return sum(len(t) for t, _ in items) + max(len(items) - 1, 0)

    def emit() -> None:
        first_new = current[len(current) - fresh]
        section = seg_section.get(id(first_new), ())
        text = "\n".join(t for t, _ in current)
        boxes = list(dict.fromkeys(b for _, b in current))  # first-seen order, each box once (linear)
        union = boxes[0]
        for b in boxes[1:]:
            union = union.union(b)
        chunks.append(TextChunk(doc_id, page, len(chunks), text, union, tuple(boxes), section))

    fresh = 0  # segments in ``current`` that no earlier chunk holds
    held = 0  # size(current), kept as segments come and go (a page of 100,000 one-letter spans)
    for seg in segments:
        if current and fresh and held + 1 + len(seg[0]) > chunk_chars:
            emit()
            carried: list[tuple[str, BBox]] = []
            budget = overlap_chars
            for text, box in reversed(current):
                if budget <= 0:
                    break
                # only the last segment may be carried from mid-sentence: an earlier one
                # contributes whole sentences or nothing (never a stray word end like "sing.")
                part = _tail(text, budget, fragment=not carried)
                if not part:
                    break
                carried.insert(0, (part, box))
                budget -= len(part) + 1
            # the overlap must leave room for the new segment
            while carried and size(carried) + 1 + len(seg[0]) > chunk_chars:
                carried.pop(0)
            current = carried
            held = size(current)
            fresh = 0
        held += len(seg[0]) + (1 if current else 0)
        current.append(seg)
        fresh += 1
    if fresh:
        emit()
    return chunks

"""Navigation pages: tables of contents, back-of-book indexes and lists of figures or tables.

Such a page holds every topic word of its document and answers none of them, yet each of its
lines says exactly which page does ("Threads .......... 17", "threads, 17, 45-47"). This
module finds those pages and reads their lines as pointers to physical pages:

1. **rows**: the page's text lines, a page reference that sits alone at the right margin (a
   right-aligned column of numbers) joined to the title on its left, an index entry's
   continuation ("challenge of, \\n 228-48") joined to the entry;
2. **detection** by general cues (:func:`classify`): the share of rows that end in a page
   reference, dot leaders, references that grow down the page (contents) or terms in
   alphabetical order with comma-separated references (index); a "Contents" / "Index" /
   "List of Figures" heading lowers the bar but is never needed on its own;
3. **targets** (:class:`PageMap`): a printed reference maps to the physical page whose label
   it is (``/PageLabels``, :mod:`ingest._labels`); without labels (or when the labels disagree
   with the pages) to the page at an offset estimated from entries whose words appear on the
   page they point to; a contents entry whose title is an outline (bookmark) title takes the
   outline's page.

:class:`Navigator` holds one document's page map and answers per page; the reader calls it
after a page is extracted and stores the result on :class:`rag.types.Page`
(``navigation``, ``entries``).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag.types import BBox, NavEntry, NavKind, PageContent

__all__ = ["Row", "rows_of_lines", "page_rows", "classify", "entries_of", "PageMap", "Navigator", "Navigation", "with_navigation"]

log = logging.getLogger("ingest")

Box = tuple[float, float, float, float]

# a printed page reference: 12, 45-47, 324n, xiii, T-3, A.2
_REF = r"(?:\d{1,4}n?(?:\s*[\u2013\u2014-]\s*\d{1,4})?|[ivxlcdm]{1,7}|[A-Z]{1,2}[-.]\d{1,3})"
_TAIL = re.compile(rf"(?P<lead>[\s.\u00b7\u2026_]*?)(?P<refs>{_REF}(?:\s*[,;]\s*{_REF})*)\s*$")
_REF_TOKEN = re.compile(rf"(?<![\w.,]){_REF}(?![\w])")
_ONLY_REFS = re.compile(rf"^[\s.\u00b7\u2026_]*{_REF}(?:\s*[,;]\s*{_REF})*\s*$")
_LEADER = re.compile(r"(?:\.\s?){3,}|\u2026|(?:\u00b7\s?){3,}|_{3,}")
_NUMBERING = re.compile(r"^\s*(?:(?:chapter|section|part|appendix|figure|fig\.|table)\s+)?[\dA-Z]{0,3}(?:\.\d+)*\.?\s+", re.IGNORECASE)
_HEADINGS: dict[NavKind, re.Pattern[str]] = {
    "contents": re.compile(r"^\s*(?:table\s+of\s+)?contents?\b|^\s*(?:brief|detailed)\s+contents\b|^\s*inhalt", re.IGNORECASE),
    "index": re.compile(r"^\s*(?:general\s+|subject\s+|author\s+|name\s+)?index\b|^\s*register\b", re.IGNORECASE),
    "list": re.compile(r"^\s*list\s+of\s+(?:figures|tables|illustrations|listings|plates|exhibits)\b", re.IGNORECASE),
}
_MIN_ROWS = 4  # fewer pointers than this is a page that cites pages, not a navigation page


@dataclass(frozen=True, slots=True)
class Row:
    """One visual line of a page: its text before the page references, the references as printed
    (in order), whether dot leaders ran to them, and its box."""

    text: str
    refs: tuple[str, ...]
    box: Box
    leader: bool = False

    @property
    def pointer(self) -> bool:
        return bool(self.refs) and any(ch.isalpha() for ch in self.text)


def _split(text: str) -> tuple[str, tuple[str, ...], bool]:
    text = " ".join(text.split())
    m = _TAIL.search(text)
    if m is None or (m.start() > 0 and not (m.group("lead") or text[m.start() - 1] in " ,")):
        return text, (), False
    head = text[: m.start()].rstrip(" ,;:")
    refs = tuple(r.strip() for r in re.split(r"\s*[,;]\s*", m.group("refs")) if r.strip())
    return head, refs, bool(_LEADER.search(m.group("lead")) or _LEADER.search(head[-6:] + m.group("lead")))


def rows_of_lines(lines: Sequence[tuple[Box, str]]) -> list[Row]:
    """Rows from text lines (box, text) in reading order. A line that holds only page references
    joins the line on its left at the same height (a right-aligned number column) or, when the
    previous row ended with a comma, that row (an index entry's references wrapped)."""
    merged: list[tuple[Box, str]] = []
    for box, text in lines:
        if not text.strip():
            continue
        if _ONLY_REFS.match(text) and merged:
            cy = (box[1] + box[3]) / 2
            for k in range(len(merged) - 1, max(-1, len(merged) - 40), -1):
                b, t = merged[k]
                if b[1] <= cy <= b[3] and b[2] <= box[0] + 1 and not _ONLY_REFS.match(t):
                    merged[k] = ((b[0], min(b[1], box[1]), box[2], max(b[3], box[3])), f"{t} {text}")
                    break
            else:
                b, t = merged[-1]
                if t.rstrip().endswith(","):
                    merged[-1] = ((min(b[0], box[0]), b[1], max(b[2], box[2]), box[3]), f"{t} {text}")
                else:
                    merged.append((box, text))
            continue
        merged.append((box, text))
    rows = []
    for box, text in merged:
        head, refs, leader = _split(text)
        rows.append(Row(head, refs, box, leader))
    return rows


def page_rows(page: Any) -> list[Row]:
    """The rows of a PyMuPDF page, from its text lines (``get_text("dict")`` without image
    blocks: with them MuPDF copies every image's bytes into the dict, 7x the time on
    freeculture.pdf's pages)."""
    import pymupdf

    lines: list[tuple[Box, str]] = []
    flags = pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES
    for block in page.get_text("dict", flags=flags, sort=False).get("blocks", []):
        for line in block.get("lines", []):
            text = "".join(span.get("text", "") for span in line.get("spans", []))
            if text.strip():
                b = line["bbox"]
                lines.append(((float(b[0]), float(b[1]), float(b[2]), float(b[3])), text))
    return rows_of_lines(lines)


def _first_number(ref: str) -> int | None:
    m = re.match(r"\d+", ref)
    return int(m.group(0)) if m else None


def _sort_key(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())[:1]


def _share_in_order(values: Sequence[Any]) -> float:
    pairs = list(zip(values, values[1:]))
    return sum(1 for a, b in pairs if a <= b) / len(pairs) if pairs else 0.0


def classify(rows: Sequence[Row], is_ref: Any = None) -> NavKind | None:
    """What kind of navigation page ``rows`` are, or ``None`` (an ordinary page).

    ``is_ref(printed) -> bool`` says whether a printed reference names a page of the document
    (a label it has, or a number within its pages); references that name no page do not count
    (a table of measurements ends its rows in numbers too)."""
    text_rows = [r for r in rows if any(ch.isalpha() for ch in r.text) or r.refs]
    if not text_rows:
        return None
    valid = [r for r in text_rows if r.pointer and (is_ref is None or is_ref(r.refs[0]))]
    if len(valid) < _MIN_ROWS:
        return None
    heading: NavKind | None = None
    for r in text_rows[:4]:
        for kind, pattern in _HEADINGS.items():
            if heading is None and pattern.match(r.text) and len(r.text) < 40:
                heading = kind
    share = len(valid) / len(text_rows)
    leaders = sum(r.leader for r in valid)
    numbers = [n for r in valid if (n := _first_number(r.refs[0])) is not None]
    growing = _share_in_order(numbers) if len(numbers) >= 3 else 0.0
    many_refs = sum(len(r.refs) > 1 for r in valid) / len(valid)
    commas = sum(1 for r in valid if "," in r.text or len(r.refs) > 1) / len(valid)
    letters = [k for r in valid if (k := _sort_key(r.text))]
    alphabetical = _share_in_order(letters) if len(letters) >= 3 else 0.0
    bar = 0.3 if heading is not None or leaders >= 3 else 0.5
    if share < bar:
        return None
    if heading == "index" or (alphabetical >= 0.85 and (many_refs >= 0.15 or commas >= 0.3) and growing < 0.8):
        return "index"
    if growing >= 0.75 or leaders >= 0.5 * len(valid):
        titles = sum(1 for r in valid if re.match(r"\s*(?:fig(?:ure)?\.?|table|exhibit|plate)\s*\d", r.text, re.IGNORECASE))
        return "list" if heading == "list" or titles >= 0.6 * len(valid) else "contents"
    return None


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return re.findall(r"[^\W_]+", folded)


def _key(text: str) -> str:
    """The words an entry's target page should hold: its title without numbering, at most six."""
    words = _words(_NUMBERING.sub("", text, count=1))
    return " ".join(words[:6])


def entries_of(rows: Sequence[Row], kind: NavKind) -> list[tuple[str, str]]:
    """(entry text, printed reference) pairs; an index entry gives one pair per reference, and an
    indented sub-entry is read with its head term ("Congress, U.S.: on cable television")."""
    out: list[tuple[str, str]] = []
    head: tuple[float, str] | None = None
    for r in rows:
        text = r.text.strip(" .:,;")
        if not any(ch.isalpha() for ch in text):
            continue
        if kind == "index":
            if head is not None and r.box[0] > head[0] + 4:
                text = f"{head[1]}: {text}"
            else:
                head = (r.box[0], text)
            for ref in r.refs:
                out.append((text, ref))
        elif r.refs:
            out.append((text, r.refs[0]))
    return out


class PageMap:
    """Printed page references -> physical pages (1-based) of one open PyMuPDF document."""

    def __init__(self, doc: Any, labels: Sequence[str | None]) -> None:
        self.doc = doc
        self.count = int(doc.page_count)
        self.by_label: dict[str, int] = {}
        for i, label in enumerate(labels):
            if label and label not in self.by_label:
                self.by_label[label] = i + 1
        self._texts: dict[int, str] = {}
        self.offset: int | None = None  # chosen on the first entries seen; None: the labels
        self._decided = False
        self.outline: dict[str, int] = {}
        try:
            for _level, title, page in doc.get_toc(simple=True):
                key = _key(str(title))
                if key and 1 <= int(page) <= self.count:
                    self.outline.setdefault(key, int(page))
        except Exception as exc:  # noqa: BLE001 - a broken outline costs the outline only
            log.debug("%s: outline unreadable (%s)", getattr(doc, "name", "?"), exc)

    def is_ref(self, printed: str) -> bool:
        if printed in self.by_label:
            return True
        n = _first_number(printed)
        return n is not None and printed[:1].isdigit() and 1 <= n <= self.count + 60

    def _text(self, page: int) -> str:
        if page not in self._texts:
            self._texts[page] = " " + " ".join(_words(self.doc.load_page(page - 1).get_text())) + " "
        return self._texts[page]

    def _holds(self, page: int | None, key: str) -> bool:
        return page is not None and 1 <= page <= self.count and f" {key} " in self._text(page)

    def _by_offset(self, printed: str, offset: int) -> int | None:
        if not printed[:1].isdigit():
            return None
        n = _first_number(printed)
        page = None if n is None else n + offset
        return page if page is not None and 1 <= page <= self.count else None

    def decide(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Choose between the labels and an offset by how many entries' words appear on the page
        they would point to (the labels win a tie; with neither, printed numbers are physical)."""
        if self._decided:
            return
        sample = [(key, ref) for text, ref in pairs if len(key := _key(text)) >= 4][:40]
        if not sample:
            return
        self._decided = True
        label_support = sum(self._holds(self.by_label.get(ref), key) for key, ref in sample) if self.by_label else -1
        best, best_support = 0, -1
        for offset in range(-2, min(80, self.count)):
            support = sum(self._holds(self._by_offset(ref, offset), key) for key, ref in sample)
            if support > best_support:
                best, best_support = offset, support
        if label_support >= best_support or (self.by_label and best_support < 2):
            self.offset = None
        else:
            self.offset = best if best_support >= 2 else 0
        log.debug("%s: page references via %s (support labels=%d, offset %d: %d)", getattr(self.doc, "name", "?"),
                  "labels" if self.offset is None else f"offset {self.offset}", label_support, best, best_support)

    def target(self, text: str, printed: str, outline: bool = False) -> int | None:
        if outline and (page := self.outline.get(_key(text))) is not None:
            return page
        if self.offset is None and self.by_label:
            return self.by_label.get(printed)
        return self._by_offset(printed, 0 if self.offset is None else self.offset)


@dataclass(frozen=True, slots=True)
class Navigation:
    """What a navigation page is, its entries, and the region they fill (not a table or a figure)."""

    kind: NavKind
    entries: tuple[NavEntry, ...]
    region: BBox


class Navigator:
    """One document's navigation reader: ``read(index)`` for each page (0-based)."""

    def __init__(self, doc: Any, labels: Sequence[str | None]) -> None:
        self.doc = doc
        self.map = PageMap(doc, labels)

    def read(self, index: int, text: str) -> Navigation | None:
        """The navigation of page ``index`` (0-based), ``None`` for an ordinary page. ``text`` is
        the page's extracted text, a cheap first test (few lines ending in a reference: no work)."""
        if len(_REF_TOKEN.findall(text)) < _MIN_ROWS:
            return None
        rows = page_rows(self.doc.load_page(index))
        kind = classify(rows, self.map.is_ref)
        if kind is None:
            return None
        pairs = entries_of([r for r in rows if r.pointer and self.map.is_ref(r.refs[0])], kind)
        self.map.decide(pairs)
        entries = []
        seen: set[tuple[str, int]] = set()
        for entry_text, printed in pairs:
            page = self.map.target(entry_text, printed, outline=kind != "index")
            if page is None or page == index + 1 or (entry_text, page) in seen:
                continue
            seen.add((entry_text, page))
            entries.append(NavEntry(entry_text[:200], page, printed))
        if len(entries) < _MIN_ROWS:
            return None
        boxes = [r.box for r in rows if r.pointer]
        region = BBox(min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        log.debug("page %d: %s page with %d entries", index + 1, kind, len(entries))
        return Navigation(kind, tuple(entries), region)


def with_navigation(content: PageContent, nav: Navigation | None) -> PageContent:
    """``content`` with its page marked as a navigation page and its entries; tables and figures
    found in the entries' region are dropped (a contents page is not a table). Unchanged when
    ``nav`` is ``None``."""
    if nav is None:
        return content
    page = replace(content.page, navigation=nav.kind, entries=nav.entries)
    figures = tuple(f for f in content.figures if f.bbox.intersection_area(nav.region) < 0.5 * max(f.bbox.area, 1e-6))
    if len(figures) < len(content.figures):
        log.debug("page %d: %d table/figure regions inside its %s dropped", page.page, len(content.figures) - len(figures), nav.kind)
    return replace(content, page=page, figures=figures)

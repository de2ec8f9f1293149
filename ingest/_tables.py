"""Tables on a PDF page: a cheap test of whether a page can hold one, and the (slow) finder.

PyMuPDF's ``find_tables`` runs a layout model (an ONNX graph network over the page's text
boxes and a rendered image of the page) before its line-based finder: 0.3-2.5 s of CPU per
page on papers, whether or not the page holds a table, where the rest of a page's extraction
costs tens of milliseconds. :func:`may_have_tables` decides from what the page's extraction
already has (its text lines and its drawn elements) whether that call is worth making.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest._figures import THIN, Element
from ingest._layout import RawBlock, is_caption

__all__ = ["find_tables", "may_have_tables", "table_cues", "side_by_side_rows", "split_merged_rows", "unstruck"]

logger = logging.getLogger("ingest")
Box = tuple[float, float, float, float]
# a caption that names a table (or an exhibit, which often is one); other captions (figure,
# chart, plate, photo, ...) are a table cue only on a page with side-by-side text
_TABLE_LABEL = re.compile(r"^\s*(?i:tab(?:le)?s?\.?|exhibit)\s*(?:\d|[IVXLC]+\b)")
_MIN_ROWS = 3  # rows of a cue: a table has a header and at least two rows under it
# ruling lines of a grid: three can be a header rule, a footnote rule and a frame; twice as many
# rule a table's rows or columns (a cue as strong as two)
_GRID_RULES = 6


def _box(b: Any) -> Box:
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


#: PyMuPDF's markdown marks a span that a drawn line crosses as struck out (``201~~1~~``): in a
#: table that is a ruling line or a footnote mark's rule far more often than deleted text
_STRUCK = re.compile(r"~~(.+?)~~")


def unstruck(markdown: str) -> str:
    """``markdown`` without strike-out marks: the text they wrapped stays (``2 July 201~~1~~``
    reads ``2 July 2011``)."""
    return _STRUCK.sub(r"\1", markdown)


def split_merged_rows(markdown: str) -> str:
    """Split table rows the finder merged back into one row per line.

    Tables without ruling lines come back with several rows in one, every cell holding
    the same number of ``<br>``-separated lines; such a row becomes that many rows.
    """
    out: list[str] = []
    for line in markdown.strip().splitlines():
        cells = line.strip().strip("|").split("|")
        parts = [c.split("<br>") for c in cells]
        counts = {len(p) for p, c in zip(parts, cells) if c.strip()}
        if len(counts) == 1 and (k := counts.pop()) > 1:
            for i in range(k):
                out.append("|" + "|".join(p[i].strip() if len(p) == k else "" for p in parts) + "|")
        else:
            out.append("|" + "|".join(c.replace("<br>", " ").strip() for c in cells) + "|")
    return "\n".join(out)


def blank_unnamed_header(markdown: str) -> str:
    """``markdown`` with the header cells PyMuPDF found empty left blank: it names the i-th such
    cell ``Coli`` ("|Col1|Loops|Trees|"), a word that is on no page and was embedded and indexed
    with the table, and quoted in its sources."""
    first, sep, rest = markdown.partition("\n")
    cells = first.strip().strip("|").split("|")
    # a space, not nothing: readers split a row by stripping its outer pipes ("||Loops|" would
    # lose its first cell and the header its alignment with the rows)
    blanked = [" " if c.strip() == f"Col{i}" else c for i, c in enumerate(cells, start=1)]
    if blanked == cells:
        return markdown
    return "|" + "|".join(blanked) + "|" + sep + rest


def find_tables(page: Any, path: Path, n: int) -> list[tuple[Box, str]]:
    """Tables as (box, markdown); a failure of the table finder costs the tables, not the page."""
    try:
        found = page.find_tables()
    except Exception as exc:  # the finder is heuristic code; never let it sink the document
        logger.warning("%s page %d: table detection failed (%s); tables skipped", path.name, n, exc)
        return []
    if found is None:
        return []
    out = []
    with _page_read_once([tab.textpage for tab in found.tables]):
        for tab in found.tables:
            try:
                if tab.row_count < 2 or tab.col_count < 2:
                    continue
                out.append((_box(tab.bbox), blank_unnamed_header(split_merged_rows(unstruck(tab.to_markdown(clean=False))))))
            except Exception as exc:  # noqa: BLE001 - same reason as above
                logger.debug("%s page %d: skipping a table (%s)", path.name, n, exc)
    return out


@contextlib.contextmanager
def _page_read_once(textpages: list[Any]) -> Iterator[None]:
    """While open, each text page answers ``extractRAWDICT()`` from one reading.

    PyMuPDF's ``Table.to_markdown`` reads each cell's text with ``extract_cells``, which asks the
    page's text page for the whole page as a raw dict once per cell: a 5 x 10 table of
    tracemonkey.pdf took 0.51 s of CPU, 0.015 s with one reading, the same markdown. The cells
    only read the dict; the text page does not change while its tables are written out."""
    patched = []
    for textpage in {id(tp): tp for tp in textpages if tp is not None}.values():
        try:
            original = textpage.extractRAWDICT
            raw = original()

            def once(*args: Any, _raw: Any = raw, _original: Any = original, **kwargs: Any) -> Any:
                return _raw if not args and not kwargs else _original(*args, **kwargs)

            textpage.extractRAWDICT = once
        except Exception:  # noqa: BLE001 - an unexpected text page keeps PyMuPDF's own reading
            continue
        patched.append(textpage)
    try:
        yield
    finally:
        for textpage in patched:
            with contextlib.suppress(AttributeError):
                del textpage.extractRAWDICT


def _rows(blocks: list[RawBlock]) -> dict[int, list[Box]]:
    """The page's text lines by row: 2-pt bins of the line centre."""
    rows: dict[int, list[Box]] = {}
    for b in blocks:
        for lb, _ in b.lines or ((b.bbox, b.text),):
            rows.setdefault(round((lb[1] + lb[3]) / 4), []).append(lb)
    return rows


def side_by_side_rows(blocks: list[RawBlock], page_width: float) -> int:
    """Rows where two separate text lines sit side by side across a gap that is not the page's
    column gutter: cells of a borderless table, code beside its comments, a label beside its
    value. Two-column prose does not count: the gap between its columns spans the page centre."""
    mid, tol = page_width / 2, page_width * 0.02
    count = 0
    for boxes in _rows(blocks).values():
        boxes.sort()
        if any(right[0] - left[2] >= 1.0 and not (left[2] <= mid + tol and right[0] >= mid - tol)
               for left, right in zip(boxes, boxes[1:])):
            count += 1
    return count


def table_cues(blocks: list[RawBlock], elements: list[Element], page_width: float | None = None, *,
               text_layer: bool = True) -> int:
    """How many table cues of :func:`may_have_tables` a page shows (0..4): ruling lines (two
    for a ruled grid of :data:`_GRID_RULES` or more, one for fewer); rows of cells; a caption
    (one naming a table, or any other on a page with side-by-side text). Without a text layer
    only ruling lines can count."""
    rules = sum(
        1 for e in elements if not e.is_image and min(e.bbox[2] - e.bbox[0], e.bbox[3] - e.bbox[1]) < THIN
        and max(e.bbox[2] - e.bbox[0], e.bbox[3] - e.bbox[1]) >= 30
    )
    cues = 2 if rules >= _GRID_RULES else int(rules >= 3)
    if not text_layer:
        return cues
    cues += sum(1 for boxes in _rows(blocks).values() if len(boxes) >= 3) >= _MIN_ROWS
    captions = [b.text for b in blocks if is_caption(b.text)]
    if any(_TABLE_LABEL.match(text) for text in captions):
        return cues + 1
    return cues + (bool(captions) and (page_width is None or side_by_side_rows(blocks, page_width) >= _MIN_ROWS))


def may_have_tables(blocks: list[RawBlock], elements: list[Element], page_width: float | None = None, *,
                    text_layer: bool = True, min_cues: int = 1) -> bool:
    """Cheap test before the (slow) table finder: at least ``min_cues`` of these cues
    (:func:`table_cues`; the fast profile asks for two, ``ingest.table_cues``):

    - ruling lines: 3 or more thin drawn lines at least 30 pt long (6 or more, a ruled grid,
      count as two cues);
    - rows of cells: 3 or more rows where 3 or more separate text lines sit side by side
      (two-column prose has 2 per row and does not qualify);
    - a caption that names a table ("Table 2", "Tab. IV", "Exhibit 3"), or any other caption
      ("Figure 13.": papers label tables and code listings as figures) on a page with 3 or more
      :func:`side_by_side_rows` (checked only when ``page_width`` is given; without it any
      caption counts).

    ``text_layer=False`` (the PDF page holds no text, e.g. a scan whose ``blocks`` came from
    OCR): only ruling lines count, and they are enough whatever ``min_cues`` says. The finder
    reads the PDF's text and drawings, not OCR, so on such a page it finds a table only where
    lines are drawn.

    What this misses: a table with no ruling lines, no "Table" caption and fewer than three
    rows that separate into side-by-side text lines (rows whose cells the PDF engine merges
    into one line because the column gaps are narrow), e.g. a borderless table captioned
    "Figure 4" whose cells sit a space apart. With ``min_cues=2``, also a table that shows a
    single cue: a table under three to five rules without a caption and with merged rows, a
    captioned one whose cells the engine merges.
    """
    return table_cues(blocks, elements, page_width, text_layer=text_layer) >= (min_cues if text_layer else 1)

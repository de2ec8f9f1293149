"""Where the figures and tables on a page are, and which caption belongs to each.

Pure geometry on ``(x0, y0, x1, y1)`` tuples: clustering drawn elements into regions,
growing a region over its labels, classifying it, and matching captions by layout.
The PDF engine calls live in ``_pdf.py``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ingest._layout import RawBlock, is_caption

__all__ = ["Element", "Region", "cluster_regions", "grow_over_labels", "is_decoration", "match_captions", "inside_share"]

Box = tuple[float, float, float, float]
THIN = 2.0  # a drawing thinner than this (points) is a rule or a line


@dataclass(frozen=True, slots=True)
class Element:
    """One drawn thing on a page: a vector path/shading or an image."""

    bbox: Box
    is_image: bool


@dataclass(slots=True)
class Region:
    """A cluster of drawn elements: a candidate figure."""

    bbox: Box
    n_images: int = 0
    n_drawings: int = 0
    n_thick: int = 0
    image_area: float = 0.0
    members: list[Box] = field(default_factory=list)

    @property
    def source(self) -> str:
        area = _area(self.bbox) or 1.0
        if self.n_images and (self.image_area >= 0.5 * area or self.n_images >= self.n_drawings):
            return "raster"
        return "vector"


def _area(b: Box) -> float:
    return max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _near(a: Box, b: Box, gap: float) -> bool:
    return a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]


def inside_share(inner: Box, outer: Box) -> float:
    """Share of ``inner``'s area that lies inside ``outer`` (1.0 for a degenerate inner inside)."""
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    if w < 0 or h < 0:
        return 0.0
    a = _area(inner)
    return 1.0 if a == 0 else (w * h) / a


def _union_find_clusters(boxes: list[Box], gap: float, cell: float = 64.0) -> list[list[int]]:
    """Group boxes whose gap-expanded rectangles touch; grid buckets keep it near linear."""
    parent = list(range(len(boxes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    grid: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, b in enumerate(boxes):
        gx0, gy0 = int((b[0] - gap) // cell), int((b[1] - gap) // cell)
        gx1, gy1 = int((b[2] + gap) // cell), int((b[3] + gap) // cell)
        seen: set[int] = set()
        for gx in range(gx0, gx1 + 1):
            for gy in range(gy0, gy1 + 1):
                for j in grid[(gx, gy)]:
                    if j in seen:
                        continue
                    seen.add(j)
                    if _near(b, boxes[j], gap):
                        ri, rj = find(i), find(j)
                        if ri != rj:
                            parent[ri] = rj
                grid[(gx, gy)].append(i)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(boxes)):
        groups[find(i)].append(i)
    return list(groups.values())


def _merge_overlapping(regions: list[Region], gap: float) -> list[Region]:
    changed = True
    while changed:
        changed = False
        out: list[Region] = []
        for r in regions:
            for o in out:
                if _near(r.bbox, o.bbox, gap):
                    o.bbox = _union(o.bbox, r.bbox)
                    o.n_images += r.n_images
                    o.n_drawings += r.n_drawings
                    o.n_thick += r.n_thick
                    o.image_area += r.image_area
                    o.members.extend(r.members)
                    changed = True
                    break
            else:
                out.append(r)
        regions = out
    return regions


def cluster_regions(
    elements: list[Element],
    page_box: Box,
    exclude: list[Box] = (),  # type: ignore[assignment]
    gap: float = 6.0,
) -> list[Region]:
    """Cluster drawn elements into candidate figure regions.

    Dropped before clustering: elements mostly outside the page, page-wide backgrounds and
    borders (>= 85 % of the page in both directions), and elements inside ``exclude``
    boxes (tables already found). Regions made only of thin rules are dropped after.
    """
    pw, ph = page_box[2] - page_box[0], page_box[3] - page_box[1]
    kept: list[Element] = []
    for e in elements:
        if inside_share(e.bbox, page_box) < 0.8:
            continue  # mostly off the page: a clipped shape whose visible part is unknown
        b = (max(e.bbox[0], page_box[0]), max(e.bbox[1], page_box[1]), min(e.bbox[2], page_box[2]), min(e.bbox[3], page_box[3]))
        if b[2] < b[0] or b[3] < b[1] or (b[2] - b[0] <= 0 and b[3] - b[1] <= 0):
            continue
        if (b[2] - b[0]) >= 0.85 * pw and (b[3] - b[1]) >= 0.85 * ph:
            continue
        if any(inside_share(b, x) >= 0.8 for x in exclude):
            continue
        kept.append(Element(b, e.is_image))
    regions: list[Region] = []
    for group in _union_find_clusters([e.bbox for e in kept], gap):
        r = Region(kept[group[0]].bbox)
        for i in group:
            e = kept[i]
            r.bbox = _union(r.bbox, e.bbox)
            r.members.append(e.bbox)
            thick = min(e.bbox[2] - e.bbox[0], e.bbox[3] - e.bbox[1]) >= THIN
            if e.is_image:
                r.n_images += 1
                r.image_area += _area(e.bbox)
            else:
                r.n_drawings += 1
            r.n_thick += int(thick)
        regions.append(r)
    regions = _merge_overlapping(regions, gap)
    return [r for r in regions if r.n_images or r.n_thick or r.n_drawings >= 3]


def is_decoration(region: Region, min_side: float = 8.0) -> bool:
    """Drawn, but not a figure: a rule or bar (no image, under ``min_side`` points across: the
    line under a manual's title), or an outline with nothing drawn inside (only thin lines, each
    along one of the region's edges: a table whose cells the PDF lost, a frame around text that
    the text layer already holds)."""
    if region.n_images:
        return False
    x0, y0, x1, y1 = region.bbox
    if min(x1 - x0, y1 - y0) < min_side:
        return True
    if region.n_thick:
        return False
    tol = 2 * THIN

    def along_an_edge(b: Box) -> bool:
        return any(abs(b[lo] - edge) <= tol and abs(b[hi] - edge) <= tol
                   for lo, hi, edge in ((0, 2, x0), (0, 2, x1), (1, 3, y0), (1, 3, y1)))

    return all(along_an_edge(m) for m in region.members)


def grow_over_labels(
    region: Box, lines: list[tuple[Box, str]], margin: float = 12.0, max_label_chars: int = 60
) -> Box:
    """Extend a figure box over the short text lines touching it (axis labels, legends, ticks)."""
    box = region
    for _ in range(3):
        grown = box
        for lb, text in lines:
            if inside_share(lb, box) >= 0.5 or len(text.strip()) > max_label_chars or is_caption(text):
                continue
            if _near(lb, box, margin) and (lb[2] - lb[0]) <= 1.2 * (box[2] - box[0]):
                grown = _union(grown, lb)
        if grown == box:
            break
        box = grown
    return box


def match_captions(
    figures: list[Box], blocks: list[RawBlock], max_gap: float = 40.0, min_overlap: float = 0.3
) -> dict[int, RawBlock]:
    """Pair figures with the caption block nearest above or below them.

    A caption must overlap the figure horizontally (by ``min_overlap`` of the narrower
    width) and lie within ``max_gap`` points vertically (or inside it). Each caption
    goes to one figure; the closest pairs win.
    """
    captions = [b for b in blocks if is_caption(b.text)]
    pairs: list[tuple[float, int, int]] = []
    for fi, f in enumerate(figures):
        for ci, c in enumerate(captions):
            cb = c.bbox
            overlap = min(f[2], cb[2]) - max(f[0], cb[0])
            narrow = min(f[2] - f[0], cb[2] - cb[0]) or 1.0
            if overlap < min_overlap * narrow:
                continue
            if cb[1] >= f[3] - 2:  # below
                gap = cb[1] - f[3]
            elif cb[3] <= f[1] + 2:  # above: a little worse than the same gap below
                gap = f[1] - cb[3] + 2.0
            else:  # inside or overlapping the figure
                gap = 0.0
            if gap <= max_gap:
                pairs.append((max(gap, 0.0), fi, ci))
    out: dict[int, RawBlock] = {}
    used: set[int] = set()
    for _, fi, ci in sorted(pairs):
        if fi in out or ci in used:
            continue
        out[fi] = captions[ci]
        used.add(ci)
    return out

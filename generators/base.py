"""The generator role, the numbered evidence a generator is given, and the citation prompt.

Every generator answers a question from page-level hits:

- :func:`build_context` turns hits into numbered :class:`ContextItem` records (marker 1, 2, ...).
  Only these markers may be cited: :mod:`generators.markers` rejects any other.
- :func:`build_prompt` renders the evidence and the question into the text prompt that asks
  for citations like ``[1]`` or ``[2][3]``; :func:`select_images` picks which page images or
  figure crops a vision model sees.
- A :class:`Generator` returns a :class:`rag.types.Answer`; tokens can be streamed to an
  ``on_token`` callback as they are produced. ``Answer.timings`` holds seconds since the call
  started: ``prepare`` (inputs built; model generators), ``first_token`` and ``generate``
  (the whole call). ``Answer.generator`` is the generator's ``name`` (``extractive``,
  ``local:<model folder name>``, ``openai:<model>``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from rag.types import Answer, BBox, Evidence, Hit

__all__ = [
    "Generator",
    "StreamingGenerator",
    "ContextItem",
    "TokenCallback",
    "SYSTEM_PROMPT",
    "NO_ANSWER",
    "build_context",
    "format_context",
    "build_prompt",
    "select_images",
    "image_caption",
    "Stopwatch",
    "MARKER_RE",
]

#: One bracket group of comma-separated numbers: ``[1]``, ``[2, 3]``, ``[ 4 ]``.
MARKER_RE = re.compile(r"\[\s*(\d{1,4}(?:\s*,\s*\d{1,4})*)\s*\]")

TokenCallback = Callable[[str], None]

#: Instructions given to model-based generators (system message / head of the prompt).
SYSTEM_PROMPT = (
    "You answer questions about documents using only the numbered evidence you are given "
    "(text excerpts, tables, figures and page images). Cite the evidence after every claim "
    "with its number in square brackets, like [1] or [2][3]. Only cite numbers that appear in "
    "the evidence list. If the evidence does not contain the answer, say that you could not "
    "find it. Be concise."
)

#: What a generator says when the evidence holds nothing relevant.
NO_ANSWER = "I could not find an answer to this question in the retrieved documents."


@runtime_checkable
class Generator(Protocol):
    """Answers a question from hits, with citations; also completes plain prompts.

    ``generate`` returns the final :class:`rag.types.Answer`; when ``on_token`` is given it is
    called with each piece of text as it is produced (their concatenation is the raw text
    before invalid citation markers are removed and, for model generators, before the citations
    are checked against their evidence, :mod:`generators.grounding`). ``phrases`` are the question's quoted phrases
    as search read them (:func:`rag.phrases.quoted_phrases`); ``None`` (not given): read from
    the question where a generator uses them. ``complete`` is a plain text completion
    (used e.g. by an LLM router); generators that cannot do it raise
    :class:`rag.errors.GeneratorError`.
    """

    name: str

    def generate(
        self, question: str, hits: Sequence[Hit], *, on_token: TokenCallback | None = None, phrases: Sequence[str] | None = None
    ) -> Answer: ...

    def complete(self, prompt: str) -> str: ...


@runtime_checkable
class StreamingGenerator(Generator, Protocol):
    """A generator that can also hand out the raw answer text as an iterator of pieces."""

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[str]: ...


@dataclass(frozen=True, slots=True)
class ContextItem:
    """One numbered piece of evidence given to a generator.

    ``image_path`` is the rendered page image (what a citation highlight is drawn on);
    ``crop_path`` is the evidence's own image (a figure or table crop) when it has one.
    ``bbox`` is in PDF points on the page. ``rank`` is the 0-based rank of the hit it came from.
    """

    marker: int
    doc_id: str
    source: str
    page: int
    bbox: BBox | None
    text: str
    image_path: Path | None = None
    label: str | None = None
    kind: str = "chunk"
    crop_path: Path | None = None
    rank: int = 0
    score: float = 0.0
    section: tuple[str, ...] = ()
    #: seconds into a video or audio file (None elsewhere)
    start: float | None = None
    end: float | None = None

    @property
    def visual(self) -> Path | None:
        """The image a vision model should see for this item: the crop, else the page."""
        return self.crop_path if self.crop_path is not None else self.image_path


def _page_evidence(hit: Hit) -> Evidence:
    return Evidence(corpus=hit.corpus, kind="page", text="", score=hit.score, bbox=hit.bbox, image_path=hit.image_path,
                    start=hit.start, end=hit.end)


def _item(hit: Hit, rank: int, ev: Evidence, max_chars: int) -> ContextItem:
    lines = (" ".join(line.split()) for line in ev.text.splitlines())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    # footnote numbers in the source ("Firefox[4]") would read as citation markers: "(4)"
    text = MARKER_RE.sub(r"(\1)", text)
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    page_image = hit.image_path if hit.image_path is not None else (ev.image_path if ev.kind == "page" else None)
    # a chunk's stored image is its page's: only an image of its own (a figure or table crop) is a crop
    crop = ev.image_path if ev.kind != "page" and ev.image_path != page_image else None
    return ContextItem(
        marker=0,
        doc_id=hit.doc_id,
        source=hit.source,
        page=hit.page,
        bbox=ev.bbox if ev.bbox is not None else hit.bbox,
        text=text,
        image_path=page_image,
        label=hit.label,
        kind=ev.kind,
        crop_path=crop,
        rank=rank,
        score=ev.score,
        section=ev.section,
        start=ev.start if ev.start is not None else hit.start,
        end=ev.end if ev.start is not None else hit.end,
    )


def build_context(hits: Sequence[Hit], *, max_items: int = 8, max_chars: int = 1200) -> list[ContextItem]:
    """Number the evidence a generator is given, starting at 1.

    First one item per hit (its best evidence; a hit without evidence becomes a page item),
    in hit order, up to ``max_items``; then, while the budget lasts, further evidence of the
    top hits in order. Items are numbered grouped by hit (hit rank, then evidence rank), so
    evidence from one page sits together. Duplicate evidence (same ``point_id``, or same page
    and text) is given once.

    Texts keep their line breaks (table rows, hyphenated line ends) with runs of spaces
    collapsed, and are cut to ``max_chars`` characters. Bracketed numbers inside evidence text
    (footnotes such as ``Firefox[4]``) become ``(4)`` so they cannot be mistaken for
    citation markers.
    """
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    chosen: list[tuple[int, int, Hit, Evidence]] = []
    seen: set[tuple] = set()

    def take(rank: int, ev_rank: int, hit: Hit, ev: Evidence) -> None:
        key = ("id", ev.point_id) if ev.point_id else ("text", hit.doc_id, hit.page, ev.kind, ev.text, ev.bbox)
        if key in seen or len(chosen) >= max_items:
            return
        seen.add(key)
        chosen.append((rank, ev_rank, hit, ev))

    for rank, hit in enumerate(hits):
        take(rank, 0, hit, hit.evidence[0] if hit.evidence else _page_evidence(hit))
    for rank, hit in enumerate(hits):
        for ev_rank, ev in enumerate(hit.evidence[1:], start=1):
            take(rank, ev_rank, hit, ev)
    chosen.sort(key=lambda c: (c[0], c[1]))
    return [replace(_item(hit, rank, ev, max_chars), marker=m) for m, (rank, _, hit, ev) in enumerate(chosen, start=1)]


def _heading(item: ContextItem) -> str:
    page = f"page {item.page}" + (f" (printed {item.label})" if item.label and item.label != str(item.page) else "")
    return f"[{item.marker}] {item.source}, {page}, {item.kind}"


def format_context(items: Sequence[ContextItem]) -> str:
    """Render numbered evidence as text: ``[n] source, page p, kind`` then its text."""
    blocks = []
    for item in items:
        body = item.text if item.text else "(see the image of this page)"
        blocks.append(f"{_heading(item)}:\n{body}")
    return "\n\n".join(blocks)


def build_prompt(question: str, items: Sequence[ContextItem]) -> str:
    """The user prompt: the numbered evidence, the question, and the citation instruction."""
    evidence = format_context(items) if items else "(no evidence was found)"
    return (
        f"Evidence:\n{evidence}\n\n"
        f"Question: {question}\n"
        "Answer using only the evidence above and cite it with its numbers in square brackets, like [1]."
    )


def select_images(items: Sequence[ContextItem], max_images: int) -> list[ContextItem]:
    """The items whose image a vision model sees: first ``max_images`` distinct images by marker."""
    chosen: list[ContextItem] = []
    seen: set[Path] = set()
    for item in items:
        if len(chosen) >= max_images:
            break
        path = item.visual
        if path is None or path in seen or not Path(path).is_file():
            continue
        seen.add(path)
        chosen.append(item)
    return chosen


def image_caption(item: ContextItem) -> str:
    """The text placed before an image so the model knows which marker it belongs to."""
    what = "figure" if item.crop_path is not None else "page image"
    return f"Image for [{item.marker}] ({what}, {item.source}, page {item.page}):"


class Stopwatch:
    """Collects named durations in seconds for ``Answer.timings``."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, name: str) -> None:
        """Record the time since the stopwatch started under ``name``."""
        self.timings[name] = round(time.perf_counter() - self._start, 6)

    def iterate(self, chunks: Iterator[str], on_token: TokenCallback | None) -> Iterator[str]:
        """Pass chunks through, recording ``first_token`` and calling ``on_token``."""
        for chunk in chunks:
            if not chunk:
                continue
            if "first_token" not in self.timings:
                self.lap("first_token")
            if on_token is not None:
                on_token(chunk)
            yield chunk

"""Citation markers in generated text -> :class:`rag.types.Citation` records.

Markers are numbers in square brackets: ``[1]``, ``[2, 3]``, ``[1][3]`` (spaces inside the
brackets are allowed: ``[ 2 ]``; the pattern is :data:`generators.base.MARKER_RE`). Each number
names a :class:`generators.base.ContextItem`.

**Invalid markers are stripped from the text.** A number that names no evidence given to the
model (``[7]`` when five items were given, ``[0]``) is removed from its bracket group; a group
left empty is removed with the space before it. The answer text therefore only ever shows
markers that resolve to a citation; the rejected numbers are reported in
:attr:`CitationResult.rejected` and logged as a warning. They are never cited.

With ``check=True`` (the model-written answers of the local VLM and OpenAI-compatible
generators) :func:`cited_answer` also checks each cited clause against the evidence its markers
name (:mod:`generators.grounding`): markers whose evidence does not hold the clause's claims are
removed, citations no marker names any more are dropped (the markers left keep their numbers),
and the sentences left uncited are listed in :attr:`rag.types.Answer.unsupported`.

Boxes are narrowed to the cited passage by :mod:`generators.matching`; crops with the box
drawn are written by :mod:`generators.highlights`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rag.types import Answer, Citation

from generators.base import MARKER_RE, ContextItem
from generators.grounding import evidence_texts, ground

__all__ = ["CitationResult", "parse_markers", "resolve_citations", "cited_answer"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CitationResult:
    """The text with invalid markers stripped, the citations in order of first use, the rejects."""

    text: str
    citations: tuple[Citation, ...]
    rejected: tuple[int, ...] = ()


def parse_markers(text: str) -> list[int]:
    """Every marker number in ``text``, in order of appearance, duplicates kept."""
    return [int(n) for m in MARKER_RE.finditer(text) for n in m.group(1).split(",")]


def _citation(item: ContextItem) -> Citation:
    return Citation(
        marker=item.marker,
        doc_id=item.doc_id,
        source=item.source,
        page=item.page,
        bbox=item.bbox,
        text=item.text,
        label=item.label,
        image_path=item.image_path,
        crop_path=item.crop_path,
        section=item.section,
        start=item.start,
        end=item.end,
    )


def resolve_citations(text: str, items: Sequence[ContextItem]) -> CitationResult:
    """Map markers in ``text`` to the items they name; strip markers that name no item."""
    by_marker = {item.marker: item for item in items}
    cited: dict[int, Citation] = {}
    rejected: list[int] = []

    def fix(match: re.Match[str]) -> str:
        numbers = [int(n) for n in match.group(1).split(",")]
        valid = [n for n in numbers if n in by_marker]
        rejected.extend(n for n in numbers if n not in by_marker)
        for n in valid:
            cited.setdefault(n, _citation(by_marker[n]))
        if valid == numbers:
            return match.group(0)
        return "[" + ", ".join(str(n) for n in valid) + "]" if valid else "\0"

    cleaned = MARKER_RE.sub(fix, text)
    if rejected:
        cleaned = re.sub(r"[ \t]*\0", "", cleaned)
        logger.warning(
            "rejected citation markers %s: only [1]..[%d] were given as evidence; removed from the answer",
            sorted(set(rejected)),
            len(items),
        )
    return CitationResult(text=cleaned, citations=tuple(cited.values()), rejected=tuple(dict.fromkeys(rejected)))


def cited_answer(
    generator: str,
    question: str,
    raw: str,
    items: Sequence[ContextItem],
    hits: Sequence[Any],
    timings: dict[str, float],
    *,
    check: bool = False,
) -> Answer:
    """The generated text with its markers resolved against the evidence given, as an Answer.

    ``check``: also check each cited clause against its evidence (:func:`generators.grounding.ground`)
    and drop the markers and citations it does not support; for text a model wrote, not for
    quotes of the evidence."""
    result = resolve_citations(raw.strip(), items)
    unsupported: tuple[str, ...] = ()
    if check:
        grounded = ground(result.text, evidence_texts(items, hits))
        unsupported = grounded.unsupported
        if grounded.removed:
            result = resolve_citations(grounded.text, items)
    logger.info(
        "%s answer: %d evidence item(s), %d citation(s), %.2fs",
        generator, len(items), len(result.citations), timings.get("generate", 0.0),
    )
    return Answer(
        question=question,
        text=result.text,
        citations=result.citations,
        hits=tuple(hits),
        timings=timings,
        generator=generator,
        unsupported=unsupported,
    )

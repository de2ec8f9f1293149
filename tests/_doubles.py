"""Test doubles shared by the test suite: one copy of each, each saying what it stands in for.

Import them as ``from _doubles import ScriptedCompleter`` (``tests/`` is on ``sys.path``, as
for ``_pdfgen``). A double stands in for a collaborator of the unit under test, never for the
unit itself; stages are still tested end to end on tiny real models (``tests/tiny/``).

- :class:`ConceptEmbedder` — a text embedder (``embed_query`` / ``embed_documents``) whose
  vectors count a few hand-picked concept words, so "price" and "cost" are close;
- :class:`RecordingEmbedder` — wraps a real image embedder and records which images it encoded;
- :class:`ScriptedCompleter` — a language model behind :class:`retrievers.router.Completer`;
- :class:`HTTPRecorder` — an ``httpx.MockTransport`` handler: canned responses, kept requests;
- :func:`text_hit`, :func:`make_hits` — page-level :class:`rag.types.Hit` records with text
  evidence, as search returns them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.types import BBox, Evidence, Hit

__all__ = ["ConceptEmbedder", "RecordingEmbedder", "ScriptedCompleter", "HTTPRecorder", "text_hit", "make_hits"]


class ConceptEmbedder:
    """Stands in for a sentence-transformers text embedder: a word's vector is its concept
    (money, tables, shipping), so texts about "cost", "price" and "euros" are close while they
    share no word. Records the batch size of each ``embed_documents`` call in ``embedded``."""

    CONCEPTS = {"cost": 0, "price": 0, "euros": 0, "much": 0, "expensive": 0, "tables": 1, "appendix": 1, "shipping": 2}

    def __init__(self) -> None:
        self.embedded: list[int] = []

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(3, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            if word in self.CONCEPTS:
                v[self.CONCEPTS[word]] += 1
        return v

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.embedded.append(len(texts))
        return np.stack([self._vec(t) for t in texts])


class RecordingEmbedder:
    """Wraps a real image embedder (late-interaction or single-vector) and records in
    ``encoded`` which page images it was asked to encode; everything else is delegated."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.encoded = inner, inner.name, []

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def load(self) -> None:
        self.inner.load()

    def embed_images(self, paths):
        self.encoded.extend(paths)
        return self.inner.embed_images(paths)

    def embed_queries(self, texts):
        return self.inner.embed_queries(texts)

    def provenance(self):
        return self.inner.provenance()


class ScriptedCompleter:
    """Stands in for a language model (:class:`retrievers.router.Completer`, which the
    generators satisfy): returns a fixed reply, or raises it when it is an exception, and
    records the prompts it saw in ``prompts``."""

    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.prompts: list[str] = []

    def complete(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


class HTTPRecorder:
    """Stands in for an OpenAI-compatible server, as an ``httpx.MockTransport`` handler: replays
    the canned responses in order (an exception is raised instead, as a broken connection would)
    and keeps the requests in ``requests``; ``body(i)`` is request ``i``'s JSON body."""

    def __init__(self, *responses: Any) -> None:
        self.responses = list(responses)
        self.requests: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response

    def body(self, i: int = -1) -> dict:
        return json.loads(self.requests[i].content)


def text_hit(
    page: int,
    text: str,
    score: float = 1.0,
    *,
    doc_id: str = "d",
    source: str | None = None,
    bbox: BBox | None = None,
    image_path: Path | None = None,
) -> Hit:
    """A page hit of the text corpus with one text chunk as evidence (same score, same box);
    ``source`` defaults to ``<doc_id>.pdf``."""
    return Hit(
        doc_id=doc_id,
        source=f"{doc_id}.pdf" if source is None else source,
        page=page,
        score=score,
        corpus="text",
        bbox=bbox,
        evidence=(Evidence("text", "chunk", text, score, bbox=bbox),),
        image_path=image_path,
    )


def make_hits(texts: Sequence[str], images: Sequence[Path | None] | None = None) -> list[Hit]:
    """Pages 1, 2, ... of ``manual.pdf``, one per text (and page image, when given: the shorter
    of the two sets the count), scores 1.0, 0.9, ... and distinct boxes, as a retriever returns them."""
    if images is None:
        images = [None] * len(texts)
    return [
        text_hit(i + 1, text, 1.0 - 0.1 * i, doc_id="doc", source="manual.pdf", bbox=BBox(0, 0, 10, 10 + i), image_path=image)
        for i, (text, image) in enumerate(zip(texts, images))
    ]

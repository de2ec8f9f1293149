"""The three corpora and how extracted pages become Qdrant points.

- ``text``: text chunks (dense + sparse);
- ``figures``: figure and table crops, searchable by caption + OCR/table text (dense +
  sparse), plus an image vector when an image embedder is configured;
- ``pages``: whole pages (dense + sparse of the page text; a pooled late-interaction
  multivector and its mean vector when a late-interaction model is configured).

Payloads (:mod:`retrievers.payloads`) carry document id, file name, page, bbox and image
*paths*, never pixels.
"""

from __future__ import annotations

import re

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.ids import point_id
from rag.types import CORPORA, DocumentInfo, Figure, PageContent
from rag.vectors import l2_normalize
from retrievers.base import (
    AnyImageEmbedder,
    CollectionSpec,
    LateInteractionEmbedder,
    Point,
    SparseEncoder,
    TextEmbedder,
    VectorSpec,
)
from retrievers.payloads import ChunkPayload, FigurePayload, PagePayload
from retrievers.store._common import collection_name

__all__ = ["Embedders", "collection_specs", "build_points", "figure_text", "page_sparse_text"]

DENSE, SPARSE, IMAGE, MULTI, MEAN = "dense", "sparse", "image", "multi", "mean"


@dataclass(frozen=True)
class Embedders:
    """The models that fill the corpora. Only ``text`` is required."""

    text: TextEmbedder
    sparse: SparseEncoder | None = None
    image: AnyImageEmbedder | None = None
    late: LateInteractionEmbedder | None = None
    #: also give each page an image vector from ``image`` (query by example page); off by default
    page_images: bool = False

    def provenance(self) -> dict[str, dict[str, Any]]:
        out = {"text": self.text.provenance()}
        for role, model in (("sparse", self.sparse), ("image", self.image), ("late_interaction", self.late)):
            if model is not None:
                out[role] = model.provenance()
        return out


def collection_specs(emb: Embedders, prefix: str) -> dict[str, CollectionSpec]:
    dense = VectorSpec(DENSE, "dense", emb.text.dimension)
    common: list[VectorSpec] = [dense]
    if emb.sparse is not None:
        common.append(VectorSpec(SPARSE, "sparse", idf=True))
    figures = list(common)
    if emb.image is not None:
        figures.append(VectorSpec(IMAGE, "dense", emb.image.dimension))
    pages = list(common)
    if emb.image is not None and emb.page_images:
        pages.append(VectorSpec(IMAGE, "dense", emb.image.dimension))
    if emb.late is not None:
        # 8-bit TurboQuant codes: 9.3 KiB/page for 64 pooled 128-d vectors (float16: 16.0),
        # rescoring ~2x faster; recall@10 vs exact MaxSim .988 at 10k (float16 .992), bench/bench_store.py
        pages.append(VectorSpec(MULTI, "multi", emb.late.dimension, datatype="turbo8"))
        pages.append(VectorSpec(MEAN, "dense", emb.late.dimension))
    specs = {"text": common, "figures": figures, "pages": pages}
    return {c: CollectionSpec(collection_name(prefix, c), tuple(specs[c])) for c in CORPORA}


def figure_text(fig: Figure) -> str:
    """What a figure or table is searched by: its caption, then the text inside it."""
    parts = [fig.caption or "", fig.text or ""]
    return "\n".join(p for p in parts if p).strip()


_SENTENCE_END = re.compile(r"[.!?:][)\]\"”’]?\s+(?=[A-Z0-9(\[\"“‘])")


_ABBREVIATIONS = frozenset({"fig", "figs", "no", "nos", "vs", "al", "eq", "ref", "tab", "vol", "pp", "cf", "etc", "approx"})


def caption_title(fig: Figure, limit: int = 200) -> str:
    """The title part of a caption: its first line, up to its first sentence end after the
    label ("Figure 2: Original TAM proposed by Fred Davis ..."), at most ``limit`` characters.
    Captions found on OCR'd or merged blocks can run on into the body they describe."""
    first = (fig.caption or "").strip().split("\n", 1)[0]
    for end in _SENTENCE_END.finditer(first):
        word = first[: end.start()].rsplit(" ", 1)[-1].strip("(").lower()
        if end.start() >= 24 and len(word) > 2 and word not in _ABBREVIATIONS:
            first = first[: end.start() + 1]
            break
    if len(first) > limit:
        cut = first.rfind(" ", 0, limit)
        first = first[: cut if cut > limit // 2 else limit]
    return first.strip()


def page_sparse_text(content: PageContent) -> str:
    """Page text plus figure captions and OCR text that may not be in the text layer."""
    extra = [figure_text(f) for f in content.figures]
    text = content.page.text
    missing = [e for e in extra if e and e not in text]
    return "\n".join([text, *missing]).strip()




def build_points(info: DocumentInfo, contents: Sequence[PageContent], emb: Embedders) -> dict[str, list[Point]]:
    """Embed a batch of pages of one document into points for each corpus.

    All texts of the batch go through each model in one call (batching across pages).
    A page's dense vector is the mean of its chunk vectors (a page is longer than the
    text model's window), falling back to the page text itself when it has no chunks.
    """
    chunks = [(c, ch) for c in contents for ch in c.chunks]
    figures = [(c, f) for c in contents for f in c.figures]
    page_texts = [page_sparse_text(c) for c in contents]

    chunk_texts = [ch.text for _, ch in chunks]
    fig_texts = [figure_text(f) or f"{f.kind} on page {f.page}" for _, f in figures]
    empty_pages = [i for i, c in enumerate(contents) if not c.chunks]
    # a figure's caption says what it is; its body (table cells, chart labels) is mostly detail:
    # the caption gets a vector of its own, averaged with the whole text's
    titled = [i for i, (_, f) in enumerate(figures) if caption_title(f) and caption_title(f) != fig_texts[i]]
    caption_texts = [caption_title(figures[i][1]) for i in titled]
    dense_all = emb.text.embed_documents(chunk_texts + fig_texts + caption_texts + [page_texts[i] or " " for i in empty_pages])
    chunk_vecs = dense_all[: len(chunk_texts)]
    at = len(chunk_texts)
    fig_vecs = list(dense_all[at : at + len(fig_texts)])
    at += len(fig_texts)
    for j, i in enumerate(titled):
        fig_vecs[i] = l2_normalize(np.asarray(fig_vecs[i]) + np.asarray(dense_all[at + j]))
    empty_vecs = dense_all[at + len(caption_texts) :]

    sparse = emb.sparse
    chunk_sparse = sparse.encode_documents(chunk_texts) if sparse else []
    fig_sparse = sparse.encode_documents(fig_texts) if sparse else []
    page_sparse = sparse.encode_documents(page_texts) if sparse else []

    fig_images: list[Path] = [f.image_path for _, f in figures if f.image_path is not None]
    image_vecs = emb.image.embed_images(fig_images) if emb.image is not None and fig_images else None
    page_images = [c.page.image_path for c in contents]
    page_image_vecs = None
    if emb.image is not None and emb.page_images and all(p is not None for p in page_images):
        page_image_vecs = emb.image.embed_images([p for p in page_images if p is not None])
    multis = None
    if emb.late is not None and all(p is not None for p in page_images):
        multis = emb.late.embed_images([p for p in page_images if p is not None])

    out: dict[str, list[Point]] = {c: [] for c in CORPORA}
    for i, (content, ch) in enumerate(chunks):
        vectors: dict[str, Any] = {DENSE: chunk_vecs[i]}
        if sparse:
            vectors[SPARSE] = chunk_sparse[i]
        pid = point_id(info.doc_id, ch.page, "chunk", ch.index)
        out["text"].append(Point(pid, vectors, ChunkPayload.of(info, content.page, ch).to_payload()))

    img_i = 0
    for i, (content, fig) in enumerate(figures):
        vectors = {DENSE: fig_vecs[i]}
        if sparse:
            vectors[SPARSE] = fig_sparse[i]
        if image_vecs is not None and fig.image_path is not None:
            vectors[IMAGE] = image_vecs[img_i]
            img_i += 1
        pid = point_id(info.doc_id, fig.page, fig.kind, fig.index)
        out["figures"].append(Point(pid, vectors, FigurePayload.of(info, content.page, fig, figure_text(fig)).to_payload()))

    per_page: dict[int, list[np.ndarray]] = {}
    for (content, _), vec in zip(chunks, chunk_vecs):
        per_page.setdefault(content.page.page, []).append(vec)
    empty_map = {contents[i].page.page: empty_vecs[j] for j, i in enumerate(empty_pages)}
    for i, content in enumerate(contents):
        page = content.page
        vecs = per_page.get(page.page)
        dense = l2_normalize(np.mean(vecs, axis=0)) if vecs else empty_map[page.page]
        vectors = {DENSE: dense}
        if sparse:
            vectors[SPARSE] = page_sparse[i]
        if page_image_vecs is not None:
            vectors[IMAGE] = page_image_vecs[i]
        if multis is not None:
            vectors[MULTI] = multis[i]
            vectors[MEAN] = l2_normalize(multis[i].mean(axis=0))
        payload = PagePayload.of(info, page, page_texts[i]).to_payload()
        out["pages"].append(Point(point_id(info.doc_id, page.page, "page"), vectors, payload))
    return out


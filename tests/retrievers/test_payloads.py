"""The payload codec: what build_points stores is what search reads back, and knowledge bases
written before the codec existed still decode (their payloads are pinned here as literals)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.types import BBox, DocumentInfo, Figure, Page, PageContent, TextChunk
from retrievers.corpora import Embedders, build_points
from retrievers.payloads import ChunkPayload, FigurePayload, PagePayload, decode, page_key

DOC = "d" * 64
WHERE = {
    "doc_id": DOC, "source": "manual.pdf", "path": "/docs/manual.pdf", "page": 3, "label": "iii",
    "page_image": "/kb/images/dd/page-0003.webp", "page_width": 612.0, "page_height": 792.0,
}
# build_points' output before the codec (one chunk, a figure, a table without crop, the page)
CHUNK = {**WHERE, "kind": "chunk", "index": 0, "bbox": [72.0, 100.0, 540.0, 130.5], "text": "Inverter checks\nEvery 6 months."}
FIGURE = {
    **WHERE, "kind": "figure", "index": 0, "bbox": [72.0, 200.0, 300.0, 400.0], "caption": "Figure 2: Monthly output",
    "text": "Figure 2: Monthly output\nkWh 420", "image_path": "/kb/images/dd/p3-figure-0.png", "source_kind": "raster",
}
TABLE = {
    **WHERE, "kind": "table", "index": 1, "bbox": [72.0, 420.0, 540.0, 600.0], "caption": None,
    "text": "| Code | Meaning |", "image_path": None, "source_kind": "table",
}
PAGE = {
    **WHERE, "kind": "page", "index": 0,
    "text": "Inverter checks\nEvery 6 months.\nFigure 2: Monthly output\nkWh 420\n| Code | Meaning |",
    "ocr": False, "image_path": "/kb/images/dd/page-0003.webp", "bbox": [0.0, 0.0, 612.0, 792.0],
}


class _Constant:
    """A text embedder that needs no model: every text gets the same unit vector."""

    name, dimension = "constant", 4

    def embed_documents(self, texts):
        return np.full((len(texts), 4), 0.5, dtype=np.float32)

    def embed_query(self, text):
        return np.full(4, 0.5, dtype=np.float32)

    def provenance(self):
        return {"name": self.name}


def _built() -> dict[str, list]:
    page = Page(DOC, 3, 612.0, 792.0, "Inverter checks\nEvery 6 months.", ocr=False,
                image_path=Path("/kb/images/dd/page-0003.webp"), label="iii")
    chunk = TextChunk(DOC, 3, 0, "Inverter checks\nEvery 6 months.", BBox(72.0, 100.0, 540.0, 130.5))
    fig = Figure(DOC, 3, 0, "figure", BBox(72.0, 200.0, 300.0, 400.0), caption="Figure 2: Monthly output", text="kWh 420",
                 image_path=Path("/kb/images/dd/p3-figure-0.png"), source="raster")
    table = Figure(DOC, 3, 1, "table", BBox(72.0, 420.0, 540.0, 600.0), text="| Code | Meaning |", source="table")
    info = DocumentInfo(DOC, Path("/docs/manual.pdf"), "manual.pdf", "pdf", 5, 1234)
    return build_points(info, [PageContent(page, chunks=(chunk,), figures=(fig, table))], Embedders(text=_Constant()))


def test_build_points_stores_the_same_bytes_as_before():
    points = _built()
    stored = [dict(p.payload) for corpus in ("text", "figures", "pages") for p in points[corpus]]
    assert [json.dumps(p) for p in stored] == [json.dumps(p) for p in (CHUNK, FIGURE, TABLE, PAGE)]


@pytest.mark.parametrize("payload", [CHUNK, FIGURE, TABLE, PAGE], ids=["chunk", "figure", "table", "page"])
def test_a_payload_written_by_the_previous_code_decodes_and_encodes_back(payload):
    record = decode(payload)
    assert record.to_payload() == payload and list(record.to_payload()) == list(payload)
    assert (record.doc_id, record.page, record.kind, record.text) == (DOC, 3, payload["kind"], payload["text"])
    assert record.bbox == BBox.from_sequence(payload["bbox"])
    assert page_key(payload) == (DOC, 3)


def test_each_kind_decodes_to_its_record_and_names_the_image_that_shows_it():
    chunk, figure, table, page = (decode(p) for p in (CHUNK, FIGURE, TABLE, PAGE))
    assert isinstance(chunk, ChunkPayload) and chunk.image == WHERE["page_image"]
    assert isinstance(figure, FigurePayload) and figure.image == FIGURE["image_path"] and figure.caption
    assert isinstance(table, FigurePayload) and table.kind == "table" and table.image == WHERE["page_image"]
    assert isinstance(page, PagePayload) and page.image == PAGE["image_path"] and page.ocr is False


def test_a_sparse_payload_reads_with_defaults():
    # points of older versions (or other writers) may lack keys: the reads search always made
    record = decode({"doc_id": "d", "page": 2, "kind": "diagram", "text": None})
    assert isinstance(record, ChunkPayload) and record.kind == "chunk"
    assert (record.source, record.text, record.bbox, record.image, record.page_width) == ("", "", None, None, None)
    with pytest.raises(KeyError):
        decode({"kind": "chunk", "text": "no document id"})



def test_a_section_is_stored_with_its_chunk_or_figure_but_not_put_into_the_text():
    page = Page(DOC, 3, 612.0, 792.0, "Each caller keeps its own structures.", ocr=False)
    chunk = TextChunk(DOC, 3, 0, "Each caller keeps its own structures.", BBox(72.0, 100.0, 540.0, 130.5),
                      section=("2 Library notes", "2.1 Thread safety"))
    fig = Figure(DOC, 3, 0, "figure", BBox(72.0, 200.0, 300.0, 400.0), caption="Figure 2: Locks", section=("2 Library notes",))
    info = DocumentInfo(DOC, Path("/docs/libtasn1.pdf"), "libtasn1.pdf", "pdf", 5, 1234)
    points = build_points(info, [PageContent(page, chunks=(chunk,), figures=(fig,))], Embedders(text=_Constant()))
    (stored_chunk,), (stored_fig,), (stored_page,) = points["text"], points["figures"], points["pages"]
    assert stored_chunk.payload["text"] == "Each caller keeps its own structures."  # what answers quote
    assert stored_chunk.payload["section"] == ["2 Library notes", "2.1 Thread safety"]
    assert decode(stored_chunk.payload).section == ("2 Library notes", "2.1 Thread safety")
    assert decode(stored_fig.payload).section == ("2 Library notes",)
    assert decode(stored_page.payload).section == ()  # a page may span sections


def test_a_video_frames_points_carry_seconds_a_transcript_chunk_its_own():
    page = Page(DOC, 2, 480.0, 270.0, "LIGHTHOUSE\n\na keeper", ocr=True, start=2.0, end=4.0)
    shown = TextChunk(DOC, 2, 0, "LIGHTHOUSE", BBox(40.0, 105.0, 447.0, 167.0), start=2.0, end=4.0)
    said = TextChunk(DOC, 2, 1, "a keeper", BBox(0.0, 0.0, 480.0, 270.0), start=2.3, end=3.8)
    fig = Figure(DOC, 2, 0, "figure", BBox(0.0, 0.0, 480.0, 270.0), text="LIGHTHOUSE", source="image")
    info = DocumentInfo(DOC, Path("/docs/clip.mp4"), "clip.mp4", "video", 3, 1234)
    points = build_points(info, [PageContent(page, chunks=(shown, said), figures=(fig,))], Embedders(text=_Constant()))
    times = [(decode(p.payload).start, decode(p.payload).end) for c in ("text", "figures", "pages") for p in points[c]]
    assert times == [(2.0, 4.0), (2.3, 3.8), (2.0, 4.0), (2.0, 4.0)]
    assert points["text"][1].payload["start"] == 2.3 and "start" not in CHUNK  # PDFs store no such key (above)
    assert decode(CHUNK).start is None and decode(PAGE).end is None

"""Query by example image, end to end: a knowledge base built over the generated samples with a tiny
image model of a real architecture, searched with one of its own figure crops."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import json
from pathlib import Path

import numpy as np
import pytest

from rag import KnowledgeBase
from rag.config import Config, IngestConfig, ModelsConfig
from rag.errors import ConfigError, EmbedderMismatchError

INGEST = IngestConfig(ocr="never")  # OCR is not what these tests are about; it only costs time


def _build(root: Path, image_model: str, files: list[Path], **models: object) -> Path:
    kb_dir = root / "kb"
    config = Config(models=ModelsConfig(image=image_model, **models), ingest=INGEST)  # type: ignore[arg-type]
    with KnowledgeBase.open(kb_dir, config, create=True) as kb:
        reports = kb.ingest(files, progress=False)
    assert all(r.status == "indexed" for r in reports), reports
    return kb_dir


def _figures(kb_dir: Path) -> list[dict]:
    """The figure/table crops the knowledge base indexed, with their document and page."""
    with KnowledgeBase.open(kb_dir) as kb:
        store, specs = kb._open_store()
        return [dict(p.payload) for p in store.scroll(specs["figures"].name) if p.payload.get("image_path")]


@pytest.fixture(scope="module")
def clip_kb(tmp_path_factory, samples):
    from tiny.clip import build_tiny_clip

    root = tmp_path_factory.mktemp("image_search_clip")
    build_tiny_clip(root / "clip")
    # page images get vectors too: an example page finds its page, a figure crop its figure
    return _build(root, str(root / "clip"), samples, page_image_vectors=True)


@pytest.fixture(scope="module")
def dino_kb(tmp_path_factory, samples):
    from tiny.vision import build_dinov2

    from rag.cli import main

    root = tmp_path_factory.mktemp("image_search_dino")
    build_dinov2(root / "dinov2")
    pdfs = [str(s) for s in samples if s.suffix == ".pdf"]
    # through the command line: an image-only model whose 32-d vectors are truncated to 16
    code = main(["ingest", *pdfs, "--kb", str(root / "kb"), "--image-model", str(root / "dinov2"),
                 "--image-dimension", "16", "--ocr", "never", "--no-progress"])
    assert code == 0
    return root / "kb"


def test_a_figure_crop_finds_its_own_page_first(clip_kb):
    figures = _figures(clip_kb)
    assert len(figures) >= 3 and len({(f["doc_id"], f["page"]) for f in figures}) >= 3
    with KnowledgeBase.open(clip_kb) as kb:
        for fig in figures:
            result = kb.search(image=fig["image_path"], top_k=3)
            top = result.hits[0]
            assert (top.doc_id, top.page) == (fig["doc_id"], fig["page"]), (fig, result.hits)
            assert str(top.evidence[0].image_path) == fig["image_path"]  # the crop itself is the best evidence
            assert result.route.router == "image" and set(result.route.corpora) == {"figures", "pages"}


def test_a_reencoded_copy_of_a_figure_still_finds_its_page(clip_kb, tmp_path):
    from PIL import Image

    fig = next(f for f in _figures(clip_kb) if f["kind"] == "figure")
    copy = tmp_path / "copy.png"
    Image.open(fig["image_path"]).convert("RGB").save(copy)
    with KnowledgeBase.open(clip_kb) as kb:
        top = kb.search(image=copy, top_k=1).hits[0]
    assert (top.doc_id, top.page) == (fig["doc_id"], fig["page"])


def test_cli_search_by_image(clip_kb, capsys):
    from rag.cli import main

    fig = _figures(clip_kb)[0]
    assert main(["search", "--image", fig["image_path"], "--kb", str(clip_kb), "--json", "--top-k", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hits"][0]["page"] == fig["page"] and out["hits"][0]["doc_id"] == fig["doc_id"]
    assert out["route"]["router"] == "image" and out["question"].startswith("[image]")
    assert main(["search", "--kb", str(clip_kb)]) == 1
    assert "--image" in capsys.readouterr().err


def test_text_plus_image_needs_a_vlm_embedder(clip_kb):
    fig = _figures(clip_kb)[0]
    with KnowledgeBase.open(clip_kb) as kb:
        with pytest.raises(ConfigError, match="VLM embedder"):
            kb.search("the same chart for 2023", image=fig["image_path"])
        assert kb.search("solar panel maintenance").hits  # text questions still work on this knowledge base


def test_a_knowledge_base_without_image_vectors_says_how_to_build_one():
    from retrievers.corpora import Embedders
    from retrievers.search import encode_image_query

    with pytest.raises(ConfigError, match="--image-model"):
        encode_image_query(Path("x.png"), Embedders(text=object()))  # type: ignore[arg-type]


def test_reopening_with_another_image_dimension_is_refused(clip_kb):
    fig = _figures(clip_kb)[0]
    other = Config(models=ModelsConfig(image=KnowledgeBase.open(clip_kb).config.models.image, image_dimension=8),
                   ingest=INGEST)
    with KnowledgeBase.open(clip_kb, other) as kb:
        with pytest.raises(EmbedderMismatchError, match="dimension was 16, now 8"):
            kb.search(image=fig["image_path"])


def test_image_only_model_finds_figures_by_example_and_leaves_text_search_alone(dino_kb):
    figures = _figures(dino_kb)
    with KnowledgeBase.open(dino_kb) as kb:
        assert kb.embedders.image.family == "dinov2" and kb.embedders.image.dimension == 16
        assert kb.embedders.provenance()["image"]["dimension"] == 16
        for fig in figures:
            top = kb.search(image=fig["image_path"], top_k=1).hits[0]
            assert (top.doc_id, top.page) == (fig["doc_id"], fig["page"])
        # a question never reaches the image-only vectors (they have no text side)
        result = kb.search("inverter maintenance")
        assert result.hits and all(e.corpus != "figures" or e.kind in ("figure", "table") for h in result.hits for e in h.evidence)


def test_composed_query_through_a_vlm_knowledge_base(tmp_path, samples):
    from tiny.qwen2vl import build_qwen2vl

    folder = build_qwen2vl(tmp_path / "qwen")
    kb_dir = _build(tmp_path, str(folder), [s for s in samples if s.suffix == ".pdf"])
    fig = _figures(kb_dir)[0]
    with KnowledgeBase.open(kb_dir) as kb:
        composed = kb.search("the same chart for 2023", image=fig["image_path"], top_k=3)
        alone = kb.search(image=fig["image_path"], top_k=3)
    assert composed.hits and composed.route.router == "image" and "text" in composed.route.reason
    assert composed.question == "the same chart for 2023"
    scores = [h.score for h in composed.hits], [h.score for h in alone.hits]
    assert not np.allclose(scores[0][: len(scores[1])], scores[1][: len(scores[0])])  # the text changed the query


def test_page_image_vectors_let_an_example_page_find_itself(clip_kb):
    with KnowledgeBase.open(clip_kb) as kb:
        assert kb.config.models.page_image_vectors  # restored from the manifest
        store, specs = kb._open_store()
        pages = [dict(p.payload) for p in store.scroll(specs["pages"].name)]
        assert len(pages) >= 4
        for page in pages:
            result = kb.search(image=page["page_image"], top_k=1)
            top = result.hits[0]
            assert (top.doc_id, top.page) == (page["doc_id"], page["page"])
            assert any(e.corpus == "pages" and e.kind == "page" for e in top.evidence)

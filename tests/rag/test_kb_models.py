"""Every listed model family embeds into its corpus of a real knowledge base.

Tiny checkpoints of the real architectures (tests/tiny/) are loaded by folder through
the registry, exactly as a user's checkpoint would be, while a knowledge base is built
from a generated page: late-interaction models fill the ``pages`` corpus with pooled
multivectors and their mean vector; image models give figures an ``image`` vector.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rag import KnowledgeBase
from rag.config import Config, IngestConfig, ModelsConfig

LATE = ("colpali", "colqwen2", "colqwen2.5", "colidefics3")
IMAGE = ("clip", "chinese-clip", "siglip", "siglip2")


@pytest.fixture(scope="module")
def page(tmp_path_factory, samples):
    folder = tmp_path_factory.mktemp("doc")
    target = folder / "dashboard.png"
    shutil.copy(samples[-1], target)
    return target


def _points(kb, corpus):
    store, specs = kb._open_store()
    return list(store.scroll(specs[corpus].name, with_vectors=True))


@pytest.mark.parametrize("family", LATE)
def test_late_interaction_family_fills_the_pages_corpus(tmp_path, page, family):
    from tiny.colvision import build_checkpoint

    ckpt = build_checkpoint(family, tmp_path / family)
    config = Config(ingest=IngestConfig(ocr="never", dpi=36), models=ModelsConfig(late_interaction=str(ckpt.folder), pool_factor=2))
    with KnowledgeBase.open(tmp_path / "kb", config, create=True) as kb:
        (report,) = kb.ingest([page], progress=False)
        assert report.status == "indexed", report.error
        (point,) = _points(kb, "pages")
        multi = np.asarray(point.vectors["multi"], dtype=np.float32)
        mean = np.asarray(point.vectors["mean"], dtype=np.float32)
        assert multi.ndim == 2 and multi.shape[1] == kb.embedders.late.dimension and multi.shape[0] >= 1
        np.testing.assert_allclose(np.linalg.norm(mean), 1.0, atol=1e-3)
        result = kb.search("inverter status today", top_k=1)
        assert result.hits[0].source == "dashboard.png"
        assert any(e.corpus == "pages" for e in result.hits[0].evidence)
        reranked = kb.search("inverter status today", top_k=1, reranker="late-interaction")
        assert reranked.hits[0].source == "dashboard.png" and reranked.hits[0].score != result.hits[0].score
        assert kb.info()["models"]["late_interaction"]  # recorded in the manifest


@pytest.mark.parametrize("family", IMAGE)
def test_image_family_gives_figures_an_image_vector(tmp_path, page, family):
    from tiny import clip as tiny_clip

    builder = {
        "clip": tiny_clip.build_tiny_clip,
        "chinese-clip": tiny_clip.build_tiny_chinese_clip,
        "siglip": tiny_clip.build_tiny_siglip,
        "siglip2": tiny_clip.build_tiny_siglip2,
    }[family]
    folder = tmp_path / family
    builder(folder)
    config = Config(ingest=IngestConfig(ocr="never", dpi=36), models=ModelsConfig(image=str(folder)))
    with KnowledgeBase.open(tmp_path / "kb", config, create=True) as kb:
        (report,) = kb.ingest([page], progress=False)
        assert report.status == "indexed", report.error
        figures = _points(kb, "figures")
        assert figures, "the image document is one figure"
        vec = np.asarray(figures[0].vectors["image"], dtype=np.float32)
        assert vec.shape == (kb.embedders.image.dimension,)
        np.testing.assert_allclose(np.linalg.norm(vec), 1.0, atol=1e-3)
        assert kb.search("inverter status", top_k=1).hits[0].source == "dashboard.png"

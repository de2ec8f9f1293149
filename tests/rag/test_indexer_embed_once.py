"""A text met more than once in an ingest is encoded once, and every point carrying it gets
the same vector; extraction workers never hold the text model or torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

import _pdfgen as g
from rag import KnowledgeBase
from rag.config import Config, IngestConfig
from retrievers.embedders.onnx_text import OnnxTextEncoder

SHARED = f"This manual is licensed under the Example Licence, version 2. {g.LOREM}"


def test_a_text_repeated_across_documents_is_encoded_once_and_both_points_share_its_vector(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    g.text_pdf(docs / "a.pdf", ["Alpha manual: the pump primes in ten seconds.", SHARED])
    g.text_pdf(docs / "b.pdf", [SHARED, "Beta manual: the valve closes at four bar."])
    encoded: Counter[str] = Counter()
    real = OnnxTextEncoder.encode

    def counting(self, texts):
        encoded.update(texts)
        return real(self, texts)

    monkeypatch.setattr(OnnxTextEncoder, "encode", counting)
    config = Config(ingest=IngestConfig(ocr="never", dpi=72, workers=1))
    with KnowledgeBase.open(tmp_path / "kb", config, create=True) as kb:
        reports = kb.ingest([docs], progress=False)
        assert [r.status for r in reports] == ["indexed", "indexed"]
        store, specs = kb._open_store()
        points = list(store.scroll(specs["text"].name, with_vectors=True))
    shared = [p for p in points if p.payload["text"] == SHARED]
    assert len(shared) == 2 and len({p.payload["doc_id"] for p in shared}) == 2  # one point in each document
    assert encoded[SHARED] == 1, encoded
    np.testing.assert_array_equal(np.asarray(shared[0].vectors["dense"]), np.asarray(shared[1].vectors["dense"]))
    others = [p for p in points if p.payload["text"] != SHARED]
    assert others and all(encoded[p.payload["text"]] == 1 for p in others)


_WORKERS_LOAD_NO_MODEL = r"""
import gc, json, os, sys
sys.path.insert(0, {root!r})
from pathlib import Path
import ingest.reader as reader_mod
from rag import KnowledgeBase
from rag.config import Config, IngestConfig

real = reader_mod.DocumentReader._extract

def watched(self, index, info, out_dir):  # the workers are forked: they inherit this
    loaded = [type(o).__name__ for o in gc.get_objects() if type(o).__name__ == "OnnxTextEncoder" and o.ready]
    state = {{"pid": os.getpid(), "torch": "torch" in sys.modules, "sentence_transformers": "sentence_transformers" in sys.modules,
              "text_models": len(loaded), "frozen": gc.get_freeze_count()}}
    Path({out!r}, f"{{os.getpid()}}.json").write_text(json.dumps(state))
    return real(self, index, info, out_dir)

reader_mod.DocumentReader._extract = watched
with KnowledgeBase.open({kb!r}, Config(ingest=IngestConfig(ocr="never", dpi=72, workers=2)), create=True) as kb:
    print(" ".join(r.status for r in kb.ingest([Path({docs!r})], progress=False)))
    models = [o for o in gc.get_objects() if type(o).__name__ == "OnnxTextEncoder" and o.ready]
    print(json.dumps({{"pid": os.getpid(), "text_models": len(models)}}))
"""


def test_extraction_workers_hold_no_text_model_and_no_torch_and_keep_the_inherited_heap_shared(tmp_path):
    # a fresh process, as `mmrag ingest` is (this one may have imported torch already)
    docs, out = tmp_path / "docs", tmp_path / "seen"
    for folder in (docs, out):
        folder.mkdir()
    for i in range(2):
        g.text_pdf(docs / f"d{i}.pdf", [f"Document {i}: {g.LOREM}"])
    code = _WORKERS_LOAD_NO_MODEL.format(
        root=str(Path(__file__).resolve().parents[2]), kb=str(tmp_path / "kb"), docs=str(docs), out=str(out),
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].split() == ["indexed", "indexed"]
    parent = json.loads(lines[-1])
    assert parent["text_models"] == 1  # the caller embeds: its model is loaded
    seen = [json.loads(f.read_text()) for f in out.iterdir()]
    assert seen and all(s["pid"] != parent["pid"] for s in seen)  # read in workers
    assert not any(s["torch"] or s["sentence_transformers"] or s["text_models"] for s in seen), seen
    # what a worker inherited is frozen: its collections never walk (and so never copy) it
    assert all(s["frozen"] > 10_000 for s in seen), seen

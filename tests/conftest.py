"""Shared fixtures. The default run is offline and CPU-only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# ONNX exports of text models go to a per-run cache, not the user's ~/.cache/mmrag
os.environ.setdefault("MMRAG_CACHE", tempfile.mkdtemp(prefix="mmrag-test-cache-"))

#: ../shared/eval beside the repository: real PDFs and questions with gold pages.
SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


@pytest.fixture(scope="session")
def shared_eval() -> Path:
    if not (SHARED_EVAL / "docs").is_dir():
        pytest.skip(f"evaluation data not found at {SHARED_EVAL} (clone the project with ../shared beside it)")
    return SHARED_EVAL


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> list[Path]:
    """The demo documents (a PDF manual with chart, table, photo and a scanned page; a PNG)."""
    from ingest.samples import make_samples

    return make_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="session")
def kb_path(tmp_path_factory, samples) -> Path:
    """A knowledge base built once from the samples with the default (real) models.

    Tests may read it and re-ingest unchanged files; tests that change documents build
    their own.
    """
    from rag import KnowledgeBase

    path = tmp_path_factory.mktemp("kb") / "kb"
    with KnowledgeBase.open(path, create=True) as kb:
        reports = kb.ingest(samples, progress=False)
    assert [r.status for r in reports] == ["indexed"] * len(samples), reports
    return path

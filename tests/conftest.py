"""Shared fixtures. The default run is offline and CPU-only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: ../shared/eval beside the repository: real PDFs and questions with gold pages.
SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


@pytest.fixture(scope="session")
def shared_eval() -> Path:
    if not (SHARED_EVAL / "docs").is_dir():
        pytest.skip(f"evaluation data not found at {SHARED_EVAL} (clone the project with ../shared beside it)")
    return SHARED_EVAL

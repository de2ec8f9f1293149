"""A cold ``mmrag ask`` loads only what answering needs: no torch, transformers, image or PDF
libraries, OCR or server modules (each costs a cold process time it does not use; the target is
3 s for a cold ask on the demo knowledge base, ``bench/bench_cold_ask.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: not needed to answer a question from an extractive knowledge base
NOT_FOR_ASK = ("torch", "transformers", "sentence_transformers", "llama_index", "PIL", "pymupdf", "fitz", "rapidocr",
               "fastapi", "uvicorn", "rag.server", "rag.conversation", "ingest")

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport json, sys; print(json.dumps(sorted(set(sys.modules) | {m.split('.')[0] for m in sys.modules})))"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300, cwd=ROOT, env=env)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_rag_cli_loads_no_model_library():
    loaded = _modules_after("import rag.cli")
    assert not loaded & set(NOT_FOR_ASK), sorted(loaded & set(NOT_FOR_ASK))


def test_a_cold_ask_imports_nothing_it_does_not_use(kb_path):
    code = (
        "import contextlib, io\n"
        "from rag.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    status = main(['ask', 'How often should the inverter be inspected?', '--kb', {str(kb_path)!r}])\n"
        "assert status == 0 and '[1]' in out.getvalue(), out.getvalue()\n"
    )
    loaded = _modules_after(code)
    assert "onnxruntime" in loaded  # it did answer, with the ONNX text encoder
    assert not loaded & set(NOT_FOR_ASK), sorted(loaded & set(NOT_FOR_ASK))

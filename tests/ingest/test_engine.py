"""PyMuPDF imported by ingest runs its table finder's layout model on one thread, and leaves
onnxruntime as it found it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pymupdf.layout", reason="the table layout model comes with the pymupdf_layout package")

_FRESH = """
import gc, sys
sys.path[:0] = [{root!r}, {tests!r}]
import onnxruntime as ort
original = ort.InferenceSession
from ingest.reader import DocumentReader
from rag.config import IngestConfig
with DocumentReader({pdf!r}, IngestConfig(ocr="never")) as reader:
    reader.open()
    tables = [f for c in reader.pages(progress=False) for f in c.figures if f.kind == "table"]
sessions = [o for o in gc.get_objects() if isinstance(o, ort.InferenceSession)]
mine = ort.InferenceSession(sessions[0]._model_path, providers=["CPUExecutionProvider"])
print(len(tables), len(sessions), sorted({{s.get_session_options().intra_op_num_threads for s in sessions}}),
      ort.InferenceSession is original, mine.get_session_options().intra_op_num_threads)
"""


def test_the_table_layout_model_runs_on_one_thread_and_other_sessions_keep_their_default(tmp_path):
    """A user's own onnxruntime session opened afterwards keeps onnxruntime's default threads;
    the layout model's sessions (opened by ingest's import of PyMuPDF) have one, and the table
    is still found."""
    import _pdfgen as g
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 200), g.LOREM, fontsize=10)
    g.table_page(page, 72, 280, [["Branch", "Opens", "Closes"], ["North", "8:00", "17:00"], ["South", "9:30", "18:00"]],
                 caption="Table 1: Opening hours.")
    pdf = str(g.save(doc, tmp_path / "hours.pdf"))
    here = Path(__file__).resolve()
    code = _FRESH.format(root=str(here.parents[2]), tests=str(here.parents[1]), pdf=pdf)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    words = done.stdout.split()
    assert words[0] == "1"  # the table
    assert int(words[1]) >= 1  # the layout model's sessions
    assert words[2] == "[1]"
    assert words[3:] == ["True", "0"]  # onnxruntime's own class again; a new session keeps the default (0: per core)

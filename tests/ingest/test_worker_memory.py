"""What extraction processes hold: the C heap given back while a worker waits and before a
killable call forks its child, PyMuPDF's table layout model loaded once before the workers fork
(shared with them, not loaded in each)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import _pdfgen as g
from ingest import _heap
from ingest.parallel import ExtractionPool
from rag.config import IngestConfig

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim and fork are Linux's")


@linux_only
def test_a_worker_waiting_for_the_caller_gives_its_heap_back(tmp_path, monkeypatch):
    """A worker ahead of the caller waits for it to read; it must not wait holding the
    high-water mark of its heaviest page (two workers held 450-700 MB each that way)."""
    marks = tmp_path / "trims"
    marks.mkdir()
    caller = os.getpid()
    real = _heap.trim

    def trim() -> bool:
        if os.getpid() != caller:  # in the forked worker (it inherits this patch)
            (marks / str(os.getpid())).touch()
        return real()

    monkeypatch.setattr(_heap, "trim", trim)
    path = g.text_pdf(tmp_path / "long.pdf", [f"Page {i + 1}. " + g.LOREM * 4 for i in range(40)])
    with ExtractionPool(IngestConfig(ocr="never", dpi=72), tmp_path / "images", workers=1, batch_pages=2) as pool:
        job = pool.submit(path)
        assert job.info().page_count == 40
        deadline = time.monotonic() + 120
        while not any(marks.iterdir()) and time.monotonic() < deadline:  # the caller does not read
            time.sleep(0.2)
        assert any(marks.iterdir()), "the worker waited without trimming its heap"
        assert [c.page.page for c in job.pages()] == list(range(1, 41))  # then every page, in order


def test_trim_says_whether_the_heap_was_given_back():
    assert _heap.trim() is sys.platform.startswith("linux")  # glibc here; elsewhere a no-op


_POOL_IN_A_FRESH_PROCESS = r"""
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from pathlib import Path
from ingest.parallel import ExtractionPool
from rag.config import IngestConfig
assert "pymupdf" not in sys.modules
with ExtractionPool(IngestConfig(ocr="never", dpi=72), Path({images!r}), workers=2) as pool:
    jobs = [pool.submit(Path(p)) for p in {paths!r}]
    assert "pymupdf" in sys.modules and sys.modules["pymupdf"]._get_layout is not None  # loaded before the fork
    tables = [f.text for job in jobs for c in job.pages() for f in c.figures if f.kind == "table"]
print(len(tables), any("Opens" in t for t in tables))
"""


@linux_only
def test_workers_inherit_the_table_layout_model_and_still_find_tables(tmp_path):
    """PyMuPDF (and the ONNX layout model its table finder runs) is imported by the caller before
    its workers fork, so they share one copy instead of loading one each; tables are found as before."""
    import pymupdf

    paths = []
    for k in range(2):
        doc = pymupdf.open()
        page = doc.new_page(width=612, height=792)
        page.insert_textbox(pymupdf.Rect(72, 60, 540, 200), f"Doc {k}. {g.LOREM}", fontsize=10)
        g.table_page(page, 72, 280, [["Branch", "Opens", "Closes"], ["North", "8:00", "17:00"], ["South", "9:30", "18:00"]],
                     caption=f"Table {k + 1}: Opening hours.")
        paths.append(str(g.save(doc, tmp_path / f"t{k}.pdf")))
    here = Path(__file__).resolve()
    code = _POOL_IN_A_FRESH_PROCESS.format(root=str(here.parents[2]), tests=str(here.parents[1]),
                                           images=str(tmp_path / "images"), paths=paths)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2", "True"]


def _rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


@linux_only
def test_a_killable_call_forks_after_the_caller_gives_its_freed_heap_back():
    """The table finder runs in a forked child that adds its own ~100-170 MB; the caller's freed
    memory (the last page's OCR) must not stay resident beside it: a 100-page ingest peaked at
    600 MB with it, 420-480 MB without."""
    from ingest._budget import run_killable

    blocks = [bytes(range(256)) * 8 for _ in range(100_000)]  # ~200 MB in 2 kB pieces on the C heap
    pin = bytearray(4096)  # allocated after them: the heap's top cannot shrink by itself
    del blocks
    held = _rss_mb()
    seen_by_child = run_killable(lambda: _rss_mb(os.getppid()), 60)
    assert len(pin) == 4096
    assert held - seen_by_child > 100, (held, seen_by_child)

"""The ingest bar (``rag._ingest_progress.IngestBar``) as a terminal shows it: files done of
total, the pages read of each file being read by name, lines written above it; nothing at all
when disabled."""

from __future__ import annotations

import io
from pathlib import Path

from rag._ingest_progress import IngestBar
from rag.types import FileReport


def _last_frame(text: str) -> str:
    return text.split("\r")[-1]


def test_the_bar_shows_files_and_the_pages_of_each_file_being_read():
    out = io.StringIO()
    lines: list[str] = []
    with IngestBar(3, True, stream=out) as bar:
        bar.page(Path("/docs/a.pdf"), 0, 0)
        bar._draw()
        assert "0/3 files" in _last_frame(out.getvalue()) and "a.pdf opening" in _last_frame(out.getvalue())
        bar.page(Path("/docs/a.pdf"), 0, 4)
        bar.report(FileReport(Path("/docs/x.pdf"), "unchanged"), lambda r: (lines.append(r.path.name), out.write(f"{r.path.name}\n")))
        bar.page(Path("/docs/a.pdf"), 3, 4)
        bar.page(Path("/docs/b.pdf"), 1, 9)
        bar.page(Path("/docs/a.pdf"), 2, 4)  # a late, smaller count never takes the bar back
        bar.page(Path("/docs/b.pdf"), 0, 0)  # nor does "opening" for a file whose pages are known
        bar._draw()
        frame = _last_frame(out.getvalue())
        assert "1/3 files" in frame and "a.pdf 3/4 pages · b.pdf 1/9 pages" in frame, frame
        bar.report(FileReport(Path("/docs/a.pdf"), "indexed", pages=4))
        frame = _last_frame(out.getvalue())
        assert "2/3 files" in frame and "a.pdf" not in frame and "b.pdf 1/9 pages" in frame, frame
    assert lines == ["x.pdf"]
    assert "x.pdf\n" in out.getvalue()  # the line went out between two frames, not into one


def test_long_names_are_shortened_keeping_both_ends():
    out = io.StringIO()
    with IngestBar(1, True, stream=out) as bar:
        bar.page(Path("annual-report-of-the-regional-grain-storage-cooperative-2024.pdf"), 5, 80)
        bar._draw()
        frame = _last_frame(out.getvalue())
    assert "annual-report" in frame and "cooperative-2024.pdf 5/80 pages" not in frame and "2024.pdf 5/80 pages" in frame, frame


def test_a_disabled_bar_writes_nothing_and_still_passes_reports_on():
    out = io.StringIO()
    seen: list[str] = []
    with IngestBar(2, False, stream=out) as bar:
        bar.page(Path("a.pdf"), 1, 2)
        bar.report(FileReport(Path("a.pdf"), "indexed"), lambda r: seen.append(r.status))
    assert out.getvalue() == "" and seen == ["indexed"]

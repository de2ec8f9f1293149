"""LibreOffice's conversion time per page: a DOCX of N pages and a PPTX of N slides (made with
python-docx / python-pptx), converted to PDF ``--runs`` times each through mmrag's own converter
(``ingest._convert.office_to_pdf``: a fresh profile per run, as in ingestion), median reported.

    python bench/bench_convert.py --pages 20 --runs 3

Prints one line per file: pages, median seconds, seconds per page, and the runs. The first
run of each file includes nothing extra: every run starts LibreOffice with a new profile.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest._convert import find_soffice, office_to_pdf  # noqa: E402


def make_docx(path: Path, pages: int) -> Path:
    import docx

    doc = docx.Document()
    for n in range(1, pages + 1):
        doc.add_heading(f"Chapter {n}", 1)
        for k in range(4):
            doc.add_paragraph(f"Paragraph {k + 1} of chapter {n}: " + "the inspection schedule lists every part. " * 12)
        if n < pages:
            doc.add_page_break()
    doc.save(path)
    return path


def make_pptx(path: Path, slides: int) -> Path:
    from pptx import Presentation

    deck = Presentation()
    for n in range(1, slides + 1):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {n}"
        slide.placeholders[1].text = f"Point {n}: the quarterly budget and its three risks."
    deck.save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20, help="pages of the DOCX and slides of the PPTX")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if args.pages < 1 or args.runs < 1:
        parser.error("--pages and --runs must be at least 1")
    if find_soffice() is None:
        print("error: LibreOffice (soffice) is not on PATH; install Debian's libreoffice-*-nogui packages", file=sys.stderr)
        return 1
    import pymupdf

    with tempfile.TemporaryDirectory(prefix="mmrag-bench-convert-") as tmp:
        files = [("docx", make_docx(Path(tmp) / "long.docx", args.pages)), ("pptx", make_pptx(Path(tmp) / "deck.pptx", args.pages))]
        for fmt, path in files:
            runs, pages = [], 0
            for _ in range(args.runs):
                started = time.perf_counter()
                pdf = office_to_pdf(path, fmt, timeout_s=600)
                runs.append(time.perf_counter() - started)
                with pymupdf.open("pdf", pdf) as doc:
                    pages = doc.page_count
            median = statistics.median(runs)
            print(f"{fmt}: {pages} pages, median {median:.2f} s, {median / pages:.3f} s/page "
                  f"(runs: {', '.join(f'{r:.2f}' for r in runs)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

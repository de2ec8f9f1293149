"""Benchmark of the ingest stage: pages/s and peak RSS, each case in a fresh subprocess.

    .venv/bin/python bench/bench_ingest.py [--ocr never|auto] [--pages 100 2000] [--skip-real]

1. Inspect-style extraction (no image files written) of every PDF in ../shared/eval/docs.
2. Peak RSS of a generated N-page PDF for each N (streaming means a 2,000-page document
   should peak no higher than ~1.2x a 100-page one).

Peak RSS is the child's ``ru_maxrss`` (includes the interpreter and imported libraries);
"import RSS" is measured in the same child before the document is opened.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT.parent / "shared" / "eval" / "docs"

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import pymupdf  # imported before measuring the baseline
from ingest import open_document
from rag.config import IngestConfig
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
pages = chars = figures = ocr = 0
from pathlib import Path
image_dir = {image_dir!r}
with open_document({path!r}, IngestConfig(ocr={ocr!r}), None if image_dir is None else Path(image_dir)) as reader:
    for content in reader.pages(progress=False):
        pages += 1
        chars += len(content.page.text)
        figures += len(content.figures)
        ocr += content.page.ocr
elapsed = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(pages=pages, chars=chars, figures=figures, ocr=ocr, seconds=elapsed, base_kb=base, peak_kb=peak)))
"""


def run_child(path: Path, ocr: str, image_dir: Path | None = None) -> dict:
    code = CHILD.format(root=str(ROOT), path=str(path), ocr=ocr, image_dir=None if image_dir is None else str(image_dir))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child failed on {path}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_long_pdf(path: Path, n_pages: int) -> Path:
    """N pages of prose, each with a small vector chart and a small raster picture."""
    sys.path.insert(0, str(ROOT / "tests"))
    import pymupdf
    import _pdfgen as g

    picture = g.png_bytes(160, 90)
    doc = pymupdf.open()
    for i in range(n_pages):
        page = doc.new_page(width=612, height=792)
        page.insert_textbox(pymupdf.Rect(60, 50, 552, 200), f"Section {i + 1}. " + g.LOREM * 2, fontsize=10)
        g.chart_page(page, 150, 230, values=(i % 9 + 1, 5, 7, 3), caption=None)
        page.insert_image(pymupdf.Rect(200, 440, 360, 530), stream=picture)
        page.insert_textbox(pymupdf.Rect(60, 560, 552, 740), g.LOREM * 2, fontsize=10)
    doc.save(path, garbage=3, deflate=True)
    doc.close()
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ocr", default="never", choices=["never", "auto"], help="OCR mode for the real PDFs")
    ap.add_argument("--pages", type=int, nargs="+", default=[100, 2000])
    ap.add_argument("--render-pages", type=int, nargs="*", default=[50, 400],
                    help="document lengths for part 3 (page images and crops written)")
    ap.add_argument("--skip-real", action="store_true")
    args = ap.parse_args()

    if not args.skip_real:
        if not DOCS.is_dir():
            print(f"real PDFs not found at {DOCS}; skipping part 1")
        else:
            print(f"1. inspect-style extraction of {DOCS} (ocr={args.ocr})")
            print(f"{'file':<26}{'pages':>6}{'OCR':>5}{'figs':>6}{'s':>8}{'pages/s':>9}{'import MB':>11}{'peak MB':>9}")
            tot_p = tot_s = 0.0
            for path in sorted(DOCS.glob("*.pdf")):
                r = run_child(path, args.ocr)
                tot_p += r["pages"]
                tot_s += r["seconds"]
                print(
                    f"{path.name:<26}{r['pages']:>6}{r['ocr']:>5}{r['figures']:>6}{r['seconds']:>8.1f}"
                    f"{r['pages'] / r['seconds']:>9.2f}{r['base_kb'] / 1024:>11.0f}{r['peak_kb'] / 1024:>9.0f}"
                )
            print(f"{'total':<26}{int(tot_p):>6}{'':>5}{'':>6}{tot_s:>8.1f}{tot_p / tot_s:>9.2f}")

    print("\n2. peak RSS against document length (generated PDFs, ocr=never, inspect mode)")
    print(f"{'pages':>6}{'MB file':>9}{'figs':>6}{'s':>8}{'pages/s':>9}{'import MB':>11}{'peak MB':>9}{'vs first':>10}")
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.pages:
            path = make_long_pdf(Path(tmp) / f"long{n}.pdf", n)
            r = run_child(path, "never")
            first = first or r["peak_kb"]
            print(
                f"{n:>6}{path.stat().st_size / 1e6:>9.1f}{r['figures']:>6}{r['seconds']:>8.1f}{r['pages'] / r['seconds']:>9.1f}"
                f"{r['base_kb'] / 1024:>11.0f}{r['peak_kb'] / 1024:>9.0f}{r['peak_kb'] / first:>10.2f}x"
            )

    if args.render_pages:
        print("\n3. peak RSS with page images and crops written (webp at dpi 110, ocr=never)")
        print(f"{'pages':>6}{'figs':>6}{'s':>8}{'pages/s':>9}{'images MB':>11}{'peak MB':>9}{'vs first':>10}")
        first = None
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.render_pages:
                path = make_long_pdf(Path(tmp) / f"render{n}.pdf", n)
                out = Path(tmp) / f"images{n}"
                r = run_child(path, "never", out)
                size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
                first = first or r["peak_kb"]
                print(
                    f"{n:>6}{r['figures']:>6}{r['seconds']:>8.1f}{r['pages'] / r['seconds']:>9.1f}"
                    f"{size:>11.1f}{r['peak_kb'] / 1024:>9.0f}{r['peak_kb'] / first:>10.2f}x"
                )


if __name__ == "__main__":
    main()

"""Memory of ingest against document length: peak PSS of the process tree, a short and a long PDF.

    .venv/bin/python bench/bench_memory.py [--pages 100 2000] [--folder] [--json FILE] [--trace] [--detail]
    .venv/bin/python bench/bench_memory.py --detail --paths ../shared/eval/docs   # where the public set's peak is

For each length N a PDF of N pages of the same kind is generated (PyMuPDF, deterministic, in
a temporary folder): two text paragraphs per page (the page number in them, so no two pages
are alike), a raster figure with a caption every 10th page and a small ruled table every 25th.
Each is ingested by ``mmrag ingest --no-progress`` (default config) into a fresh knowledge
base in its own subprocess, while this process samples the summed PSS of that process and
all its descendants every 0.2 s (``bench/_tree_memory.py``). Printed per length: pages, CPU
seconds of the tree (user + system), peak PSS, the peak RSS of its largest process, and the
PSS ratio to the first length; the target is a 2,000-page document peaking at <= 1.2x a
100-page one (issue 23). ``--folder``: each long PDF is ingested with a one-page PDF beside it,
as a folder is, so that it is read in an extraction worker process (one file alone is read in
the ingesting process).

``--detail``: also print, for each run, the processes of the tree at the peak sample: PSS (anonymous
and file-backed), RSS and the largest mappings by name (``[heap]`` is glibc's main heap, ``[anon]``
unnamed mappings); a parent column tells the ingesting process, its extraction workers and the
children they fork for table finding. ``--paths P...``: ingest these files or folders (one run)
instead of generated PDFs.

``--trace``: instead, ingest each PDF in-process under ``tracemalloc`` and print the 15
allocation sites that grew most between the first page batch written and the last, to find
what is kept per page (run it with short lengths, e.g. ``--pages 100 400``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _tree_memory import TreePss, describe  # noqa: E402  (bench/ is the script's folder)

WORDS = ("pump", "valve", "sensor", "pressure", "filter", "torque", "circuit", "relay", "bearing", "coolant",
         "inverter", "fuse", "gasket", "manifold", "actuator", "encoder", "spindle", "damper", "nozzle", "turbine")


def _paragraph(page: int, k: int) -> str:
    words = [WORDS[(page * 7 + k * 3 + i * i) % len(WORDS)] for i in range(60)]
    return (f"Section {page}.{k}. Maintenance note {page * 10 + k}: " + " ".join(words) + ". "
            f"Check the readings on page {page} before the next service interval of {page % 17 + 3} days.")


def make_pdf(path: Path, pages: int) -> Path:
    """``pages`` pages of the same kind (see the module docstring); the same bytes every time."""
    import pymupdf

    sys.path.insert(0, str(ROOT / "tests"))
    import _pdfgen as g

    picture = g.png_bytes(240, 150)
    doc = pymupdf.open()
    for i in range(1, pages + 1):
        page = doc.new_page(width=612, height=792)
        page.insert_textbox(pymupdf.Rect(60, 60, 552, 300), _paragraph(i, 1), fontsize=10)
        if i % 10 == 0:
            page.insert_image(pymupdf.Rect(150, 320, 450, 507), stream=picture)
            page.insert_text((150, 525), f"Figure {i // 10}: Trend of the readings up to page {i}.", fontsize=9)
        elif i % 25 == 7:
            rows = [("Part", "Interval", "Torque"), *[(WORDS[(i + r) % len(WORDS)], f"{r * 6} months", f"{r * 12 + i % 9} Nm") for r in range(1, 5)]]
            g.table_page(page, 100, 330, rows, caption=f"Table {i}: Service intervals.")
        page.insert_textbox(pymupdf.Rect(60, 560, 552, 740), _paragraph(i, 2), fontsize=10)
    doc.set_metadata({})  # no creation date
    doc.save(path, garbage=3, deflate=True, no_new_id=True)
    doc.close()
    return path


def measure(pdf: Path | list[Path], workdir: Path, beside: Path | None = None, detail: bool = False) -> dict:
    """Ingest ``pdf`` (a path or several; and ``beside``) into a fresh knowledge base in a
    subprocess; its tree's peak PSS and CPU (``detail``: and its processes at the peak)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    cmd = [sys.executable, "-c", "from rag.cli import main; main()", "ingest", "--kb", str(workdir / "kb"), "--no-progress",
           *map(str, pdf if isinstance(pdf, list) else [pdf])]
    if beside is not None:
        cmd.append(str(beside))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreePss(proc.pid, detail=detail) as pss:
        out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"mmrag ingest {pdf} failed ({proc.returncode}):\n{err[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # the largest process among all reaped so far: this run's, as the lengths grow
    return {"peak_pss_mb": round(pss.peak_mb, 1), "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
            "cpu_s": round(cpu, 1), "samples": pss.samples, "at_peak": describe(pss.at_peak) if detail else None}


def trace(pdf: Path, workdir: Path, top: int = 15) -> list[str]:
    """Ingest in this process under tracemalloc: the sites that grew most from the first
    written batch to the last (what is kept per page)."""
    import tracemalloc

    from rag.config import Config
    from rag.kb import KnowledgeBase

    snaps: list[tracemalloc.Snapshot] = []
    tracemalloc.start(12)

    def on_page(_path: Path, done: int, total: int) -> None:
        if done in (32, total):
            snaps.append(tracemalloc.take_snapshot())

    with KnowledgeBase.open(workdir / "kb", Config(), create=True) as kb:
        kb.ingest([pdf], progress=False, on_page=on_page)
        snaps.append(tracemalloc.take_snapshot())
    tracemalloc.stop()
    stats = snaps[-1].compare_to(snaps[0], "traceback")
    lines = []
    for stat in stats[:top]:
        frames = [f"{f.filename.rsplit('/site-packages/', 1)[-1]}:{f.lineno}" for f in stat.traceback[-4:]]
        lines.append(f"{stat.size_diff / 1024:>9.0f} KiB {stat.count_diff:>+8d}  " + " < ".join(reversed(frames)))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, nargs="+", default=[100, 2000])
    ap.add_argument("--folder", action="store_true", help="a one-page PDF beside each: read in a worker process")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--trace", action="store_true", help="tracemalloc growth in-process instead of PSS")
    ap.add_argument("--detail", action="store_true", help="print the tree's processes at the peak")
    ap.add_argument("--paths", type=Path, nargs="+", help="ingest these files or folders instead of generated PDFs")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmrag-memory-") as tmp:
        if args.paths:
            work = Path(tmp) / "run"
            work.mkdir()
            r = measure(args.paths, work, detail=args.detail)
            sys.stdout.write(f"{' '.join(map(str, args.paths))}: CPU {r['cpu_s']} s, peak PSS {r['peak_pss_mb']} MB\n")
            if args.detail:
                sys.stdout.write(r["at_peak"] + "\n")
            return
        for n in args.pages:
            pdf = make_pdf(Path(tmp) / f"long{n}.pdf", n)
            work = Path(tmp) / f"run{n}"
            work.mkdir()
            if args.trace:
                sys.stdout.write(f"{n} pages: growth from page 32 to the end\n" + "\n".join(trace(pdf, work)) + "\n")
                continue
            r = measure(pdf, work, make_pdf(Path(tmp) / "one.pdf", 1) if args.folder else None, args.detail)
            if args.detail:
                sys.stdout.write(f"{n} pages, at the peak ({r['peak_pss_mb']} MB):\n{r.pop('at_peak')}\n")
            rows.append({"pages": n, "mb_file": round(pdf.stat().st_size / 1e6, 1), **r})
    if args.trace:
        return
    first = rows[0]["peak_pss_mb"]
    sys.stdout.write(f"{'pages':>6}{'MB file':>9}{'CPU s':>8}{'peak PSS MB':>13}{'peak RSS MB':>13}{'vs first':>10}\n")
    for row in rows:
        row["vs_first"] = round(row["peak_pss_mb"] / first, 2)
        sys.stdout.write(f"{row['pages']:>6}{row['mb_file']:>9}{row['cpu_s']:>8}{row['peak_pss_mb']:>13}"
                         f"{row['peak_rss_mb']:>13}{row['vs_first']:>9}x\n")
    sys.stdout.write("target: the longest <= 1.2x the first (issue 23)\n")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

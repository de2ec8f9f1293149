"""Where OCR's CPU goes, figure by figure: detection, angle classifier, recognition.

    .venv/bin/python bench/bench_ocr.py [PDF ...] [--pages 2,133,176] [--json OUT]

Reads each PDF page by page as ingest does (in this process, so the OCR engine has this
process's two threads; extraction workers use one), and for every raster figure it OCRs prints
the CPU of rapidocr's three stages (process CPU, all threads), the clip's rendered size (and
its size at ``ocr_dpi``) beside the native pixel size of the images it shows, the lines and words kept.
Glyph repair's line recognitions are counted too (CPU, lines, repeated glyph runs). Default:
``freeculture.pdf`` of ../shared/eval/docs (about 20 raster figures; a few minutes).

Compare two versions back to back on the same input (the machine is shared: absolute CPU
varies between runs); ``--json`` keeps each figure's words to diff what a change keeps.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT.parent / "shared" / "eval" / "docs"
sys.path.insert(0, str(ROOT))


def _timed(cls: Any, stage: collections.Counter[str], name: str) -> None:
    real = cls.__call__

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return real(self, *args, **kwargs)
        finally:
            stage[name] += time.process_time() - started

    cls.__call__ = call


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pdfs", nargs="*", type=Path, default=[DOCS / "freeculture.pdf"])
    ap.add_argument("--pages", help="comma-separated 1-based pages (default: all)")
    ap.add_argument("--json", type=Path, help="write every figure's numbers and words here")
    args = ap.parse_args(argv)

    import pymupdf
    import rapidocr.ch_ppocr_cls.main as cls_main
    import rapidocr.ch_ppocr_det.main as det_main
    import rapidocr.ch_ppocr_rec.main as rec_main

    import ingest._ocr as ocr
    import ingest._pdf as pdf
    import ingest._repair as repair
    from ingest.reader import DocumentReader
    from rag.config import IngestConfig

    stage: collections.Counter[str] = collections.Counter()
    _timed(det_main.TextDetector, stage, "det")
    _timed(cls_main.TextClassifier, stage, "cls")
    _timed(rec_main.TextRecognizer, stage, "rec")

    figures: list[dict[str, Any]] = []
    real_region, real_array = pdf.ocr_region, ocr.ocr_array
    shapes: list[tuple[int, ...]] = []

    def array(image: Any, *a: Any, **k: Any) -> Any:
        shapes.append(image.shape)
        return real_array(image, *a, **k)

    ocr.ocr_array = array

    def region(page: Any, clip: Any, config: IngestConfig) -> str:
        before, started = dict(stage), time.process_time()
        shapes.clear()
        text = real_region(page, clip, config)
        rect = pymupdf.Rect(clip)
        figures.append({
            "doc": Path(page.parent.name).name, "page": page.number + 1, "clip": [round(v, 1) for v in clip],
            "at_ocr_dpi_px": [round(rect.width * config.ocr_dpi / 72), round(rect.height * config.ocr_dpi / 72)],
            "rendered_px": [shapes[-1][1], shapes[-1][0]] if shapes else [0, 0],
            "native_px": [[i["width"], i["height"]] for i in page.get_image_info() if pymupdf.Rect(i["bbox"]).intersects(rect)],
            "cpu_s": round(time.process_time() - started, 3),
            **{k: round(stage[k] - before.get(k, 0.0), 3) for k in ("det", "cls", "rec")},
            "lines": len(text.splitlines()), "words": text.split(),
        })
        return text

    pdf.ocr_region = region
    lines: collections.Counter[str] = collections.Counter()
    runs: collections.Counter[Any] = collections.Counter()
    real_recognize, real_pick = ocr.recognize_lines, repair.GlyphRepair._pick

    def recognize(images: list[Any]) -> list[tuple[str, float]]:
        started = time.process_time()
        out = real_recognize(images)
        lines["cpu_s"] += time.process_time() - started
        lines["recognised"] += len(images)
        return out

    def pick(self: Any, candidates: list[Any], limit: int) -> list[Any]:
        out = real_pick(self, candidates, limit)
        runs.update((ln.symbols, ln.turns) for ln in out)
        return out

    ocr.recognize_lines = recognize
    repair.GlyphRepair._pick = pick  # type: ignore[method-assign]

    config = IngestConfig()
    wanted = None if not args.pages else [int(p) for p in args.pages.split(",")]
    started = time.process_time()
    for path in args.pdfs:
        with DocumentReader(path, config) as reader:
            reader.open()
            for n in wanted or range(1, reader.info.page_count + 1):
                reader.page(n)
    total = time.process_time() - started

    print(f"{'doc':<22}{'page':>5}  {'rendered':>9}  {'native':<14}{'cpu':>6}{'det':>6}{'cls':>6}{'rec':>6}{'lines':>6}{'words':>6}")
    for f in figures:
        native = ",".join(f"{w}x{h}" for w, h in f["native_px"])[:13]
        print(f"{f['doc'][:21]:<22}{f['page']:>5}  {f['rendered_px'][0]:>4}x{f['rendered_px'][1]:<4}  {native:<14}"
              f"{f['cpu_s']:>6.2f}{f['det']:>6.2f}{f['cls']:>6.2f}{f['rec']:>6.2f}{f['lines']:>6}{len(f['words']):>6}")
    sums = {k: round(sum(f[k] for f in figures), 2) for k in ("cpu_s", "det", "cls", "rec")}
    print(f"{len(figures)} figures: {sums}; {sum(len(f['words']) for f in figures)} words; "
          f"glyph repair {lines['recognised']} lines in {lines['cpu_s']:.2f} s, "
          f"{sum(runs.values()) - len(runs)} picks of a glyph run already read; process CPU {total:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "totals": sums, "process_cpu_s": round(total, 2),
                                         "repair": {**lines, "runs": len(runs), "picks": sum(runs.values())}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

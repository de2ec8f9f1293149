"""CPU time and bytes of one page image in each format the ingest can write, at the configured dpi.

    python bench/bench_page_images.py [PDF ...]   # default: the shared evaluation PDFs, a few pages each

Per format: the encoder's CPU ms per page (best of 3, ``time.process_time``) and kB per page,
through the same call the ingest makes (:func:`ingest._render.save_pil`), plus WebP methods 0/1/4
and PyMuPDF's own JPEG (``pix.tobytes("jpeg")``, no Pillow copy) for comparison. Measured here
(session 12, 110 dpi, the 17 pages this picks from the shared set, a busy machine): save_pil
jpeg 3.8 CPU ms and 172 kB a page; webp (method 2) 35.6 ms, 103 kB; png 46 ms, 240 kB; webp
method 0 23.5 ms, 123 kB; PyMuPDF's jpeg 48 ms.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest._render import pixmap_to_pil, save_pil  # noqa: E402
from rag.config import IngestConfig  # noqa: E402

DOCS = ROOT.parent / "shared" / "eval" / "docs"


def _best(fn, runs: int = 3) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(runs):
        started = time.process_time()
        size = fn()
        best = min(best, time.process_time() - started)
    return best, size


def main(paths: list[Path]) -> None:
    import pymupdf
    from PIL import Image

    config = IngestConfig()
    totals: dict[str, list[float]] = {}
    pages = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            with pymupdf.open(path) as doc:
                for index in sorted({i for i in (0, 1, 2, doc.page_count // 2, doc.page_count - 1) if i < doc.page_count}):
                    pix = doc[index].get_pixmap(dpi=config.dpi, alpha=False)
                    image = pixmap_to_pil(pix)
                    pages += 1
                    cases = {f"save_pil {fmt}": replace(config, image_format=fmt) for fmt in ("jpeg", "webp", "png")}
                    for name, cfg in cases.items():
                        out = Path(tmp) / f"page.{cfg.image_format}"
                        cpu, size = _best(lambda cfg=cfg, out=out: save_pil(image, out, cfg).stat().st_size)
                        totals.setdefault(name, [0.0, 0])[0] += cpu
                        totals[name][1] += size

                    def webp(method: int, image: Image.Image = image) -> int:
                        buf = io.BytesIO()
                        image.save(buf, format="WEBP", quality=config.image_quality, method=method)
                        return buf.tell()

                    extra = {f"webp method {m}": (lambda m=m: webp(m)) for m in (0, 1, 4)}
                    extra["pymupdf jpeg"] = lambda pix=pix: len(pix.tobytes("jpeg", jpg_quality=config.image_quality))
                    for name, fn in extra.items():
                        cpu, size = _best(fn)
                        totals.setdefault(name, [0.0, 0])[0] += cpu
                        totals[name][1] += size
    print(f"{pages} pages at {config.dpi} dpi, quality {config.image_quality} (default format: {config.image_format})")
    for name, (cpu, size) in totals.items():
        print(f"  {name:18s} {1000 * cpu / pages:7.1f} CPU ms/page  {size / pages / 1024:7.1f} kB/page")


if __name__ == "__main__":
    given = [Path(p) for p in sys.argv[1:]]
    if not given and not DOCS.is_dir():
        sys.exit(f"no PDFs given and {DOCS} does not exist: pass PDF paths")
    main(given or sorted(DOCS.glob("*.pdf")))

"""Ray Data ingestion against the in-process path on this machine: wall time ratio, same run.

    .venv/bin/python bench/bench_ray.py [--files 6] [--pages 12] [--runs 3] [--docs FOLDER] [--cpus N]

The same files are ingested into a fresh knowledge base by each engine, alternating, ``--runs``
times (the in-process engine with its defaults: extraction worker processes beside the
embedding thread). Ray runs on a local instance started once, before the runs (its start-up
is printed apart: a cluster user pays it once, ``mmrag ingest --engine ray`` without an address
pays it each time). Prints each run's seconds and the ratio ray / in-process, and the median.
By default the files are generated (prose, a vector chart and a picture per page, no OCR);
``--docs`` ingests a folder instead (e.g. ../shared/eval/docs).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def make_files(folder: Path, files: int, pages: int) -> list[Path]:
    from bench_ingest import make_long_pdf

    return [make_long_pdf(folder / f"doc{i:02d}.pdf", pages) for i in range(files)]


def ingest_seconds(kb_path: Path, engine: str, docs: Path, ocr: str) -> tuple[float, dict[str, int]]:
    from rag import KnowledgeBase
    from rag.config import Config, IngestConfig

    config = Config(ingest=IngestConfig(ocr=ocr, engine=engine))
    started = time.perf_counter()
    with KnowledgeBase.open(kb_path, config, create=True) as kb:
        reports = kb.ingest([docs], progress=False)
        seconds = time.perf_counter() - started
        failed = [r for r in reports if not r.ok]
        if failed:
            raise SystemExit(f"{engine}: {len(failed)} files failed, e.g. {failed[0].error}")
        points = {c: v["points"] for c, v in kb.info()["corpora"].items()}
    return seconds, points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--pages", type=int, default=12, help="pages per generated file")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--docs", type=Path, help="ingest this folder instead of generated files")
    ap.add_argument("--ocr", default="never", choices=["never", "auto"])
    ap.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import ray

    work = Path(tempfile.mkdtemp(prefix="mmrag-bench-ray-"))
    try:
        docs = args.docs
        if docs is None:
            docs = work / "docs"
            docs.mkdir()
            make_files(docs, args.files, args.pages)
        n_files = sum(1 for p in docs.iterdir() if p.is_file())
        # one untimed in-process ingest: the ONNX export of the text model is cached for both engines
        ingest_seconds(work / "warm", "local", docs, args.ocr)
        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        print(f"local Ray instance started in {time.perf_counter() - started:.1f} s "
              f"({ray.cluster_resources().get('CPU', 0):g} CPUs)")
        print(f"{n_files} files from {docs}")
        ratios = []
        for run in range(1, args.runs + 1):
            local_s, local_points = ingest_seconds(work / f"local{run}", "local", docs, args.ocr)
            ray_s, ray_points = ingest_seconds(work / f"ray{run}", "ray", docs, args.ocr)
            if ray_points != local_points:
                raise SystemExit(f"run {run}: different point counts: in-process {local_points}, ray {ray_points}")
            ratios.append(ray_s / local_s)
            print(f"run {run}: in-process {local_s:6.1f} s   ray {ray_s:6.1f} s   ratio {ratios[-1]:.2f}   points {local_points}")
        print(f"median ratio ray / in-process: {statistics.median(ratios):.2f} over {args.runs} runs")
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

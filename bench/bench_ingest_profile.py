"""Where ingest spends its CPU: ``mmrag ingest`` under py-spy, every sample given to one stage.

    .venv/bin/python bench/bench_ingest_profile.py [--set public|heldout] [--docs DIR] [--profile default|fast]
        [--rate 50] [--json FILE]

Runs ``mmrag ingest --no-progress`` (default config; ``--profile fast``: the fast ingest profile,
``mmrag ingest --fast``) into a fresh knowledge base in a temporary
folder, under ``py-spy record --subprocesses --nonblocking --format raw`` (the parent and its
extraction workers; py-spy ``0.4.3``, the ``bench`` extra). Each sampled stack is mapped to ONE
stage by its frames: the innermost frame that matches a rule of :data:`RULES` decides (so OCR
run by glyph repair counts as OCR, page text read by the table finder counts as text
extraction); a stack no rule matches is ``other``. A stage's CPU is its share of the samples
times the measured user + system CPU of the ingest process tree (``getrusage(RUSAGE_CHILDREN)``
of a small wrapper process that runs the CLI, so py-spy's own CPU is not counted), divided by
the pages indexed. Printed: CPU ms per page per stage, share %, samples, and a second table of
the OCR samples by what asked for them (figure OCR, page / text-layer OCR, glyph repair).
``--json FILE`` writes both with the totals; ``--keep-raw FILE`` keeps py-spy's stacks, and
``--raw FILE --cpu-s S --pages N`` tabulates such a recording again (after a change of the rules).

Documents: ``--set public`` (default, ``../shared/eval/docs``) or ``--set heldout`` (gathered
by ``bench/heldout_docs.py`` into ``~/.cache/mmrag-bench/heldout``, as ``bench/peers.py`` does);
``--docs DIR`` reads any folder instead.

Sampling: stacks of threads that run (py-spy leaves idle threads out); native threads without
Python frames (onnxruntime's intra-op pool) are not seen, so their CPU is spread over the
stages in proportion to the samples. On a loaded machine py-spy may fall behind; the shares
stay meaningful, the scaling to measured CPU keeps the totals right.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

OTHER = "other"


@dataclass(frozen=True)
class Rule:
    """A frame belongs to ``stage`` when its file matches ``file`` and its function ``func``
    (regular expressions, ``re.search``; py-spy names files by their package part, e.g.
    ``ingest/_pdf.py``, ``rapidocr/ch_ppocr_rec/main.py``)."""

    stage: str
    file: str
    func: str = ""


#: Stages in the order they are printed; the rules of a stage follow it. For one frame the
#: first matching rule wins; for one stack the innermost matching frame wins.
RULES: tuple[Rule, ...] = (
    Rule("imports / start-up", r"^<frozen importlib|importlib/", r"."),
    Rule("model loading", r"rag/_models\.py", r"^build_"),
    Rule("model loading", r"ingest/_ocr\.py", r"^get_engine$"),
    Rule("model loading", r"onnxruntime/", r"^(__init__|_create_inference_session)$"),
    Rule("model loading", r"retrievers/embedders/", r"^(load|_load\w*|_fast_encoder\w*|quantize|export|warm_up)$"),
    Rule("model loading", r"rapidocr/(main|ch_ppocr_\w+/main|inference_engine/.*)\.py", r"^__init__$"),
    Rule("model loading", r"pymupdf/layout/", r"^(get_model|__init__)$"),
    Rule("model loading", r"rapidocr/utils/download_file\.py"),
    Rule("model loading", r"rapidocr/", r"^get_file_sha256$"),
    Rule("model loading", r"sentence_transformers/SentenceTransformer\.py", r"^__init__$"),
    Rule("model loading", r"transformers/", r"^(from_pretrained|_load_pretrained_model|load_state_dict)$"),
    Rule("OCR detection", r"rapidocr/ch_ppocr_det/"),
    Rule("OCR recognition (+ angle classifier)", r"rapidocr/ch_ppocr_(rec|cls)/"),
    Rule("OCR recognition (+ angle classifier)", r"rapidocr/", r"recognize_txt|text_rec|text_cls|cls_img"),
    Rule("OCR other (crops, rapidocr glue)", r"rapidocr/(?!inference_engine/)"),  # the engine: its caller decides
    Rule("OCR other (crops, rapidocr glue)", r"ingest/_ocr\.py|ingest/_textlayer\.py",
         r"^(ocr_array|_ocr_clip|ocr_region|group_ocr_lines|skew_degrees|deskewed_boxes|layout_boxes|recognize_lines|_read|_upright_read|_stood_up)$"),
    Rule("OCR other (crops, rapidocr glue)", r"ingest/_image\.py", r"ocr"),
    Rule("tables", r"ingest/_tables\.py"),  # the finder, the table-cue check and the row split (session 12)
    Rule("tables", r"pymupdf/table\.py"),
    Rule("figure detection", r"ingest/_figures\.py"),
    Rule("figure detection", r"ingest/_pdf\.py", r"^(_elements|_centre_in|caption_|_in_margin)"),
    Rule("figure detection", r"pymupdf/", r"^(get_drawings|get_cdrawings|cluster_drawings|get_image_info|get_images|get_image_rects)$"),
    Rule("glyph repair", r"ingest/_repair\.py"),
    Rule("page images (render + encode)", r"ingest/_render\.py", r"^(save_pil|fit_dpi|max_side_for)$"),
    Rule("page images (render + encode)", r"ingest/_pdf\.py", r"^_page_image$"),
    Rule("page measure / guards", r"ingest/_guards\.py|ingest/_budget\.py"),
    Rule("page measure / guards", r"ingest/_pdf\.py", r"^_heavy_page$"),
    Rule("hashing", r"ingest/_files\.py", r"^(identify_file|_stamp|changed)$"),
    Rule("hashing", r"hashlib", r"."),
    Rule("navigation / labels", r"ingest/navigation\.py|ingest/_labels\.py"),
    Rule("layout / reading order", r"ingest/_layout\.py|ingest/_margins\.py|ingest/_sections\.py"),
    Rule("text extraction", r"ingest/_textlayer\.py|ingest/_quality\.py"),
    Rule("text extraction", r"pymupdf/", r"^(get_text|extractDICT|extractRAWDICT|extractWORDS|extractText|get_textpage|_get_textpage|get_text_blocks|get_text_words)$"),
    Rule("image embedding", r"retrievers/embedders/(clip|vision|colpali|vlm_embed|_images)\.py"),
    Rule("text embedding", r"retrievers/embedders/(onnx_text|text|_hf|matryoshka|_batching)\.py"),
    Rule("text embedding", r"sentence_transformers/|tokenizers/|transformers/"),
    Rule("BM25", r"retrievers/embedders/sparse\.py|rag/_term_stats\.py|snowballstemmer/"),
    Rule("store writes", r"retrievers/store/|qdrant_edge|qdrant_client/"),
    Rule("registry", r"rag/_registry\.py|sqlite3/"),
    Rule("messages between processes", r"multiprocessing/(queues|connection|reduction)\.py"),
)
STAGES: tuple[str, ...] = tuple(dict.fromkeys([r.stage for r in RULES] + [OTHER]))

#: Who asked for OCR: the first rule any frame of an OCR stack matches names the purpose.
OCR_PURPOSES: tuple[Rule, ...] = (
    Rule("figure OCR", r"ingest/_pdf\.py|ingest/_textlayer\.py", r"^ocr_region$"),
    Rule("glyph repair", r"ingest/_repair\.py"),
    Rule("page OCR (no usable text layer)", r"ingest/_textlayer\.py", r"^read_text_layer$"),
    Rule("image / frame OCR", r"ingest/_image\.py|ingest/_video\.py"),
)

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_COMPILED = [(r.stage, re.compile(r.file), re.compile(r.func)) for r in RULES]


def parse_frame(frame: str) -> tuple[str, str]:
    """``'GlyphRepair._learn (ingest/_repair.py:212)'`` -> ``('_learn', 'ingest/_repair.py')``:
    the function's own name (py-spy prefixes methods with their class) and its file."""
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip(), ""
    return m.group("func").rsplit(".", 1)[-1], m.group("file")


def _match(rules: Iterable[tuple[str, re.Pattern[str], re.Pattern[str]]], func: str, file: str) -> str | None:
    for stage, file_re, func_re in rules:
        if file_re.search(file) and func_re.search(func):
            return stage
    return None


def stage_of(frames: Sequence[str]) -> str:
    """The stage of one stack, frames outermost first (py-spy's order): innermost match wins."""
    for frame in reversed(frames):
        stage = _match(_COMPILED, *parse_frame(frame))
        if stage is not None:
            return stage
    return OTHER


_PURPOSES = [(r.stage, re.compile(r.file), re.compile(r.func)) for r in OCR_PURPOSES]


def ocr_purpose(frames: Sequence[str]) -> str:
    """For an OCR stack: what asked for the OCR, the first rule of :data:`OCR_PURPOSES` that
    any frame matches, else ``other``."""
    parsed = [parse_frame(f) for f in frames]
    for rule in _PURPOSES:
        if any(_match([rule], func, file) for func, file in parsed):
            return rule[0]
    return OTHER


def parse_raw(lines: Iterable[str]) -> Iterable[tuple[list[str], int]]:
    """py-spy's raw (collapsed) lines ``process 12:"python …";thread (0x…);f (file:line);… 7``
    -> (Python frames outermost first, sample count); process and thread entries dropped."""
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread ("))]
        yield frames, int(count)


def tally(lines: Iterable[str]) -> tuple[Counter[str], Counter[str]]:
    """Samples per stage, and OCR samples per purpose."""
    stages: Counter[str] = Counter()
    purposes: Counter[str] = Counter()
    for frames, count in parse_raw(lines):
        stage = stage_of(frames)
        stages[stage] += count
        if stage.startswith("OCR"):
            purposes[ocr_purpose(frames)] += count
    return stages, purposes


def table(samples: Counter[str], cpu_s: float, pages: int, order: Sequence[str]) -> list[dict]:
    """Rows of CPU ms per page: samples scaled so that their sum is ``cpu_s``."""
    total = sum(samples.values())
    rows = []
    for stage in order:
        n = samples.get(stage, 0)
        share = n / total if total else 0.0
        rows.append({"stage": stage, "samples": n, "share_pct": round(100 * share, 1),
                     "cpu_ms_page": round(share * cpu_s * 1000 / max(pages, 1), 1)})
    return rows


# --- running -----------------------------------------------------------------------------

def _wrapper(out: Path, cli_args: list[str]) -> None:
    """Runs under py-spy: the CLI in a subprocess, then its tree's CPU (reaped children only)."""
    cmd = [sys.executable, "-c", "from rag.cli import main; main()", *cli_args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    out.write_text(json.dumps({"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr[-4000:],
                               "cpu_s": usage.ru_utime + usage.ru_stime}))


def _pages(stdout: str) -> int:
    """Pages indexed, from ``mmrag ingest --json``."""
    return sum(d["pages"] for d in json.loads(stdout)["documents"] if d["status"] == "indexed")


def profile(docs: Path, rate: int, workdir: Path, keep_raw: Path | None = None, ingest_profile: str = "default") -> dict:
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy not found: pip install 'mmrag[bench]' (py-spy==0.4.3)")
    raw, result = workdir / "profile.raw", workdir / "wrapper.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    fast = ["--fast"] if ingest_profile == "fast" else []
    cli = ["ingest", "--kb", str(workdir / "kb"), *fast, "--no-progress", "--json", str(docs)]
    cmd = [py_spy, "record", "--subprocesses", "--nonblocking", "--format", "raw", "--rate", str(rate),
           "--output", str(raw), "--", sys.executable, __file__, "--wrapper", str(result), "--", *cli]
    spy = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if not result.is_file():
        raise SystemExit(f"py-spy failed ({spy.returncode}): {spy.stderr[-2000:]}")
    ran = json.loads(result.read_text())
    if ran["returncode"] != 0:
        raise SystemExit(f"mmrag ingest failed ({ran['returncode']}): {ran['stderr']}")
    if keep_raw is not None:
        shutil.copyfile(raw, keep_raw)
    return {**summarize(raw, ran["cpu_s"], _pages(ran["stdout"]), docs, rate), "profile": ingest_profile}


def summarize(raw: Path, cpu_s: float, pages: int, docs: Path, rate: int) -> dict:
    """The tables of one recording: ``raw`` stacks, the tree's CPU seconds, pages indexed."""
    with raw.open() as fh:
        stages, purposes = tally(fh)
    ocr_cpu = cpu_s * sum(purposes.values()) / max(sum(stages.values()), 1)
    return {
        "docs": str(docs), "pages": pages, "cpu_s": round(cpu_s, 2), "rate_hz": rate,
        "samples": sum(stages.values()), "cpu_ms_page": round(cpu_s * 1000 / max(pages, 1), 1),
        "stages": table(stages, cpu_s, pages, STAGES),
        "ocr_by_purpose": table(purposes, ocr_cpu, pages, [r.stage for r in OCR_PURPOSES] + [OTHER]),
    }


def _print(rows: list[dict], title: str) -> None:
    sys.stdout.write(f"{title:<40}{'CPU ms/page':>12}{'share %':>9}{'samples':>9}\n")
    for row in rows:
        if row["samples"]:
            sys.stdout.write(f"{row['stage']:<40}{row['cpu_ms_page']:>12}{row['share_pct']:>9}{row['samples']:>9}\n")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--wrapper":
        _wrapper(Path(sys.argv[2]), sys.argv[4:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=["public", "heldout"], default="public", dest="qset")
    ap.add_argument("--docs", type=Path, help="any folder of documents instead of the set's")
    ap.add_argument("--cache", type=Path, help="where held-out documents are gathered (peers.py's default)")
    ap.add_argument("--profile", choices=["default", "fast"], default="default", dest="ingest_profile",
                    help="the ingest profile of the run (fast: mmrag ingest --fast; default: default)")
    ap.add_argument("--rate", type=int, default=50, help="samples per second (default 50)")
    ap.add_argument("--json", type=Path, help="also write the tables as JSON here")
    ap.add_argument("--keep-raw", type=Path, help="copy py-spy's raw stacks here")
    ap.add_argument("--raw", type=Path, help="tabulate this earlier recording (with --cpu-s and --pages) instead of running")
    ap.add_argument("--cpu-s", type=float, help="with --raw: the CPU seconds it measured")
    ap.add_argument("--pages", type=int, help="with --raw: the pages it indexed")
    args = ap.parse_args()
    if args.raw is not None:
        if args.cpu_s is None or args.pages is None:
            ap.error("--raw needs --cpu-s and --pages (printed by the run that recorded it)")
        _report(summarize(args.raw, args.cpu_s, args.pages, args.docs or args.raw, args.rate), args.json)
        return
    if args.docs is None:
        import peers

        args.docs = peers.set_docs(args.qset, peers.CACHE if args.cache is None else args.cache)
    with tempfile.TemporaryDirectory(prefix="mmrag-profile-") as tmp:
        result = profile(args.docs, args.rate, Path(tmp), args.keep_raw, args.ingest_profile)
    _report(result, args.json)


def _report(result: dict, json_path: Path | None) -> None:
    sys.stdout.write(f"{result['docs']} ({result.get('profile', 'default')} profile): {result['pages']} pages, {result['cpu_s']} s CPU "
                     f"({result['cpu_ms_page']} ms/page), {result['samples']} samples at {result['rate_hz']} Hz\n")
    _print(result["stages"], "stage")
    total = sum(r["cpu_ms_page"] for r in result["stages"])
    sys.stdout.write(f"{'total':<40}{total:>12.1f}{100.0:>9}{result['samples']:>9}\n\n")
    _print(result["ocr_by_purpose"], "OCR (all OCR stages) asked for by")
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

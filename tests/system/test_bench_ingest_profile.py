"""The stage mapper of ``bench/bench_ingest_profile.py`` on hand-written py-spy stacks.

No profiler runs here: the stacks are written the way py-spy's raw format prints them
(outermost frame first, methods prefixed with their class), and each test pins which stage a
sample is charged to, so that a reading of the profile ("OCR recognition is 56 %") means what
it says.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def prof():
    spec = importlib.util.spec_from_file_location("bench_ingest_profile", ROOT / "bench" / "bench_ingest_profile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


CLI = "<module> (<string>:1);main (rag/cli.py:453);cmd_ingest (rag/cli.py:194);KnowledgeBase.ingest (rag/kb.py:236)"
WORKER = ("_process_worker (concurrent/futures/process.py:264);_extract (ingest/parallel.py:131);"
          "DocumentReader.pages (ingest/reader.py:231);DocumentReader._extract (ingest/reader.py:278)")
ENGINE = "OrtInferSession.__call__ (rapidocr/inference_engine/onnxruntime/main.py:90);Session.run (onnxruntime/capi/onnxruntime_inference_collection.py:287)"


def frames(*parts: str) -> list[str]:
    return ";".join(parts).split(";")


def test_figure_ocr_is_charged_to_the_recogniser_not_to_its_callers(prof) -> None:
    stack = frames(WORKER, "extract_pdf_page (ingest/_pdf.py:300)", "ocr_region (ingest/_textlayer.py:200)",
                   "_ocr_clip (ingest/_textlayer.py:222)", "ocr_array (ingest/_ocr.py:80)", "RapidOCR.__call__ (rapidocr/main.py:100)",
                   "RapidOCR.recognize_txt (rapidocr/main.py:180)", "TextRecognizer.__call__ (rapidocr/ch_ppocr_rec/main.py:60)", ENGINE)
    assert prof.stage_of(stack) == "OCR recognition (+ angle classifier)"
    assert prof.ocr_purpose(stack) == "figure OCR"
    page = frames(WORKER, "extract_pdf_page (ingest/_pdf.py:270)", "read_text_layer (ingest/_textlayer.py:120)",
                  "_ocr_clip (ingest/_textlayer.py:222)", "ocr_array (ingest/_ocr.py:80)")
    assert prof.ocr_purpose(page) == "page OCR (no usable text layer)"
    detect = stack[:-4] + frames("RapidOCR.detect_and_crop (rapidocr/main.py:150)",
                                 "TextDetector.__call__ (rapidocr/ch_ppocr_det/main.py:40)", ENGINE)
    assert prof.stage_of(detect) == "OCR detection"


def test_ocr_asked_for_by_glyph_repair_is_ocr_and_names_glyph_repair_as_its_purpose(prof) -> None:
    stack = frames(WORKER, "extract_pdf_page (ingest/_pdf.py:280)", "GlyphRepair.repair (ingest/_repair.py:90)",
                   "GlyphRepair._learn (ingest/_repair.py:130)", "recognize_lines (ingest/_ocr.py:150)",
                   "RapidOCR.recognize_txt (rapidocr/main.py:180)", "TextRecognizer.__call__ (rapidocr/ch_ppocr_rec/main.py:60)", ENGINE)
    assert prof.stage_of(stack) == "OCR recognition (+ angle classifier)"
    assert prof.ocr_purpose(stack) == "glyph repair"
    # the repair's own Python work, above the OCR call, stays glyph repair
    assert prof.stage_of(stack[:-5]) == "glyph repair"


def test_tables_found_in_a_killable_child_are_tables_not_guards(prof) -> None:
    stack = frames(WORKER, "extract_pdf_page (ingest/_pdf.py:310)", "run_killable (ingest/_budget.py:236)",
                   "find_tables (ingest/_tables.py:60)", "Page.find_tables (pymupdf/__init__.py:900)", "find_tables (pymupdf/table.py:2300)")
    assert prof.stage_of(stack) == "tables"
    assert prof.stage_of(stack[:-3]) == "page measure / guards"


def test_embedding_model_loading_imports_and_page_images(prof) -> None:
    flush = "_worker (concurrent/futures/thread.py:90);Indexer._flush (rag/_indexer.py:296);build_points (retrievers/corpora.py:140)"
    encode = frames(flush, "SentenceTransformerEmbedder.embed_documents (retrievers/embedders/text.py:220)",
                    "OnnxTextEncoder.encode (retrievers/embedders/onnx_text.py:240)", "Session.run (onnxruntime/capi/onnxruntime_inference_collection.py:287)")
    assert prof.stage_of(encode) == "text embedding"
    load = frames(flush, "SentenceTransformerEmbedder.embed_documents (retrievers/embedders/text.py:215)",
                  "SentenceTransformerEmbedder._fast_encoder (retrievers/embedders/text.py:190)",
                  "InferenceSession.__init__ (onnxruntime/capi/onnxruntime_inference_collection.py:480)")
    assert prof.stage_of(load) == "model loading"
    imported = frames(CLI, "_find_and_load (<frozen importlib._bootstrap>:1173)", "<module> (torch/__init__.py:1)")
    assert prof.stage_of(imported) == "imports / start-up"
    webp = frames(WORKER, "extract_pdf_page (ingest/_pdf.py:330)", "_page_image (ingest/_pdf.py:350)",
                  "save_pil (ingest/_render.py:40)", "Image.save (PIL/Image.py:2500)", "_save (PIL/WebPImagePlugin.py:300)")
    assert prof.stage_of(webp) == "page images (render + encode)"
    assert prof.stage_of(frames(CLI, "something (elsewhere/x.py:1)")) == "other"


def test_raw_lines_are_parsed_and_scaled_to_the_measured_cpu(prof) -> None:
    raw = [
        'process 11:"python -c ...";process 12:"python -c ...";' + WORKER + ";_heavy_page (ingest/_pdf.py:120) 30\n",
        'process 11:"python -c ...";' + CLI + ";Indexer._flush (rag/_indexer.py:300);EdgeStore.upsert (retrievers/store/edge.py:210) 10\n",
        "\n",
    ]
    stages, purposes = prof.tally(raw)
    assert stages == {"page measure / guards": 30, "store writes": 10} and not purposes
    rows = {r["stage"]: r for r in prof.table(stages, cpu_s=8.0, pages=4, order=prof.STAGES)}
    assert rows["page measure / guards"]["cpu_ms_page"] == 1500.0 and rows["store writes"]["cpu_ms_page"] == 500.0
    assert rows["page measure / guards"]["share_pct"] == 75.0
    assert sum(r["cpu_ms_page"] for r in rows.values()) == 2000.0  # 8 s over 4 pages, all of it placed

"""llama-index over an mmrag knowledge base: the retriever's nodes, a real RetrieverQueryEngine with
llama-index's MockLLM (no API key anywhere), and mmrag's own query engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import ImageNode, MetadataMode, NodeWithScore

from rag.integrations.llama_index import MmragQueryEngine, MmragRetriever


@pytest.fixture(scope="module")
def kb(kb_path: Path):
    from rag import KnowledgeBase

    with KnowledgeBase.open(kb_path) as kb:
        yield kb


def test_retriever_returns_scored_nodes_located_by_file_page_and_box(kb):
    nodes = MmragRetriever(kb, top_k=4).retrieve("What does fault code E07 mean?")
    assert 1 <= len(nodes) <= 4 and all(isinstance(n, NodeWithScore) for n in nodes)
    scores = [n.score for n in nodes]
    assert scores == sorted(scores, reverse=True)
    for n in nodes:
        meta = n.node.metadata
        assert meta["file_name"] in ("solar_maintenance_manual.pdf", "inverter_dashboard.png")
        assert meta["page"] >= 1 and len(meta["bbox"]) == 4
    table = next(n for n in nodes if n.node.metadata["page"] == 2 and n.node.metadata["file_name"].endswith(".pdf"))
    assert "E07" in table.node.get_content()
    # the box and paths stay out of what an LLM sees; file and page stay in
    llm_view = table.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "solar_maintenance_manual.pdf" in llm_view and "bbox" not in llm_view and "image_path" not in llm_view


def test_visual_evidence_becomes_image_nodes_with_an_image_file(kb):
    nodes = MmragRetriever(kb, top_k=5).retrieve("bar chart of monthly energy output")
    images = [n.node for n in nodes if isinstance(n.node, ImageNode)]
    assert images, [type(n.node).__name__ for n in nodes]
    for node in images:
        assert Path(node.image_path).is_file() and node.metadata["image_path"] == node.image_path


def test_retriever_respects_document_and_page_filters(kb):
    nodes = MmragRetriever(kb, top_k=5, documents=["solar_maintenance_manual.pdf"], pages=(3, 4)).retrieve("inverter")
    assert nodes and {n.node.metadata["page"] for n in nodes} <= {3, 4}


def test_a_real_llama_index_query_engine_runs_over_the_retriever(kb):
    engine = RetrieverQueryEngine.from_args(MmragRetriever(kb, top_k=3), llm=MockLLM(), response_mode="compact")
    response = engine.query("How often should the inverter be inspected?")
    pages = [(n.node.metadata["file_name"], n.node.metadata["page"]) for n in response.source_nodes]
    assert ("solar_maintenance_manual.pdf", 1) in pages, pages
    # MockLLM echoes its prompt: the retrieved evidence went through llama-index's synthesizer
    assert "every 6 months" in str(response)
    assert "How often should the inverter be inspected?" in str(response)


def test_mmrag_query_engine_answers_with_citations(kb):
    engine = MmragQueryEngine(kb)  # the default top_k (5)
    response = engine.query("What torque for the roof mounting bolts?")
    assert "12 Nm" in str(response)
    cites = response.metadata["citations"]
    assert cites and all(c["page"] >= 1 for c in cites) and any(c["bbox"] for c in cites)
    assert {(c["file_name"], c["page"]) for c in cites} <= {(n.node.metadata["file_name"], n.node.metadata["page"]) for n in response.source_nodes}
    again = asyncio.run(engine.aquery("What torque for the roof mounting bolts?"))
    assert str(again) == str(response)


def test_importing_rag_does_not_import_llama_index():
    import subprocess
    import sys

    code = "import sys, rag, rag.integrations; print('llama_index' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"

"""The knowledge base on the server backend (qdrant-client; its local mode speaks the same API)."""

from __future__ import annotations

import shutil

from rag import KnowledgeBase
from rag.config import Config, IngestConfig, StoreConfig


def test_same_knowledge_base_code_on_the_qdrant_backend(tmp_path, samples):
    doc = tmp_path / "dashboard.png"
    shutil.copy(samples[-1], doc)
    config = Config(ingest=IngestConfig(dpi=48), store=StoreConfig(backend="qdrant", path="qdrant-data"))
    with KnowledgeBase.open(tmp_path / "kb", config, create=True) as kb:
        (report,) = kb.ingest([doc], progress=False)
        assert report.status == "indexed"
        info = kb.info()
        assert info["store"] == "qdrant" and info["corpora"]["pages"]["points"] == 1
        assert (tmp_path / "kb" / "qdrant-data").is_dir(), "local-mode data lives where the config says"
        assert not (tmp_path / "kb" / "store").exists(), "no embedded store was created"
    # reopened without a config: the backend comes back from the manifest
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        assert kb.config.store.backend == "qdrant"
        hit = kb.search("today's yield", top_k=1).hits[0]
        assert hit.source == "dashboard.png" and hit.page == 1
        assert kb.ask("What is today's yield?").citations

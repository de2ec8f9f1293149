"""Metadata and tenants as a user meets them: ingest with metadata, search and ask filtered by it
(Python, CLI, HTTP), and two knowledge bases sharing one Qdrant server as tenants."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from rag import KnowledgeBase
from rag.cli import main
from rag.config import Config, IngestConfig, StoreConfig
from rag.errors import ConfigError, QueryError
from tests._live_server import live_server, tiny_pdf, wait_job, wait_ready

FAST = IngestConfig(dpi=48, ocr="never", workers=1)


def _docs(tmp: Path) -> dict[str, Path]:
    folder = tmp / "docs"
    folder.mkdir()
    return {
        "pump": tiny_pdf(folder / "pump.pdf", ["Pump maintenance", "Replace the impeller seal every 2000 hours."]),
        "budget": tiny_pdf(folder / "budget.pdf", ["Budget 2025", "The impeller replacement budget is 40000 euros."]),
        "policy": tiny_pdf(folder / "policy.pdf", ["Travel policy", "Economy class for flights under six hours."]),
    }


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("meta-kb")
    docs = _docs(tmp)
    with KnowledgeBase.open(tmp / "kb", Config(ingest=FAST), create=True) as kb:
        assert kb.ingest([docs["pump"]], progress=False, metadata={"team": "ops", "year": 2024})[0].status == "indexed"
        assert kb.ingest([docs["budget"]], progress=False, metadata={"team": "finance", "year": 2025})[0].status == "indexed"
        assert kb.ingest([docs["policy"]], progress=False)[0].status == "indexed"
        yield kb, docs


def _names(result) -> list[str]:
    return sorted({h.source for h in result.hits})


def test_search_and_ask_find_only_documents_whose_metadata_matches(kb):
    kb, _ = kb
    assert _names(kb.search("impeller", top_k=5)) == ["budget.pdf", "policy.pdf", "pump.pdf"]
    assert _names(kb.search("impeller", top_k=5, where={"team": "finance"})) == ["budget.pdf"]
    assert _names(kb.search("impeller", top_k=5, where={"team": ["ops", "finance"], "year": 2024})) == ["pump.pdf"]
    assert _names(kb.search("impeller", top_k=5, where={"year": "2025"})) == ["budget.pdf"], "typed as the key holds"
    assert kb.search("impeller", top_k=5, where={"team": "legal"}).hits == ()
    assert _names(kb.search("impeller", top_k=5, where={"team": "ops"}, documents=["budget.pdf"])) == []
    answer = kb.ask("How often is the impeller seal replaced?", where={"team": "ops"})
    assert {c.source for c in answer.citations} <= {"pump.pdf"} and {h.source for h in answer.hits} == {"pump.pdf"}


def test_an_unknown_key_or_a_value_of_another_type_is_refused_with_the_keys_there_are(kb):
    kb, docs = kb
    with pytest.raises(QueryError, match="no document has the metadata key 'teem'; the keys in this knowledge base: team, year"):
        kb.search("impeller", where={"teem": "ops"})
    with pytest.raises(ConfigError, match="holds integer values under 'year'"):
        kb.ingest([docs["policy"]], progress=False, metadata={"year": "last year"})
    assert kb.metadata_keys() == {"team": "string", "year": "integer"}
    assert kb.info()["metadata_keys"] == {"team": "string", "year": "integer"}


def test_documents_show_their_metadata_and_filter_by_it(kb):
    kb, _ = kb
    by_name = {d.name: d.metadata for d in kb.documents()}
    assert by_name == {"budget.pdf": {"team": "finance", "year": 2025}, "policy.pdf": {}, "pump.pdf": {"team": "ops", "year": 2024}}
    assert [d.name for d in kb.documents(where={"year": [2024, 2025]})] == ["budget.pdf", "pump.pdf"]


def test_the_command_line_takes_meta_and_where(tmp_path, capsys):
    docs = _docs(tmp_path)
    kb = str(tmp_path / "kb")
    assert main(["ingest", str(docs["pump"]), "--kb", kb, "--meta", "team=ops", "--meta", "reviewed=true", "--no-progress", "--dpi", "48"]) == 0
    assert main(["ingest", str(docs["budget"]), "--kb", kb, "--meta", "team=finance", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["documents", "--kb", kb, "--json"]) == 0
    documents = json.loads(capsys.readouterr().out)["documents"]
    listed = {d["name"]: d["metadata"] for d in documents}
    assert listed == {"pump.pdf": {"team": "ops", "reviewed": True}, "budget.pdf": {"team": "finance"}}
    assert {d["kind"] for d in documents} == {"pdf"}  # how each was read
    assert main(["documents", "--kb", kb, "--where", "reviewed=true"]) == 0
    out = capsys.readouterr().out
    assert "pump.pdf" in out and "team=ops" in out and "reviewed=true" in out and "budget.pdf" not in out
    assert main(["search", "impeller", "--kb", kb, "--where", "team=finance", "--json"]) == 0
    assert {h["source"] for h in json.loads(capsys.readouterr().out)["hits"]} == {"budget.pdf"}
    assert main(["ask", "impeller budget", "--kb", kb, "--where", "team=ops,finance", "--where", "reviewed=true", "--json"]) == 0
    assert {h["source"] for h in json.loads(capsys.readouterr().out)["hits"]} == {"pump.pdf"}
    assert main(["search", "impeller", "--kb", kb, "--where", "owner=me"]) == 1
    assert "no document has the metadata key 'owner'" in capsys.readouterr().err
    assert main(["set-meta", "budget.pdf", "--kb", kb, "--meta", "team=ops", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"][0]["metadata"] == {"team": "ops"}
    assert main(["search", "impeller", "--kb", kb, "--where", "team=ops", "--json"]) == 0
    assert {h["source"] for h in json.loads(capsys.readouterr().out)["hits"]} == {"budget.pdf", "pump.pdf"}
    assert main(["ingest", str(docs["budget"]), "--kb", kb, "--tenant", "acme", "--no-progress"]) == 1
    assert "store.tenant = 'acme' needs store.backend = 'qdrant'" in capsys.readouterr().err
    tenant_on_server = ["--tenant", "acme", "--backend", "qdrant", "--url", "http://qdrant.invalid:6333"]
    assert main(["ingest", str(docs["budget"]), "--kb", kb, *tenant_on_server, "--no-progress"]) == 1
    assert "built as tenant None; --tenant acme cannot change that" in capsys.readouterr().err


def test_new_metadata_reindexes_a_file_and_none_keeps_what_it_had(tmp_path):
    docs = _docs(tmp_path)
    with KnowledgeBase.open(tmp_path / "kb", Config(ingest=FAST), create=True) as kb:
        kb.ingest([docs["pump"]], progress=False, metadata={"team": "ops"})
        assert kb.ingest([docs["pump"]], progress=False)[0].status == "unchanged"
        assert kb.ingest([docs["pump"]], progress=False, metadata={"team": "ops"})[0].status == "unchanged"
        assert kb.ingest([docs["pump"]], progress=False, metadata={"team": "maintenance"})[0].status == "indexed"
        assert _names(kb.search("impeller", where={"team": "maintenance"})) == ["pump.pdf"]
        assert kb.search("impeller", where={"team": "ops"}).hits == (), "no point keeps the old metadata"
        tiny_pdf(docs["pump"], ["Pump maintenance", "Replace the impeller seal every 3000 hours."])  # the file changes
        assert kb.ingest([docs["pump"]], progress=False)[0].status == "indexed"
        assert [d.metadata for d in kb.documents()] == [{"team": "maintenance"}]
        assert _names(kb.search("impeller", where={"team": "maintenance"})) == ["pump.pdf"]


def test_set_metadata_changes_what_filters_find_without_indexing_again(tmp_path):
    docs = _docs(tmp_path)
    with KnowledgeBase.open(tmp_path / "kb", Config(ingest=FAST), create=True) as kb:
        kb.ingest([docs["pump"], docs["budget"]], progress=False, metadata={"team": "ops", "year": 2024})
        indexed_at = {d.name: d.ingested_at for d in kb.documents()}
        (record,) = kb.set_metadata("budget.pdf", {"team": "finance", "year": 2025})
        assert record.metadata == {"team": "finance", "year": 2025}
        assert _names(kb.search("impeller", where={"team": "finance"})) == ["budget.pdf"]
        assert _names(kb.search("impeller", where={"team": "ops"})) == ["pump.pdf"]
        assert {d.name: d.ingested_at for d in kb.documents()} == indexed_at, "nothing was indexed again"
        with pytest.raises(ConfigError, match="holds integer values under 'year'"):
            kb.set_metadata("budget.pdf", {"year": "next"})
        kb.set_metadata("pump.pdf", {})
        assert kb.documents(where={"team": "finance"})[0].name == "budget.pdf"
        assert [d.metadata for d in kb.documents() if d.name == "pump.pdf"] == [{}]
        assert kb.search("impeller", where={"team": "ops"}).hits == ()
    with KnowledgeBase.open(tmp_path / "kb") as kb:  # kept in the registry
        assert {d.name: d.metadata for d in kb.documents()} == {"budget.pdf": {"team": "finance", "year": 2025}, "pump.pdf": {}}


def test_two_knowledge_bases_share_one_server_as_tenants(tmp_path):
    docs = _docs(tmp_path)
    server = str(tmp_path / "qdrant-server")  # local mode's folder stands in for the server

    def config(tenant: str) -> Config:
        return Config(ingest=FAST, store=StoreConfig(backend="qdrant", path=server, tenant=tenant, collection_prefix="shared"))

    with KnowledgeBase.open(tmp_path / "acme", config("acme"), create=True) as acme:
        acme.ingest([docs["pump"], docs["policy"]], progress=False, metadata={"team": "ops"})
    with KnowledgeBase.open(tmp_path / "globex", config("globex"), create=True) as globex:
        globex.ingest([docs["pump"], docs["budget"]], progress=False)
        assert _names(globex.search("impeller", top_k=5)) == ["budget.pdf", "pump.pdf"]
        assert globex.info()["corpora"]["pages"]["points"] == 2
        globex.delete("pump.pdf")
        assert _names(globex.search("impeller", top_k=5)) == ["budget.pdf"]
    with KnowledgeBase.open(tmp_path / "acme") as acme:  # the tenant comes back from the manifest
        assert acme.config.store.tenant == "acme"
        assert _names(acme.search("impeller", top_k=5)) == ["policy.pdf", "pump.pdf"], "globex's delete left acme's copy"
        assert acme.info()["corpora"]["pages"]["points"] == 2
    with pytest.raises(ConfigError, match="built as tenant 'acme'"):
        with KnowledgeBase.open(tmp_path / "acme", config("globex")) as wrong:
            wrong.info()


def test_the_http_api_takes_upload_metadata_and_where(tmp_path):
    from rag.server import create_app

    docs = _docs(tmp_path)
    with KnowledgeBase.open(tmp_path / "kb", Config(ingest=FAST), create=True) as kb:
        with live_server(create_app(kb)) as url, httpx.Client(base_url=url, timeout=120) as http:
            wait_ready(http)
            for name, meta in (("pump", {"team": "ops"}), ("budget", {"team": "finance"})):
                with docs[name].open("rb") as fh:
                    r = http.post("/api/documents", files={"files": (f"{name}.pdf", fh, "application/pdf")},
                                  data={"metadata": json.dumps(meta)})  # fmt: skip
                assert wait_job(http, r.json()["id"])["state"] == "done"
            listed = {d["name"]: d["metadata"] for d in http.get("/api/documents").json()["documents"]}
            assert listed == {"pump.pdf": {"team": "ops"}, "budget.pdf": {"team": "finance"}}
            hits = http.post("/api/search", json={"question": "impeller", "where": {"team": "finance"}}).json()["hits"]
            assert {h["source"] for h in hits} == {"budget.pdf"}
            answer = http.post("/api/ask", json={"question": "impeller seal", "where": {"team": ["ops"]}}).json()
            assert {h["source"] for h in answer["hits"]} == {"pump.pdf"}
            bad = http.post("/api/search", json={"question": "impeller", "where": {"owner": "me"}})
            assert bad.status_code == 400 and "the keys in this knowledge base: team" in bad.json()["error"]
            with docs["policy"].open("rb") as fh:
                refused = http.post("/api/documents", files={"files": ("policy.pdf", fh, "application/pdf")},
                                    data={"metadata": "team=ops"})  # fmt: skip
            assert refused.status_code == 400 and "not JSON" in refused.json()["error"]

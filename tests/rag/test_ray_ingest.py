"""``[ingest] engine = "ray"``: the same knowledge base as the in-process path, built on a local
Ray instance (``ray.init(num_cpus=2)``, once for this module) with the bundled default models."""

from __future__ import annotations

import logging
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pymupdf
import pytest

import _pdfgen as g
from rag import KnowledgeBase
from rag.cli import main
from rag.config import Config, IngestConfig, ModelsConfig, StoreConfig, load_config
from rag.errors import ConfigError
from rag.types import CORPORA

QUESTIONS = ("when does the new library open?", "which quarter had the most rainfall?", "how often are the bearings greased?")


def _config(engine: str) -> Config:
    return Config(ingest=IngestConfig(ocr="never", dpi=72, workers=1, engine=engine))


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'mmrag[ray]'")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        # loopback only: the tests stay off the network (conftest's guard)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 _node_ip_address="127.0.0.1")
        yield ray
        ray.shutdown()


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    """Three small PDFs (one of 18 pages: two embedding batches; one with a chart), an encrypted
    one (fails in a Ray task), a second copy of the first (unchanged) and a file that is no PDF."""
    folder = tmp_path_factory.mktemp("ray_docs")
    g.text_pdf(folder / "library.pdf", [f"Page {i + 1} of the library plan. {g.LOREM}" for i in range(3)])
    g.text_pdf(folder / "pumps.pdf", [f"Chapter {i + 1}: grease the bearings every six months. {g.LOREM}" for i in range(18)])
    doc = pymupdf.open()
    page = doc.new_page()
    g.chart_page(page, 80, 100)
    page.insert_text((80, 400), "Rainfall was highest in the fourth quarter of the year.", fontsize=11)
    g.save(doc, folder / "rainfall.pdf")
    g.encrypted_pdf(folder / "locked.pdf")
    shutil.copy(folder / "library.pdf", folder / "library-copy.pdf")
    (folder / "notes.pdf").write_bytes(b"these are notes, not a PDF")
    return folder


def _ingest(path: Path, engine: str, docs: Path, metadata: dict | None = None) -> list[tuple[str, str, int, str | None, str | None]]:
    with KnowledgeBase.open(path, _config(engine), create=True) as kb:
        reports = kb.ingest([docs], progress=False, metadata=metadata)
    return [(r.path.name, r.status, r.pages, r.error, r.error_type) for r in reports]


def _points(kb: KnowledgeBase) -> dict[str, dict[str, np.ndarray]]:
    store, specs = kb._open_store()
    return {c: {p.id: np.asarray(p.vectors["dense"]) for p in store.scroll(specs[c].name, with_vectors=True)} for c in CORPORA}


def _records(kb: KnowledgeBase) -> list[dict]:
    timing = ("ingested_at", "seconds")
    return sorted(({k: v for k, v in vars(r).items() if k not in timing} for r in kb._registry.all()), key=lambda r: r["doc_id"])


@pytest.fixture(scope="module")
def built(ray_instance, docs, tmp_path_factory) -> tuple[Path, Path, list, list]:
    """The same folder ingested in-process and on Ray: the two knowledge bases and their reports."""
    root = tmp_path_factory.mktemp("ray_kbs")
    local = _ingest(root / "local", "local", docs, {"team": "ops"})
    on_ray = _ingest(root / "ray", "ray", docs, {"team": "ops"})
    return root / "local", root / "ray", local, on_ray


def test_ray_engine_builds_the_knowledge_base_the_in_process_path_builds(built):
    local_kb, ray_kb, local, on_ray = built
    assert on_ray == local  # same reports: indexed, unchanged (second copy), failed with the same reason
    assert [s for _, s, *_ in on_ray].count("indexed") == 3 and {"unchanged", "failed"} <= {s for _, s, *_ in on_ray}

    with KnowledgeBase.open(local_kb) as a, KnowledgeBase.open(ray_kb) as b:
        assert _records(b) == _records(a)  # same documents, pages and point counts per corpus, all complete
        assert b.info()["corpora"] == a.info()["corpora"]
        assert b._manifest.ingest == a._manifest.ingest and "engine" not in b._manifest.ingest
        pa, pb = _points(a), _points(b)
        for corpus in CORPORA:
            assert sorted(pb[corpus]) == sorted(pa[corpus]), corpus  # same point ids
            for pid, vector in pa[corpus].items():
                np.testing.assert_allclose(pb[corpus][pid], vector, atol=1e-4)
        for question in QUESTIONS:
            ha, hb = a.search(question).hits, b.search(question).hits
            assert [(h.doc_id, h.page) for h in hb] == [(h.doc_id, h.page) for h in ha], question
            np.testing.assert_allclose([h.score for h in hb], [h.score for h in ha], rtol=1e-3, atol=1e-4)
            # the user's metadata reached every point written on Ray: filtering on it keeps the hits
            assert [(h.doc_id, h.page) for h in b.search(question, where={"team": "ops"}).hits] == [(h.doc_id, h.page) for h in hb]
            assert not b.search(question, where={"team": "finance"}).hits


def test_a_killed_ray_run_is_resumed_as_an_in_process_one_is(built, docs, tmp_path):
    """A run killed mid-way leaves a pending record (and some of its points); the next run rolls
    them back and reads that document again, and leaves the rest alone."""
    kb_path = tmp_path / "kb"
    shutil.copytree(built[1], kb_path)
    with KnowledgeBase.open(kb_path) as kb:
        before = _records(kb)
        killed = next(r for r in kb._registry.all() if r.name == "pumps.pdf")
        kb._registry.put(type(killed)(**{**vars(killed), "status": "pending", "points": {}}))
        assert "pumps.pdf" in kb.info()["pending"]
    reports = {name: status for name, status, *_ in _ingest(kb_path, "ray", docs, {"team": "ops"})}  # the same command again
    assert reports["pumps.pdf"] == "indexed" and reports["library.pdf"] == reports["rainfall.pdf"] == "unchanged"
    with KnowledgeBase.open(kb_path) as kb:
        assert _records(kb) == before
        assert kb.info()["pending"] == []


def test_an_unreachable_ray_address_is_a_clear_error_and_leaves_nothing(docs, tmp_path, capsys):
    """Also: --engine applies to a knowledge base that exists (it keeps its models and ingest
    settings, not the engine of the run that built it)."""
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'mmrag[ray]'")
    kb = tmp_path / "kb"
    assert main(["ingest", str(docs / "library.pdf"), "--kb", str(kb), "--no-progress"]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    capsys.readouterr()
    code = main(["ingest", str(docs / "rainfall.pdf"), "--kb", str(kb), "--engine", "ray",
                 "--ray-address", f"127.0.0.1:{port}", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"127.0.0.1:{port}" in err and "no Ray cluster answers" in err and "ray start --head" in err
    with KnowledgeBase.open(kb) as opened:  # the pending record of rainfall.pdf was rolled back
        assert [(r.name, r.status) for r in opened._registry.all()] == [("library.pdf", "complete")]


def test_without_ray_the_error_names_the_extra_to_install(docs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    code = main(["ingest", str(docs / "library.pdf"), "--kb", str(tmp_path / "kb"), "--engine", "ray", "--no-progress"])
    assert code == 1
    assert "pip install 'mmrag[ray]'" in capsys.readouterr().err


def test_ray_address_without_the_ray_engine_is_refused(docs, tmp_path, capsys):
    code = main(["ingest", str(docs / "library.pdf"), "--kb", str(tmp_path / "kb"), "--ray-address", "head:6379"])
    assert code == 1
    assert "--engine ray" in capsys.readouterr().err
    assert not (tmp_path / "kb" / "manifest.json").exists()


def test_engine_settings_are_checked_and_read_from_the_config_file(tmp_path):
    with pytest.raises(ConfigError, match="ingest.engine must be local or ray, got 'spark'"):
        IngestConfig(engine="spark")
    with pytest.raises(ConfigError, match="ray_address"):
        IngestConfig(engine="ray", ray_address=" ")
    toml = tmp_path / "mmrag.toml"
    toml.write_text('[ingest]\nengine = "ray"\nray_address = "head-node:6379"\n')
    config = load_config(toml)
    assert (config.ingest.engine, config.ingest.ray_address) == ("ray", "head-node:6379")
    assert IngestConfig().engine == "local"


def test_gpus_actors_and_who_writes_the_points():
    from rag._ray_ingest import actor_pool_size, embed_gpus, workers_write

    assert embed_gpus("cpu", 4) == 0  # the CPU encoder is another (quantised) model: vectors would change
    assert embed_gpus("cuda", 2) == 1 and embed_gpus("cuda:1", 1) == 1
    with pytest.raises(ConfigError, match="no GPU"):
        embed_gpus("cuda", 0)
    assert actor_pool_size(2, 0, 0) == 1 and actor_pool_size(64, 0, 0) == 32 and actor_pool_size(64, 4, 1) == 4
    assert workers_write(StoreConfig(backend="qdrant", url="http://qdrant:6333"))
    assert not workers_write(StoreConfig())  # embedded: written through the driver
    assert not workers_write(StoreConfig(backend="qdrant", location=":memory:"))  # local mode serves one process


def _pages_table(path: Path, config: IngestConfig, image_root: Path):
    from ingest import identify_file
    from rag._ray_ingest import _extract_one, _rows, _table

    rows = list(_extract_one(7, path, None, identify_file(path, config), config, image_root, 16))
    return _table([r for r in rows if r[1] == "pages"]), _rows


def test_an_actor_writes_to_a_qdrant_server_itself_and_refuses_other_models(docs, tmp_path):
    """The actor's write path (a server in production; qdrant-client's local mode here, in this
    process) and its check that it builds the knowledge base's models."""
    from rag._models import build_embedders
    from rag._ray_ingest import _Embed
    from retrievers.corpora import collection_specs
    from retrievers.store import open_store

    store_config = StoreConfig(backend="qdrant", path=str(tmp_path / "qdrant"))
    embedders = build_embedders(ModelsConfig())
    specs = collection_specs(embedders, "mmrag")
    store = open_store(store_config, tmp_path)
    for spec in specs.values():
        store.ensure_collection(spec)
    store.close()
    config = IngestConfig(ocr="never", dpi=72)
    table, rows = _pages_table(docs / "pumps.pdf", config, tmp_path / "images")
    names = {c: s.name for c, s in specs.items()}

    actor = _Embed(ModelsConfig(), embedders.provenance(), names, store_config, tmp_path)
    out = list(rows(actor(table)))
    assert [(job, kind, seq) for job, kind, seq, _ in out] == [(7, "written", 0), (7, "written", 1)]
    written = {c: sum(data[0][c] for *_, data in out) for c in CORPORA}
    assert written == {"text": 18, "figures": 0, "pages": 18}
    assert {c: actor.store.count(names[c]) for c in CORPORA} == written
    actor.store.close()

    other = {**embedders.provenance(), "text": {**embedders.provenance()["text"], "name": "another-model"}}
    refusing = _Embed(ModelsConfig(), other, names, None, tmp_path)
    (job, kind, seq, (message, error_type, _)), *_ = rows(refusing(table))
    assert (kind, error_type) == ("batch_failed", "ModelError")
    assert "Ray worker on" in message and "text: name was 'another-model'" in message and "pumps.pdf" in message


def _driving(kb: KnowledgeBase, indexer, path: Path):
    """The driver's side of a Ray run of one file, fed the rows the stages would send back."""
    from rag._ray_ingest import RayEngine, _extract_one
    from retrievers.corpora import build_points

    engine = RayEngine(indexer, kb.config, kb.path)
    jobs, later = engine._plan([(path, None)], False, None, lambda index, report: None)
    (job,) = jobs
    assert later == [] and kb._registry.get(job.identity.sha256).status == "pending"  # registered before any task runs
    rows = list(_extract_one(job.index, path, None, job.identity, kb.config.ingest, indexer.image_root, 16))
    engine._take(job, "info", 0, rows[0][3], None)
    batches = [data[1] for _, kind, _, data in rows if kind == "pages"]
    points = [(build_points(rows[0][3][0], batch, indexer.embedders), len(batch)) for batch in batches]
    return engine, job, points


def test_a_batch_that_fails_on_an_actor_rolls_its_file_back_and_reports_it(docs, tmp_path):
    with KnowledgeBase.open(tmp_path / "kb", _config("ray"), create=True) as kb, kb._writer() as indexer:
        engine, job, points = _driving(kb, indexer, docs / "pumps.pdf")
        engine._take(job, "points", 0, points[0], None)  # the first batch is written...
        assert kb.info()["corpora"]["pages"]["points"] == 16
        engine._take(job, "batch_failed", 1, ("pumps.pdf: out of memory", "ModelError", "out of memory"), None)
        engine._take(job, "done", 2, None, None)
        assert job.finished
        report = engine._finish(job)
        assert (report.status, report.error, report.error_type) == ("failed", "pumps.pdf: out of memory", "ModelError")
        assert kb._registry.all() == []  # ...and rolled back with the record and the page images
        assert all(c["points"] == 0 for c in kb.info()["corpora"].values())
        assert not (indexer.image_root / job.identity.sha256).exists()


def test_batches_sent_again_by_a_retried_task_are_counted_once(docs, tmp_path):
    with KnowledgeBase.open(tmp_path / "kb", _config("ray"), create=True) as kb, kb._writer() as indexer:
        engine, job, points = _driving(kb, indexer, docs / "pumps.pdf")
        for seq in (0, 1, 0, 1):
            engine._take(job, "points", seq, points[seq], None)
        engine._take(job, "done", 2, None, None)
        report = engine._finish(job)
        assert (report.status, report.pages) == ("indexed", 18)
        record = kb._registry.get(job.identity.sha256)
        assert (record.status, record.points) == ("complete", {"text": 18, "figures": 0, "pages": 18})
        assert kb.info()["corpora"]["pages"]["points"] == 18

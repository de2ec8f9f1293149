"""Crash consistency: ``mmrag ingest`` and ``mmrag delete`` killed with SIGKILL and started
again end in exactly the knowledge base a run without crashes builds: the same documents,
point ids, payloads, vectors and image files, and nothing else.

The commands run in child processes of ``_crash_driver.py`` (real processes running the CLI,
killed with a real SIGKILL). Ingest is killed at random moments (seeded; the seed is in the
assertion messages); delete is killed just before chosen write steps.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import _pdfgen as g
from rag._manifest import DocumentRegistry
from retrievers.store.edge import EdgeStore

DRIVER = Path(__file__).resolve().parents[1] / "_crash_driver.py"
KNOWN_ROOT_ENTRIES = {
    "manifest.json", "documents.sqlite", "documents.sqlite-wal", "documents.sqlite-shm", ".write.lock", "store", "images",
}


class Driver:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.n = 0
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def run(self, argv: list[str], **kw: Any) -> dict[str, Any]:
        self.n += 1
        log = self.logs / f"run{self.n:02d}.log"
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log), **kw}) + "\n")
        self.proc.stdin.flush()
        result = json.loads(self.proc.stdout.readline())
        result["log"] = log.read_text(errors="replace") if log.exists() else ""
        return result

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    d = Driver(tmp_path_factory.mktemp("crash_logs"))
    yield d
    d.close()


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("crash_docs")
    for name, n in (("a_long.pdf", 17), ("b_long.pdf", 12), ("c_short.pdf", 3)):
        g.text_pdf(folder / name, [f"{name} page {i + 1}. {g.LOREM} Marker {name}-{i + 1}." for i in range(n)])
    (folder / "d_picture.png").write_bytes(g.png_bytes(300, 200, text="A PICTURE"))
    (folder / "crash.toml").write_text('[ingest]\nocr = "never"\ndpi = 72\n', encoding="utf-8")
    return folder


def ingest_argv(docs: Path, kb: Path) -> list[str]:
    return ["ingest", str(docs), "--kb", str(kb), "--config", str(docs / "crash.toml"), "--no-progress"]


@pytest.fixture(scope="module")
def clean(tmp_path_factory, driver, docs) -> tuple[Path, float]:
    warm = driver.run(ingest_argv(docs, tmp_path_factory.mktemp("warm") / "kb"))  # one-time costs (model export)
    assert warm["code"] == 0, warm["log"][-3000:]
    kb = tmp_path_factory.mktemp("clean") / "kb"
    result = driver.run(ingest_argv(docs, kb))
    assert result["code"] == 0, result["log"][-3000:]
    return kb, result["seconds"]  # kill times are drawn within a warm run's duration


def snapshot(kb: Path) -> dict[str, Any]:
    """Everything a user of the knowledge base could observe, with the folder's own path removed."""
    registry = {
        r.doc_id: (r.name, r.path, r.pages, r.kind, r.status, r.points)
        for r in DocumentRegistry(kb / "documents.sqlite").all()
    }
    store = EdgeStore(kb / "store")
    points: dict[str, dict[str, Any]] = {}
    vectors: dict[str, dict[str, Any]] = {}
    try:
        for collection in store.collections():
            points[collection], vectors[collection] = {}, {}
            for p in store.scroll(collection, with_vectors=True):
                payload = json.loads(json.dumps(p.payload).replace(str(kb), "<kb>"))
                points[collection][p.id] = payload
                vectors[collection][p.id] = p.vectors
    finally:
        store.close()
    images = {
        str(f.relative_to(kb / "images")): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted((kb / "images").rglob("*"))
        if f.is_file()
    }
    extras = sorted(p.name for p in kb.iterdir() if p.name not in KNOWN_ROOT_ENTRIES)
    return {"registry": registry, "points": points, "vectors": vectors, "images": images, "extras": extras}


def assert_same(got: dict[str, Any], want: dict[str, Any], context: str) -> None:
    assert got["extras"] == [], f"{context}: stray files {got['extras']}"
    assert got["registry"] == want["registry"], context
    assert all(r[4] == "complete" for r in got["registry"].values()), context
    assert set(got["points"]) == set(want["points"]), context
    for collection in want["points"]:
        assert got["points"][collection].keys() == want["points"][collection].keys(), f"{context}: {collection} ids"
        assert got["points"][collection] == want["points"][collection], f"{context}: {collection} payloads"
        for pid, vecs in want["vectors"][collection].items():
            other = got["vectors"][collection][pid]
            assert vecs.keys() == other.keys()
            for name, v in vecs.items():
                if isinstance(v, np.ndarray):
                    assert np.allclose(v, other[name], atol=1e-5), f"{context}: {collection} {pid} {name}"
                else:
                    assert v == other[name], f"{context}: {collection} {pid} {name}"
    assert got["images"] == want["images"], context
    doc_ids = set(want["registry"])
    assert {p.split("/")[0] for p in got["images"]} == doc_ids, f"{context}: image folders"


def _killed_ingest_converges(tmp_path, driver, docs, clean, kills: int, seed: int) -> None:
    clean_kb, clean_seconds = clean
    want = snapshot(clean_kb)
    assert len(want["registry"]) == 4 and sum(len(p) for p in want["points"].values()) > 60
    rng = random.Random(seed)
    kb = tmp_path / "kb"
    history = []
    for _ in range(kills):
        result = driver.run(ingest_argv(docs, kb), kill_after=rng.uniform(0.05, 0.9) * clean_seconds)
        history.append((round(result["seconds"], 2), result["killed"], result["code"]))
        assert result["killed"] or result["code"] == 0, (seed, history, result["log"][-3000:])
    context = f"seed {seed}, runs (seconds, killed, exit code) {history}"
    assert history[0][1], f"{context}: the first run was not killed"
    final = driver.run(ingest_argv(docs, kb))
    assert final["code"] == 0, (context, final["log"][-3000:])
    assert_same(snapshot(kb), want, context)


def test_killed_ingest_restarted_equals_a_clean_run(tmp_path, driver, docs, clean):
    _killed_ingest_converges(tmp_path, driver, docs, clean, kills=3, seed=random.randrange(10**6))


@pytest.mark.slow
def test_killed_ingest_ten_times_equals_a_clean_run(tmp_path, driver, docs, clean):
    _killed_ingest_converges(tmp_path, driver, docs, clean, kills=10, seed=random.randrange(10**6))


def _killed_delete_converges(tmp_path, driver, clean, steps: list[int] | None) -> None:
    clean_kb, _ = clean
    reference = tmp_path / "reference"
    shutil.copytree(clean_kb, reference, symlinks=True)
    result = driver.run(["delete", "b_long.pdf", "--kb", str(reference)], count_steps=True)
    assert result["code"] == 0 and result["steps"] >= 4, result
    want = snapshot(reference)
    assert len(want["registry"]) == 3
    chosen = list(range(1, result["steps"] + 1)) if steps is None else steps
    for step in chosen:
        if step > result["steps"]:
            continue
        kb = tmp_path / f"kb{step}"
        shutil.copytree(clean_kb, kb, symlinks=True)
        killed = driver.run(["delete", "b_long.pdf", "--kb", str(kb)], kill_at_step=step)
        assert killed["killed"], (step, killed)
        after = driver.run(["delete", "b_long.pdf", "--kb", str(kb)])
        assert after["code"] == 0, (step, after["log"][-3000:])
        assert_same(snapshot(kb), want, f"delete killed before write step {step} of {result['steps']}")
        shutil.rmtree(kb)


def test_killed_delete_restarted_equals_a_clean_delete(tmp_path, driver, clean):
    rng = random.Random()
    _killed_delete_converges(tmp_path, driver, clean, steps=sorted(rng.sample(range(1, 7), 3)))


@pytest.mark.slow
def test_delete_killed_before_every_write_step_equals_a_clean_delete(tmp_path, driver, clean):
    _killed_delete_converges(tmp_path, driver, clean, steps=None)


def test_an_unfinished_document_is_rolled_back_by_the_next_write(tmp_path, driver, docs):
    """Killed mid-document, then a different command: the half-written document must not stay."""
    kb = tmp_path / "kb"
    # documents are written as their pages are ready, so more than one may be in flight (pending)
    # and which write comes when depends on the workers: kill at later and later write steps until
    # a document has points written but is not complete
    for step in range(8, 30):
        shutil.rmtree(kb, ignore_errors=True)
        killed = driver.run(ingest_argv(docs, kb), kill_at_step=step)
        assert killed["killed"], killed
        before = snapshot(kb)
        pending = [d for d, r in before["registry"].items() if r[4] == "pending"]
        written = [d for d in pending if any(p["doc_id"] == d for pts in before["points"].values() for p in pts.values())]
        if written:
            break
    assert 1 <= len(pending) <= 3 and written, (step, pending, written)
    assert any(name.startswith(written[0]) for name in before["images"])
    after = driver.run(["ingest", str(docs / "c_short.pdf"), "--kb", str(kb), "--config", str(docs / "crash.toml")])
    assert after["code"] == 0, after["log"][-3000:]
    assert "rolling back an unfinished ingest" in after["log"]
    got = snapshot(kb)
    assert [r[0] for r in got["registry"].values()] == ["c_short.pdf"] and got["extras"] == []
    for collection, pts in got["points"].items():
        assert {p["doc_id"] for p in pts.values()} <= set(got["registry"]), collection
    assert {name.split("/")[0] for name in got["images"]} == set(got["registry"])

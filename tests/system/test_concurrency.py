"""Concurrent use of one knowledge base.

Supported: one process opens an embedded knowledge base; in it, any number of threads search
(and ask) while one ingests or deletes, through the same KnowledgeBase object; searches see
only documents whose registry record is complete. Not supported with the embedded store: a
second process on the same folder, writing or reading; it fails at once with
KnowledgeBaseLockedError naming the holder and the way out (a Qdrant server).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import _pdfgen as g
from rag import KnowledgeBase
from rag.config import Config, IngestConfig
from rag.errors import KnowledgeBaseLockedError

FAST = Config(ingest=IngestConfig(ocr="never", dpi=72))
MMRAG = Path(sys.executable).with_name("mmrag")
ROOT = Path(__file__).resolve().parents[2]

TIDES = "Tide tables for the harbour of Kestrel Bay list high water and low water times for every day."
ZEBRA = "Zebrafish migration along the Okavango delta follows the seasonal floods of the river basin."


def _docs(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    small = g.text_pdf(folder / "tides.pdf", [f"{TIDES} Day {i}." for i in range(1, 4)])
    big = g.text_pdf(folder / "zebrafish.pdf", [f"{ZEBRA} Survey {i}. {g.LOREM}" for i in range(1, 21)])
    return small, big


def test_threads_search_while_a_document_is_ingested_and_never_see_it_half_written(tmp_path):
    small, big = _docs(tmp_path / "docs")
    errors: list[BaseException] = []
    leaks: list[tuple[str, int]] = []
    during = {"searches": 0, "saw_big": 0}
    with KnowledgeBase.open(tmp_path / "kb", FAST, create=True) as kb:
        (first,) = kb.ingest([small], progress=False)
        assert first.status == "indexed"
        big_id: dict[str, str] = {}
        done = threading.Event()

        def ingest() -> None:
            try:
                (report,) = kb.ingest([big], progress=False)
                big_id["id"] = report.doc_id
                assert report.status == "indexed", report
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
            finally:
                done.set()

        def search(n: int) -> None:
            query = ["zebrafish migration okavango seasonal floods", "tide tables kestrel bay"][n % 2]
            while not done.is_set():
                try:
                    result = kb.search(query, top_k=5)
                    complete_after = {d.doc_id for d in kb.documents()}
                    for hit in result.hits:
                        if hit.doc_id not in complete_after:
                            leaks.append((hit.source, hit.page))
                    if not done.is_set():
                        during["searches"] += 1
                        during["saw_big"] += any(h.source == "zebrafish.pdf" for h in result.hits)
                    time.sleep(0.05)  # leave the ingest some CPU on small machines
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=ingest)] + [threading.Thread(target=search, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not errors, errors
        assert not leaks, f"hits from documents that were not complete: {leaks[:5]}"
        assert during["searches"] >= 3, during  # the searches really overlapped the ingest
        result = kb.search("zebrafish migration okavango", top_k=3)
        assert result.hits[0].doc_id == big_id["id"]  # the query does find it once complete
        assert {d.doc_id for d in kb.documents()} == {first.doc_id, big_id["id"]}


def test_two_threads_ingesting_take_turns(tmp_path):
    small, big = _docs(tmp_path / "docs")
    with KnowledgeBase.open(tmp_path / "kb", FAST, create=True) as kb:
        results: dict[str, list] = {}
        threads = [
            threading.Thread(target=lambda p=p: results.__setitem__(p.name, kb.ingest([p], progress=False)))
            for p in (small, big)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert [r.status for r in results["tides.pdf"] + results["zebrafish.pdf"]] == ["indexed", "indexed"]
        info = kb.info()
        assert info["documents"] == 2 and info["pending"] == [] and info["corpora"]["pages"]["points"] == 23


def _wait_for_holder(lock: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until ``proc`` holds ``lock`` (the holder writes its pid there once it has the flock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        if lock.exists() and lock.read_text().strip() == str(proc.pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"{proc.pid} never took {lock}")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_second_process_gets_a_clear_locked_error_while_one_writes(tmp_path):
    small, big = _docs(tmp_path / "docs")
    kb = tmp_path / "kb"
    writer = subprocess.Popen(
        [str(MMRAG), "ingest", str(big), "--kb", str(kb), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_for_holder(kb / "store" / ".lock", writer)  # models loaded, store open, ingesting
        while not (kb / "manifest.json").exists():  # written right after the collections
            time.sleep(0.05)
        # held still while the others try: the writer keeps its locks, and a fast ingest cannot
        # finish before the last check (it did once ingest got faster, and the check saw no lock)
        os.kill(writer.pid, signal.SIGSTOP)
        # a second writer: refused at once, told why and what to do
        second = subprocess.run([str(MMRAG), "ingest", str(small), "--kb", str(kb)], capture_output=True, text=True, timeout=300)
        assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr
        assert "another process is writing to this knowledge base" in second.stderr
        # a reader in another process: refused by the store lock, never a half-read
        reader = _python(
            f"""
            from rag import KnowledgeBase
            from rag.errors import KnowledgeBaseLockedError
            try:
                KnowledgeBase.open({str(kb)!r}).search("zebrafish")
            except KnowledgeBaseLockedError as exc:
                print("LOCKED", exc)
            """
        )
        assert reader.stdout.startswith("LOCKED"), reader.stdout + reader.stderr[-2000:]
        assert f"pid {writer.pid}" in reader.stdout and "Qdrant server" in reader.stdout
        # qdrant-edge itself refuses a second opener of the shard (our folder lock bypassed)
        engine = _python(
            f"""
            from retrievers.store import EdgeStore
            from retrievers.store._lock import FolderLock
            from rag.errors import KnowledgeBaseLockedError
            FolderLock.acquire = lambda self: None
            store = EdgeStore({str(kb / "store")!r})
            try:
                store.count(store.collections()[0])
            except KnowledgeBaseLockedError as exc:
                print("LOCKED", exc)
            """
        )
        assert engine.stdout.startswith("LOCKED") and "WouldBlock" in engine.stdout, engine.stdout + engine.stderr[-2000:]
    finally:
        os.kill(writer.pid, signal.SIGCONT)
        out, err = writer.communicate(timeout=600)
    assert writer.returncode == 0, err[-3000:]
    with KnowledgeBase.open(kb) as opened:  # the writer's work is whole
        info = opened.info()
        assert info["documents"] == 1 and info["pending"] == [] and info["corpora"]["pages"]["points"] == 20
        assert opened.search("zebrafish migration", top_k=1).hits[0].source == "zebrafish.pdf"

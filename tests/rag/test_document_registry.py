"""The SQLite document registry (issue 22 part 2): every method, the one-time migration of an
earlier version's ``documents.json`` (a fixture written by that version's ``DocumentRegistry``),
a reader in another process while a writer works, and processes killed mid-transaction and
mid-migration leaving the previous state."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rag._manifest import DocumentRecord, DocumentRegistry
from rag.errors import StoreError

FIXTURE = Path(__file__).parent / "data" / "registry_v1" / "documents.json"
ROOT = Path(__file__).resolve().parents[2]


def _record(i: int, status: str = "complete", **kw) -> DocumentRecord:
    return DocumentRecord(
        doc_id=f"{i:064x}", name=f"doc{i:05d}.pdf", path=f"/docs/doc{i:05d}.pdf", pages=i % 7 + 1, kind="pdf",
        status=status, size_bytes=1000 + i, title=f"Document {i}", points={"text": i, "figures": 0, "pages": 1}, **kw,
    )


def _fixture_records() -> list[DocumentRecord]:
    raw = json.loads(FIXTURE.read_text())["documents"]
    return sorted((DocumentRecord(**v) for v in raw.values()), key=lambda r: (r.name, r.doc_id))


def _child(code: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE, text=True)


def test_every_method(tmp_path):
    reg = DocumentRegistry(tmp_path / "documents.sqlite")
    assert reg.all() == [] and len(reg) == 0 and reg.get("x") is None and reg.find("doc00001.pdf") == []
    one, two, pending = _record(1), _record(2, page_range=[2, 3]), _record(3, status="pending")
    for r in (two, pending, one):
        reg.put(r)
    assert reg.all() == [one, two, pending]  # by name, then doc id
    assert reg.complete() == [one, two]
    assert reg.pending() == [pending]
    assert reg.complete_ids() == sorted([one.doc_id, two.doc_id])
    assert reg.complete_ids(among=[two.doc_id, pending.doc_id, "unknown", two.doc_id]) == [two.doc_id]
    assert len(reg.complete_ids(among=[f"{i:064x}" for i in range(1200)])) == 2  # more ids than SQLite binds at once
    assert reg.get(two.doc_id) == two and reg.get(two.doc_id).page_range == [2, 3]
    assert reg.by_path("/docs/doc00003.pdf") == pending and reg.by_path("/nowhere.pdf") is None
    assert reg.find(one.doc_id) == [one]  # doc id
    assert reg.find("doc00002.pdf") == [two]  # file name
    assert reg.find("/docs/doc00003.pdf") == [pending]  # path
    assert reg.find(one.doc_id[:20]) == [one, two, pending]  # a prefix all share
    assert reg.find("0" * 7) == []  # prefixes need 8 characters
    assert reg.holding(two.sha256) == [two]
    copy = DocumentRecord(**{**two.__dict__, "doc_id": "f" * 64, "path": "/other/doc00002.pdf"})
    reg.put(copy)
    assert copy.sha256 == two.sha256 and {r.doc_id for r in reg.holding(two.sha256)} == {two.doc_id, copy.doc_id}
    # put replaces the record with the same doc id
    reg.put(DocumentRecord(**{**pending.__dict__, "status": "complete", "pages": 9}))
    assert reg.get(pending.doc_id).status == "complete" and reg.get(pending.doc_id).pages == 9
    reg.remove(copy.doc_id)
    reg.remove("not-there")
    assert len(reg) == 3
    # another registry object (another process would do the same) sees every committed write at once
    other = DocumentRegistry(tmp_path / "documents.sqlite")
    assert other.all() == reg.all()
    seen = other.generation()
    reg.remove(one.doc_id)
    assert other.generation() > seen  # every write, by any registry object, moves it
    other.reload()
    assert [r.name for r in other.all()] == ["doc00002.pdf", "doc00003.pdf"]


def test_file_names_that_are_not_utf8_are_stored_and_found(tmp_path):
    reg = DocumentRegistry(tmp_path / "documents.sqlite")
    odd = DocumentRecord(**{**_record(1).__dict__, "name": "caf\udce9.pdf", "path": "/docs/caf\udce9.pdf"})
    reg.put(odd)
    reg.put(_record(2))
    assert reg.by_path("/docs/caf\udce9.pdf") == odd and reg.find("caf\udce9.pdf") == [odd]
    assert DocumentRegistry(tmp_path / "documents.sqlite").get(odd.doc_id) == odd


def test_a_json_registry_of_the_previous_version_is_migrated_once(tmp_path, caplog):
    shutil.copy(FIXTURE, tmp_path / "documents.json")
    want = _fixture_records()
    assert {r.status for r in want} == {"complete", "pending"} and any(r.page_range for r in want)
    with caplog.at_level(logging.WARNING, logger="mmrag.registry"):
        reg = DocumentRegistry(tmp_path / "documents.sqlite")
    assert reg.all() == want
    assert all(r.sha256 == r.doc_id for r in reg.all())  # the doc ids of that version were the hashes
    assert not (tmp_path / "documents.json").exists()
    assert json.loads((tmp_path / "documents.json.bak").read_text()) == json.loads(FIXTURE.read_text())
    assert "documents.json.bak" in caplog.text and "4 documents" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mmrag.registry"):
        again = DocumentRegistry(tmp_path / "documents.json")  # the old name opens the database too
    assert again.all() == want and caplog.text == ""


def test_a_knowledge_base_of_the_previous_version_opens_with_its_documents(tmp_path):
    from rag import KnowledgeBase

    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    shutil.copy(FIXTURE, kb_dir / "documents.json")
    with KnowledgeBase.open(kb_dir, create=True) as kb:
        assert [d.name for d in kb.documents()] == ["alpha.pdf", "beta.png", "gamma.pdf"]
        assert [r.name for r in kb._registry.find("beta.png")] == ["beta.png"]
    assert (kb_dir / "documents.sqlite").is_file() and (kb_dir / "documents.json.bak").is_file()


def test_a_corrupt_json_registry_is_refused_with_the_fix(tmp_path):
    (tmp_path / "documents.json").write_text('{"documents": {"a": ')
    with pytest.raises(StoreError, match="documents.json: corrupt knowledge-base file.*restore it or rebuild"):
        DocumentRegistry(tmp_path / "documents.sqlite")
    assert (tmp_path / "documents.json").exists() and not (tmp_path / "documents.sqlite").exists()


@pytest.mark.parametrize("kill_at", [1, 2], ids=["before-the-database-is-in-place", "before-the-json-is-set-aside"])
def test_a_migration_killed_part_way_leaves_a_registry_that_opens(tmp_path, kill_at):
    shutil.copy(FIXTURE, tmp_path / "documents.json")
    child = _child(f"""
        import os, signal
        from pathlib import Path
        import rag.atomic
        real, calls = rag.atomic.replace_durably, []
        def dying(tmp, path):
            calls.append(path)
            if len(calls) == {kill_at}:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(tmp, path)
        rag.atomic.replace_durably = dying
        from rag._manifest import DocumentRegistry
        DocumentRegistry(Path({str(tmp_path / "documents.sqlite")!r}))
    """)
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert (tmp_path / "documents.json").exists()  # the old registry is still there
    assert (tmp_path / "documents.sqlite").exists() == (kill_at == 2)
    reg = DocumentRegistry(tmp_path / "documents.sqlite")
    assert reg.all() == _fixture_records()
    assert sorted(p.name for p in tmp_path.iterdir() if "documents" in p.name and not p.name.endswith(("-wal", "-shm"))) == [
        "documents.json.bak", "documents.sqlite",
    ]


def test_a_writer_killed_inside_a_transaction_leaves_the_previous_state(tmp_path):
    db = tmp_path / "documents.sqlite"
    reg = DocumentRegistry(db)
    reg.put(_record(1))
    marker = tmp_path / "in-commit"
    child = _child(f"""
        import time
        from pathlib import Path
        from rag._manifest import DocumentRecord, DocumentRegistry
        reg = DocumentRegistry(Path({str(db)!r}))
        def on_statement(sql):
            if sql.strip().upper() == "COMMIT":  # the record is written, not yet committed
                Path({str(marker)!r}).write_text("x")
                time.sleep(60)
        reg._conn.set_trace_callback(on_statement)
        old = reg.get({_record(1).doc_id!r})
        reg.put(DocumentRecord(**{{**old.__dict__, "status": "pending", "pages": 99}}))
        reg.put(DocumentRecord(**{{**old.__dict__, "doc_id": "e" * 64}}))
    """)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert child.poll() is None and time.monotonic() < deadline, "the child never reached its commit"
        time.sleep(0.02)
    # while the writer holds its transaction open, readers see the last committed state
    assert reg.all() == [_record(1)]
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    fresh = DocumentRegistry(db)
    assert fresh.all() == [_record(1)]
    fresh.put(_record(2))  # and the registry is writable again
    assert [r.name for r in reg.all()] == ["doc00001.pdf", "doc00002.pdf"]


def test_a_reader_in_another_process_sees_whole_writes_while_a_writer_works(tmp_path):
    db = tmp_path / "documents.sqlite"
    DocumentRegistry(db)
    n = 150
    child = _child(f"""
        from pathlib import Path
        from tests.rag.test_document_registry import _record
        from rag._manifest import DocumentRegistry
        reg = DocumentRegistry(Path({str(db)!r}))
        for i in range({n}):
            reg.put(_record(i, status="pending"))
            reg.put(_record(i))
    """)
    reader = DocumentRegistry(db)
    seen = []
    while child.poll() is None or not seen or seen[-1] < n:
        docs = reader.all()
        complete = [r for r in docs if r.status == "complete"]
        # a snapshot: documents 0..k-1 complete, at most document k pending, each record whole
        assert [r.name for r in complete] == [f"doc{i:05d}.pdf" for i in range(len(complete))]
        assert len(docs) - len(complete) <= 1
        assert all(r == _record(int(r.name[3:8]), status=r.status) for r in docs)
        seen.append(len(complete))
        if child.poll() is not None and child.returncode != 0:
            break
    assert child.wait(timeout=120) == 0
    assert seen == sorted(seen) and seen[-1] == n and len(set(seen)) > 2  # it read while the writer worked

"""An update replaces (issue 21 item 2): a document is a path with its content. New bytes at a
known path replace that path's document even when another document already holds those bytes;
the two documents keep their own points (deleting one leaves the other); a file rewritten
while it is being read ends with its new content, or fails naming the reason, never half old
and half new."""

from __future__ import annotations

from pathlib import Path

import pytest

import _pdfgen as g
from rag import KnowledgeBase
from rag.config import Config, IngestConfig
from rag.ids import sha256_file

ALPHA = "Apricot zeppelin maintenance: the apricot zeppelin hangar door opens at dawn."
BRAVO = "Blueberry quasar calibration: the blueberry quasar lens is cleaned every Tuesday."
CHARLIE = "Cinnamon trombone tuning: the cinnamon trombone slide is oiled every month."


def _config(workers: int = 1) -> Config:
    return Config(ingest=IngestConfig(ocr="never", dpi=72, workers=workers))


def _sources(kb: KnowledgeBase, question: str) -> set[str]:
    """The names of the documents whose pages a search finds with the question's words."""
    words = {w.lower().strip(".:,") for w in question.split()}
    found = set()
    for hit in kb.search(question, top_k=10).hits:
        text = " ".join(e.text for e in hit.evidence).lower()
        if words & set(text.replace(":", " ").replace(".", " ").split()):
            found.add(hit.source)
    return found


def _points(kb: KnowledgeBase, doc_id: str) -> set[str]:
    from retrievers.base import Filter

    store, specs = kb._open_store()
    return {p.id for spec in specs.values() for p in store.scroll(spec.name, Filter(doc_ids=(doc_id,)))}


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "worker-processes"])
def test_a_file_rewritten_with_another_documents_bytes_is_replaced(tmp_path, workers):
    docs = tmp_path / "docs"
    docs.mkdir()
    a = g.text_pdf(docs / "a.pdf", [ALPHA, f"{ALPHA} Second page."])
    b = g.text_pdf(docs / "b.pdf", [BRAVO])
    with KnowledgeBase.open(tmp_path / "kb", _config(workers), create=True) as kb:
        assert [r.status for r in kb.ingest([docs], progress=False)] == ["indexed", "indexed"]
        b_doc = kb._registry.by_path(str(b))
        b_points = _points(kb, b_doc.doc_id)
        assert _sources(kb, "apricot zeppelin hangar") == {"a.pdf"}

        a.write_bytes(b.read_bytes())  # a.pdf now holds exactly b.pdf's bytes
        reports = {r.path.name: r for r in kb.ingest([docs], progress=False)}
        assert (reports["a.pdf"].status, reports["b.pdf"].status) == ("indexed", "unchanged")
        assert reports["a.pdf"].doc_id != b_doc.doc_id  # its own document, not b's

        assert _sources(kb, "apricot zeppelin hangar") == set()  # the old text is gone
        assert _sources(kb, "blueberry quasar lens") == {"a.pdf", "b.pdf"}  # a's name cited for its new text
        assert sorted(d.name for d in kb.documents()) == ["a.pdf", "b.pdf"]
        assert kb._registry.by_path(str(a)).sha256 == sha256_file(a)
        assert _points(kb, b_doc.doc_id) == b_points  # b untouched

        # again: nothing to do
        assert {r.status for r in kb.ingest([docs], progress=False)} == {"unchanged"}

        kb.delete("a.pdf")
        assert [d.name for d in kb.documents()] == ["b.pdf"]
        assert _points(kb, b_doc.doc_id) == b_points
        assert _sources(kb, "blueberry quasar lens") == {"b.pdf"}
        assert sorted(p.name for p in (tmp_path / "kb" / "images").iterdir()) == [b_doc.doc_id]


def test_a_file_rewritten_while_it_is_read_ends_with_its_new_content(tmp_path):
    a = g.text_pdf(tmp_path / "a.pdf", [ALPHA, f"{ALPHA} Page two.", f"{ALPHA} Page three."])
    new = g.text_pdf(tmp_path / "new.pdf", [CHARLIE, f"{CHARLIE} Page two."]).read_bytes()
    rewrites = []

    def rewrite_after_page_one(path: Path, done: int, total: int) -> None:
        if done == 1 and not rewrites:
            rewrites.append(total)
            path.write_bytes(new)

    with KnowledgeBase.open(tmp_path / "kb", _config(), create=True) as kb:
        [report] = kb.ingest([a], progress=False, on_page=rewrite_after_page_one)
        assert rewrites == [3]
        assert report.status == "indexed", report
        [record] = kb.documents()
        assert record.sha256 == sha256_file(a) and record.pages == 2  # the new file, whole
        assert _sources(kb, "apricot zeppelin hangar") == set()
        assert _sources(kb, "cinnamon trombone slide") == {"a.pdf"}
        assert len(list((tmp_path / "kb" / "images").iterdir())) == 1  # no images of the first reading


def test_a_file_that_keeps_changing_fails_with_the_reason(tmp_path):
    a = g.text_pdf(tmp_path / "a.pdf", [ALPHA, f"{ALPHA} Page two."])
    versions = [g.text_pdf(tmp_path / f"v{i}.pdf", [f"{CHARLIE} Version {i}.", "More."]).read_bytes() for i in range(2)]

    def rewrite_every_reading(path: Path, done: int, total: int) -> None:
        if done == 1 and versions:
            path.write_bytes(versions.pop(0))

    with KnowledgeBase.open(tmp_path / "kb", _config(), create=True) as kb:
        [report] = kb.ingest([a], progress=False, on_page=rewrite_every_reading)
        assert report.status == "failed" and report.error_type == "FileChangedError", report
        assert "a.pdf" in report.error and "modified while it was being read" in report.error
        assert "twice" in report.error
        assert kb.documents() == [] and kb._registry.all() == []
        assert kb.info()["corpora"]["pages"]["points"] == 0
        # once nothing writes it, it ingests
        [again] = kb.ingest([a], progress=False)
        assert again.status == "indexed" and _sources(kb, "cinnamon trombone version") == {"a.pdf"}


def test_the_same_file_named_twice_in_one_batch_is_one_document(tmp_path):
    a = g.text_pdf(tmp_path / "a.pdf", [ALPHA])
    b = g.text_pdf(tmp_path / "b.pdf", [BRAVO])
    with KnowledgeBase.open(tmp_path / "kb", _config(workers=2), create=True) as kb:
        reports = kb.ingest([a, b, a], progress=False)
        assert [r.status for r in reports] == ["indexed", "indexed", "unchanged"]
        assert reports[2].doc_id == reports[0].doc_id == sha256_file(a)
        assert sorted(d.name for d in kb.documents()) == ["a.pdf", "b.pdf"]
    assert len(list((tmp_path / "kb" / "images").iterdir())) == 2


def test_a_file_identity_tells_a_change_of_bytes_from_a_touch(tmp_path):
    import os

    from ingest import identify_file

    a = g.text_pdf(tmp_path / "a.pdf", [ALPHA])
    identity = identify_file(a, IngestConfig())
    assert identity.changed() is None and identity.doc_id == identity.sha256 == sha256_file(a)
    os.utime(a, ns=(1, 1))  # times moved, same bytes: hashed again, no change
    assert identity.changed() is None
    data = a.read_bytes()
    a.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one byte differs
    assert "modified while it was being read" in identity.changed()
    a.unlink()
    assert "went away" in identity.changed()

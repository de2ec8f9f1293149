"""Indexing reads a file for hashing once: its identity (checked, hashed: the doc id) is made
by ``ingest.identify_file`` and handed on, to the reader in this process or to the worker
process that extracts it, never recomputed. Page ranges are asked of the reader."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import _pdfgen as g
from rag import KnowledgeBase
from rag.config import Config, IngestConfig
from rag.ids import sha256_file


def _config(workers: int) -> Config:
    return Config(ingest=IngestConfig(ocr="never", dpi=72, workers=workers))


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("identity_docs")
    return [
        g.text_pdf(folder / f"doc{k}.pdf", [f"Document {k} page {i + 1}. {g.LOREM}" for i in range(3 + k)])
        for k in range(3)
    ]


def _record_digests(monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    """Write every sha256 digest made from now on to ``log``, one per line, in this process
    and in worker processes forked from it (they inherit the patched ``hashlib``)."""
    real = hashlib.sha256

    class Recording:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._h = real(*args, **kwargs)

        def update(self, data: bytes) -> None:
            self._h.update(data)

        def hexdigest(self) -> str:
            out = self._h.hexdigest()
            with open(log, "a") as fh:
                fh.write(out + "\n")
            return out

        def digest(self) -> bytes:
            self.hexdigest()
            return self._h.digest()

    log.write_text("")
    monkeypatch.setattr(hashlib, "sha256", Recording)


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "worker-processes"])
def test_one_ingest_hashes_each_file_once(tmp_path, pdfs, monkeypatch, workers):
    expected = {p: sha256_file(p) for p in pdfs}
    _record_digests(monkeypatch, tmp_path / "digests.txt")
    with KnowledgeBase.open(tmp_path / "kb", _config(workers), create=True) as kb:
        reports = kb.ingest(pdfs, progress=False)
    monkeypatch.undo()
    assert [r.status for r in reports] == ["indexed"] * len(pdfs), reports
    digests = (tmp_path / "digests.txt").read_text().split()
    assert {p.name: digests.count(h) for p, h in expected.items()} == {p.name: 1 for p in pdfs}
    assert [r.doc_id for r in reports] == list(expected.values())  # the same doc ids as before: sha256 of the bytes


def test_a_page_range_indexes_those_physical_pages(tmp_path, pdfs):
    with KnowledgeBase.open(tmp_path / "kb", _config(1), create=True) as kb:
        [report] = kb.ingest([pdfs[2]], progress=False, page_ranges={"doc2.pdf": (2, 3)})
        assert report.status == "indexed" and report.pages == 2
        store, specs = kb._open_store()
        pages = sorted(p.payload["page"] for p in store.scroll(specs["pages"].name))
        assert pages == [2, 3]
        [again] = kb.ingest([pdfs[2]], progress=False, page_ranges={"doc2.pdf": (2, 3)})
        assert again.status == "unchanged"
        [clipped] = kb.ingest([pdfs[2]], progress=False, page_ranges={"doc2": (4, 99)})
        assert clipped.status == "indexed" and clipped.pages == 2  # pages 4 and 5 of five

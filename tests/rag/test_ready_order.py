"""With extraction workers, the ingesting process embeds whichever document has pages ready
(``rag._ready_order``): a slow first file no longer holds back a ready second one, reports stay
in input order, and a document that fails is rolled back alone while another is mid-flight.

The workers are forked, so a patched reader and ``multiprocessing`` events reach them: a worker
waits on an event the ingesting process sets, never on a clock. Each wait has a generous
timeout only so that a broken ordering fails the test instead of hanging it; the tests assert
that no wait ran out."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

import _pdfgen as g
import ingest.reader as reader_mod
import rag._indexer as indexer_mod
from rag import KnowledgeBase
from rag._ready_order import _Lookahead
from rag.config import Config, IngestConfig
from rag.errors import CorruptDocumentError, ModelError

_WAIT_S = 60  # only so that a wrong order fails instead of hanging: no assertion on time


def _config() -> Config:
    return Config(ingest=IngestConfig(ocr="never", dpi=72, workers=2))


def _pdf(folder: Path, name: str, pages: int) -> Path:
    stem = name.split(".")[0]
    return g.text_pdf(folder / name, [f"{stem} page {i + 1}. {g.LOREM} Marker {stem}-{i + 1}." for i in range(pages)])


class _Watch:
    """Events between the forked workers and this process, and what this process did, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        ctx = multiprocessing.get_context("fork")
        self.written = {name: ctx.Event() for name in ("a", "b")}  # a batch of that document upserted
        self.rolled_back = {name: ctx.Event() for name in ("a", "b")}
        self.gave_up = ctx.Event()  # a worker's wait ran out: the order was not the one expected
        self.log: list[tuple[str, str]] = []
        self.status_of_other: dict[str, str | None] = {}
        real_flush, real_complete, real_forget = (
            indexer_mod.Indexer._flush, indexer_mod.Indexer._complete, indexer_mod.Indexer._forget_failed)
        watch = self

        def flush(indexer: Any, info: Any, batch: Any, *args: Any) -> None:
            real_flush(indexer, info, batch, *args)
            watch.log.append(("upserted", info.name))
            watch.written[info.name[0]].set()

        def complete(indexer: Any, record: Any, *args: Any) -> Any:
            watch.log.append(("complete", record.name))
            return real_complete(indexer, record, *args)

        def forget(indexer: Any, path: Path, job: Any = None) -> None:
            other = [r for r in indexer.registry.all() if r.path != str(path)]
            watch.status_of_other[path.name] = other[0].status if other else None
            real_forget(indexer, path, job)
            watch.log.append(("rolled back", path.name))
            watch.rolled_back[path.name[0]].set()

        monkeypatch.setattr(indexer_mod.Indexer, "_flush", flush)
        monkeypatch.setattr(indexer_mod.Indexer, "_complete", complete)
        monkeypatch.setattr(indexer_mod.Indexer, "_forget_failed", forget)

    def hold(self, monkeypatch: pytest.MonkeyPatch, name: str, page: int, until: Any, then: Exception | None = None) -> None:
        """The worker reading ``name`` waits before page ``page`` until ``until`` is set (then raises ``then``)."""
        real = reader_mod.DocumentReader._extract
        gave_up = self.gave_up

        def held(reader: Any, index: int, info: Any, out_dir: Any) -> Any:
            if reader.path.name == name and index == page - 1:
                if not until.wait(_WAIT_S):
                    gave_up.set()
                if then is not None:
                    raise then
            return real(reader, index, info, out_dir)

        monkeypatch.setattr(reader_mod.DocumentReader, "_extract", held)


def test_a_slow_first_document_does_not_hold_back_a_ready_second_one(tmp_path, monkeypatch):
    a, b = _pdf(tmp_path, "a_slow.pdf", 5), _pdf(tmp_path, "b_ready.pdf", 20)
    watch = _Watch(monkeypatch)
    watch.hold(monkeypatch, "a_slow.pdf", page=2, until=watch.written["b"])  # a's reading waits for b's points
    heard: list[str] = []
    with KnowledgeBase.open(tmp_path / "kb", _config(), create=True) as kb:
        reports = kb.ingest([a, b], progress=False, on_report=lambda r: heard.append(r.path.name))
        assert not watch.gave_up.is_set()  # b's pages were upserted while a was still being read
        assert watch.log.index(("upserted", "b_ready.pdf")) < watch.log.index(("complete", "a_slow.pdf"))
        assert watch.log.index(("complete", "b_ready.pdf")) < watch.log.index(("complete", "a_slow.pdf"))
        # ...and still, what the user sees comes in input order
        assert [(r.path.name, r.status) for r in reports] == [("a_slow.pdf", "indexed"), ("b_ready.pdf", "indexed")]
        assert heard == ["a_slow.pdf", "b_ready.pdf"]
        assert [r.pages for r in reports] == [5, 20]
        assert sorted(d.name for d in kb.documents()) == ["a_slow.pdf", "b_ready.pdf"]
        assert kb.search("Marker a_slow-5", top_k=1).hits[0].page == 5
        assert kb.search("Marker b_ready-20", top_k=1).hits[0].page == 20


def test_a_document_failing_while_another_is_mid_flight_is_rolled_back_alone(tmp_path, monkeypatch):
    a, b = _pdf(tmp_path, "a_broken.pdf", 5), _pdf(tmp_path, "b_long.pdf", 40)
    watch = _Watch(monkeypatch)
    # a fails once b has points written; b's reading waits (after its first batches) until a is rolled back
    watch.hold(monkeypatch, "a_broken.pdf", page=3, until=watch.written["b"],
               then=CorruptDocumentError(a, "page 3 is damaged (test)"))
    watch.hold(monkeypatch, "b_long.pdf", page=36, until=watch.rolled_back["a"])
    with KnowledgeBase.open(tmp_path / "kb", _config(), create=True) as kb:
        reports = kb.ingest([a, b], progress=False)
        assert not watch.gave_up.is_set()
        assert watch.status_of_other["a_broken.pdf"] == "pending"  # b was mid-flight when a was rolled back
        failed, indexed = reports
        assert failed.path.name == "a_broken.pdf" and failed.status == "failed"
        assert failed.error_type == "CorruptDocumentError" and "page 3 is damaged" in failed.error
        assert indexed.path.name == "b_long.pdf" and indexed.status == "indexed" and indexed.pages == 40
        assert [d.name for d in kb.documents()] == ["b_long.pdf"]
        assert kb.search("Marker b_long-40", top_k=1).hits[0].page == 40
        assert all(h.doc_id == indexed.doc_id for h in kb.search("Marker a_broken-1", top_k=5).hits)
    assert [p.name for p in (tmp_path / "kb" / "images").iterdir()] == [indexed.doc_id]  # a's page images gone


def test_an_embedding_error_in_one_document_leaves_the_one_in_flight_complete(tmp_path, monkeypatch):
    a, b = _pdf(tmp_path, "a_held.pdf", 5), _pdf(tmp_path, "b_unembeddable.pdf", 20)
    watch = _Watch(monkeypatch)
    watch.hold(monkeypatch, "a_held.pdf", page=2, until=watch.rolled_back["b"])  # a is read on after b failed
    real_build = indexer_mod.build_points

    def build_points(info: Any, batch: Any, embedders: Any) -> Any:
        if info.name == "b_unembeddable.pdf" and batch[0].page.page > 1:
            raise ModelError("the text model refused this batch (test)")
        return real_build(info, batch, embedders)

    monkeypatch.setattr(indexer_mod, "build_points", build_points)
    with KnowledgeBase.open(tmp_path / "kb", _config(), create=True) as kb:
        reports = kb.ingest([a, b], progress=False)
        assert not watch.gave_up.is_set()
        assert [(r.path.name, r.status) for r in reports] == [("a_held.pdf", "indexed"), ("b_unembeddable.pdf", "failed")]
        assert reports[1].error_type == "ModelError" and "refused this batch" in reports[1].error
        assert [d.name for d in kb.documents()] == ["a_held.pdf"]
        assert all(h.doc_id == reports[0].doc_id for h in kb.search("Marker b_unembeddable-1", top_k=5).hits)
        # the next ingest reads the failed file again and indexes it
        monkeypatch.setattr(indexer_mod, "build_points", real_build)
        again = kb.ingest([a, b], progress=False)
        assert [r.status for r in again] == ["unchanged", "indexed"]


class _NewFiles:
    """What the look-ahead asks of the indexer, for files that are all new."""

    config = IngestConfig()

    def __init__(self) -> None:
        from types import SimpleNamespace

        self._claimed: set[str] = set()
        self.registry = SimpleNamespace(by_path=lambda path: None)

    def _plan(self, identity: Any, page_range: Any) -> Any:
        from rag._indexer import _Plan

        return _Plan(identity, None)


class _Pool:
    """Records what the look-ahead sends to the workers."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def submit(self, path: Path, page_range: Any, identity: Any) -> str:
        self.sent.append(path.name)
        return path.name


def _growing_files(folder: Path, n: int) -> list[Path]:
    """``n`` files that pass the format check, each larger than the one before."""
    files = [folder / f"f{i}.pdf" for i in range(n)]
    for i, f in enumerate(files):
        f.write_bytes(b"%PDF-1.4\n" + b"%" * (1000 * (i + 1)) + f"\n{i}".encode())
    return files


def test_the_heaviest_files_go_to_the_workers_first_and_reports_keep_input_order(tmp_path, monkeypatch):
    import ingest.parallel as parallel_mod

    paths = [_pdf(tmp_path, "a_short.pdf", 2), _pdf(tmp_path, "b_long.pdf", 30), _pdf(tmp_path, "c_middle.pdf", 10)]
    by_size = [p.name for p in sorted(paths, key=lambda p: -p.stat().st_size)]
    assert by_size != [p.name for p in paths]  # the test means something only if the orders differ
    sent: list[str] = []
    real_submit = parallel_mod.ExtractionPool.submit

    def submit(pool: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(Path(path).name)
        return real_submit(pool, path, *args, **kwargs)

    monkeypatch.setattr(parallel_mod.ExtractionPool, "submit", submit)
    heard: list[str] = []
    with KnowledgeBase.open(tmp_path / "kb", _config(), create=True) as kb:
        reports = kb.ingest(paths, progress=False, on_report=lambda r: heard.append(r.path.name))
        assert sent == by_size  # the longest file is read first, the shortest last
        assert [(r.path.name, r.status, r.pages) for r in reports] == [
            ("a_short.pdf", "indexed", 2), ("b_long.pdf", "indexed", 30), ("c_middle.pdf", "indexed", 10)]
        assert heard == ["a_short.pdf", "b_long.pdf", "c_middle.pdf"]
        assert sorted((d.name, d.pages, d.doc_id) for d in kb.documents()) == sorted(
            (r.path.name, r.pages, r.doc_id) for r in reports)
        assert kb.search("Marker b_long-30", top_k=1).hits[0].page == 30


def test_a_light_file_waits_for_heavier_ones_only_within_the_window(tmp_path):
    # input order: light to heavy, so heaviest-first alone would send the first file last
    files = _growing_files(tmp_path, 8)
    pool = _Pool()
    ahead = _Lookahead(_NewFiles(), pool, [(f, None) for f in files], depth=3, window=3)  # type: ignore[arg-type]
    out = 0
    while ahead.next < len(files) or ahead.waiting:
        out += len(ahead.top_up(out, out)) - (1 if out else 0)  # one job ends between calls
    position = {name: n for n, name in enumerate(pool.sent)}
    assert sorted(pool.sent) == sorted(f.name for f in files)  # each file sent once
    assert pool.sent[0] == "f2.pdf"  # the heaviest of the first window first
    for i in range(len(files)):  # ...but no file goes out after one a window or more past it
        assert all(position[f"f{i}.pdf"] < position[f"f{j}.pdf"] for j in range(i + 3, len(files)))


def test_a_worker_that_finished_a_file_gets_the_next_before_its_last_batches_are_embedded(tmp_path):
    pool = _Pool()
    ahead = _Lookahead(_NewFiles(), pool, [(f, None) for f in _growing_files(tmp_path, 8)], depth=2)  # type: ignore[arg-type]
    assert len(ahead.top_up(reading=0, held=0)) == 2
    # one of the two was read to its end, its last batches not embedded yet: its worker gets another file
    assert len(ahead.top_up(reading=1, held=2)) == 1
    # ...but no more than twice ``depth`` files are held unconsumed, however fast the workers are
    assert len(ahead.top_up(reading=0, held=3)) == 1
    assert ahead.top_up(reading=0, held=4) == []
    assert pool.sent == ["f7.pdf", "f6.pdf", "f5.pdf", "f4.pdf"]

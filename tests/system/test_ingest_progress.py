"""Progress a person can see, and nothing in a folder vanishing (issue 20, parts 6 and 7), as a
user meets them: `mmrag ingest` in a terminal (a pseudo-terminal here) with worker processes
draws one live bar (files done / total, pages read, the file names) while it works; with stderr
a pipe or with --json it draws nothing; page counts from the workers reach the caller and the
API job; a folder's skipped files are listed with their reasons and counted, and are no failure."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

import _pdfgen as g
from ingest import SUPPORTED_SUFFIXES
from rag import KnowledgeBase
from rag.config import Config, IngestConfig

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **OFFLINE, "PYTHONPATH": path}


def _mmrag(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag.cli", *args]


@pytest.fixture(scope="module")
def two_pdfs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("progress_docs")
    return [
        g.text_pdf(folder / f"{name}.pdf", [f"Page {i} of the {name} report on grain storage and silo ventilation." for i in (1, 2, 3)])
        for name in ("alpha", "bravo")
    ]


def _run_in_terminal(argv: list[str], timeout_s: float = 300.0) -> tuple[int, str]:
    """Run ``argv`` with stdout and stderr on a 40 x 120 pseudo-terminal; its exit code and
    everything it wrote, as the terminal received it (``\\r`` and all)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=_env(), cwd=ROOT)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_sees_files_pages_and_names_while_workers_read(two_pdfs, tmp_path):
    alpha, bravo = two_pdfs
    code, out = _run_in_terminal(
        _mmrag("ingest", str(alpha), str(bravo), "--kb", str(tmp_path / "kb"), "--workers", "2", "--ocr", "never", "--dpi", "72")
    )
    assert code == 0, out[-3000:]
    done_bravo = out.index(f"indexed   {bravo}")
    assert out.index(f"indexed   {alpha}") < done_bravo
    before_last = out[:done_bravo]
    # the bar, drawn in place with \r, before the last file is done: files done of total,
    # and a file being read by name with its pages read of its pages
    assert "\r" in before_last
    assert re.search(r"1/2 files", before_last), before_last[-2000:]
    assert re.search(r"alpha\.pdf [0-3]/3 pages", before_last), before_last[-2000:]
    assert "2 indexed, 0 unchanged, 0 skipped, 0 failed" in out[done_bravo:]


def test_a_pipe_gets_the_lines_and_no_bar(two_pdfs, tmp_path, capsys):
    """stderr not a terminal (captured here, as in a pipe): each file's line, the summary, and
    not one character of a bar."""
    from rag.cli import main

    alpha, bravo = two_pdfs
    code = main(["ingest", str(alpha), str(bravo), "--kb", str(tmp_path / "kb"), "--workers", "2", "--ocr", "never", "--dpi", "72"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "\r" not in err and "\x1b" not in err and "files [" not in err, err
    assert err.splitlines() == [f"indexed   {alpha}  3 pages", f"indexed   {bravo}  3 pages", "2 indexed, 0 unchanged, 0 skipped, 0 failed"]


def test_worker_page_counts_reach_the_caller_file_by_file(two_pdfs, tmp_path):
    """The extraction pool's ``on_page`` hears each document opened by a worker, then each page
    it reads; the knowledge base's ``on_page`` hears each file from 0 to all its pages."""
    from ingest.parallel import ExtractionPool

    seen: list[tuple[str, int, int]] = []
    config = IngestConfig(ocr="never", dpi=72, workers=2)
    with ExtractionPool(config, tmp_path / "images", workers=2, on_page=lambda p, d, t: seen.append((p.name, d, t))) as pool:
        jobs = [pool.submit(p) for p in two_pdfs]
        assert [sum(len(b) for b in job.batches()) for job in jobs] == [3, 3]
    for name in ("alpha.pdf", "bravo.pdf"):
        counts = [(d, t) for n, d, t in seen if n == name]
        assert counts == [(0, 0), (0, 3), (1, 3), (2, 3), (3, 3)], seen  # opened, then page by page

    calls: list[tuple[str, int, int]] = []
    with KnowledgeBase.open(tmp_path / "kb", Config(ingest=config), create=True) as kb:
        reports = kb.ingest(two_pdfs, progress=False, on_page=lambda p, d, t: calls.append((p.name, d, t)))
    assert [r.status for r in reports] == ["indexed", "indexed"]
    for name in ("alpha.pdf", "bravo.pdf"):
        counts = [(d, t) for n, d, t in calls if n == name]
        assert counts[0] == (0, 3) and counts[-1] == (3, 3) and counts == sorted(counts), calls


def test_the_api_job_counts_pages_to_the_total_with_workers(two_pdfs, tmp_path):
    from rag.server._service import Service

    with KnowledgeBase.open(tmp_path / "kb", Config(ingest=IngestConfig(ocr="never", dpi=72, workers=2)), create=True) as kb:
        service = Service(kb, token=None, max_upload_bytes=10**6)
        try:
            job = service.jobs.submit(two_pdfs)
            deadline = time.monotonic() + 300
            while service.jobs.get(job.id).state not in ("done", "failed") and time.monotonic() < deadline:
                time.sleep(0.1)
            files = service.jobs.get(job.id).to_json()["files"]
        finally:
            service.jobs.close()
    assert [(f["state"], f["pages_done"], f["pages_total"]) for f in files] == [("indexed", 3, 3), ("indexed", 3, 3)]


@pytest.fixture
def mixed_folder(tmp_path, two_pdfs) -> Path:
    """A good PDF, a junk .docx (when .docx is not a supported format), a .xyz, a hidden file, a
    hidden folder with files, and the knowledge base's own folder inside."""
    root = tmp_path / "team"
    root.mkdir()
    (root / "report.pdf").write_bytes(two_pdfs[0].read_bytes())
    if ".docx" not in SUPPORTED_SUFFIXES:
        (root / "minutes.docx").write_bytes(b"not really a docx")
    (root / "data.xyz").write_text("x")
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    (root / ".git" / "objects").mkdir(parents=True)
    for i in range(20):
        (root / ".git" / "objects" / f"{i:02x}").write_bytes(b"x")
    return root


def _expected_skips(root: Path) -> dict[str, str]:
    supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
    skips = {
        str(root / ".DS_Store"): "hidden",
        str(root / ".git"): "hidden folder, not walked",
        str(root / "data.xyz"): f"unsupported format .xyz; supported: {supported}",
        str(root / "kb"): "the knowledge base's own folder",
    }
    if (root / "minutes.docx").exists():
        skips[str(root / "minutes.docx")] = f"unsupported format .docx; supported: {supported}"
    return skips


def test_a_folder_lists_each_skipped_file_once_with_its_reason(mixed_folder, capsys):
    from rag.cli import main

    root = mixed_folder
    kb = root / "kb"
    assert main(["ingest", str(root), "--kb", str(kb), "--ocr", "never"]) == 0  # a skip is no failure
    err = capsys.readouterr().err
    expected = _expected_skips(root)
    skipped = [line for line in err.splitlines() if line.startswith("skipped")]
    assert sorted(skipped) == sorted(f"skipped   {path}  {reason}" for path, reason in expected.items()), err
    assert f"indexed   {root / 'report.pdf'}  3 pages" in err
    assert f"1 indexed, 0 unchanged, {len(expected)} skipped, 0 failed" in err

    assert main(["ingest", str(root), "--kb", str(kb), "--json"]) == 0
    captured = capsys.readouterr()
    docs = json.loads(captured.out)["documents"]
    got = {d["path"]: d for d in docs}
    assert len(docs) == len(expected) + 1  # each once
    for path, reason in expected.items():
        assert (got[path]["status"], got[path]["reason"], got[path]["error"]) == ("skipped", reason, None)
    assert got[str(root / "report.pdf")]["status"] == "unchanged"
    assert captured.err == ""  # --json: no bar, no lines


def test_a_folder_with_nothing_to_read_is_an_error_that_still_lists_the_skips(tmp_path, capsys):
    from rag.cli import main

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.xyz").write_text("x")
    assert main(["ingest", str(tmp_path / "docs"), "--kb", str(tmp_path / "kb")]) == 1
    err = capsys.readouterr().err
    assert f"skipped   {tmp_path / 'docs' / 'notes.xyz'}  unsupported format .xyz" in err
    assert "0 indexed, 0 unchanged, 1 skipped, 0 failed" in err
    assert "error: no supported files found in the given paths (1 skipped, each with its reason)" in err

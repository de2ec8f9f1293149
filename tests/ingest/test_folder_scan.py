"""A folder walk reports every entry it does not read, with the rule that skipped it
(``ingest.scan_paths``): nothing in a folder vanishes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import _pdfgen as g
from ingest import SUPPORTED_SUFFIXES, inspect_batch, iter_files, scan_paths
from rag.config import IngestConfig

KB_REASON = "the knowledge base's own folder"


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    g.text_pdf(root / "good.pdf", ["A page about grain storage."])
    (root / "sub" / "scan.png").write_bytes(g.png_bytes())
    (root / "notes.xyz").write_text("not a document")
    (root / "README").write_text("no extension")
    (root / ".secret.pdf").write_bytes(b"%PDF-1.4 hidden")
    git = root / ".git" / "objects"
    git.mkdir(parents=True)
    for i in range(50):  # a hidden folder is one report, however much it holds
        (git / f"{i:02x}.pdf").write_bytes(b"x")
    (root / "kb" / "images").mkdir(parents=True)
    (root / "kb" / "images" / "page.png").write_bytes(g.png_bytes())
    return root


def _reasons(scan) -> dict[str, str]:
    return {str(r.path): r.reason for r in scan.skipped}


def test_a_folder_walk_reports_each_skipped_entry_once_with_its_reason(tmp_path):
    root = _tree(tmp_path)
    scan = scan_paths([root], exclude={root / "kb": KB_REASON})
    assert scan.files == (root / "good.pdf", root / "sub" / "scan.png")
    reasons = _reasons(scan)
    supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
    assert reasons == {
        str(root / ".git"): "hidden folder, not walked",
        str(root / ".secret.pdf"): "hidden",
        str(root / "README"): f"unsupported format (no extension); supported: {supported}",
        str(root / "kb"): KB_REASON,
        str(root / "notes.xyz"): f"unsupported format .xyz; supported: {supported}",
    }
    assert len(scan.skipped) == len(reasons)  # each once
    assert all(r.status == "skipped" and r.ok and r.doc_id is None for r in scan.skipped)


def test_the_supported_list_in_the_reason_is_the_readers_own(tmp_path, monkeypatch):
    """The reason quotes ``SUPPORTED_SUFFIXES`` as it is when the walk runs (formats get added)."""
    import ingest.batch

    (tmp_path / "a.xyz").write_text("x")
    monkeypatch.setattr(ingest.batch, "SUPPORTED_SUFFIXES", frozenset({".pdf", ".xyz"}))
    assert scan_paths([tmp_path]).files == (tmp_path / "a.xyz",)
    (tmp_path / "b.abc").write_text("x")
    assert _reasons(scan_paths([tmp_path])) == {str(tmp_path / "b.abc"): "unsupported format .abc; supported: .pdf, .xyz"}


def test_a_given_folder_inside_the_knowledge_base_is_skipped_whole(tmp_path):
    root = _tree(tmp_path)
    scan = scan_paths([root / "kb" / "images"], exclude={root / "kb": KB_REASON})
    assert scan.files == () and _reasons(scan) == {str(root / "kb" / "images"): KB_REASON}


def test_explicit_files_are_kept_as_given_whatever_they_are(tmp_path):
    root = _tree(tmp_path)
    explicit = [root / ".secret.pdf", root / "notes.xyz", tmp_path / "missing.pdf", root / "kb" / "images" / "page.png"]
    scan = scan_paths(explicit, exclude={root / "kb": KB_REASON})
    assert scan.files == tuple(explicit) and scan.skipped == ()
    assert list(iter_files([root / "sub", *explicit])) == [root / "sub" / "scan.png", *explicit]


def test_symbolic_links_inside_are_read_and_out_of_the_folder_or_looping_are_skipped(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    outside = g.text_pdf(tmp_path / "outside.pdf", ["Not in the folder."])
    g.text_pdf(root / "a.pdf", ["Inside."])
    (root / "alias.pdf").symlink_to("a.pdf")
    (root / "out.pdf").symlink_to(outside)
    (root / "gone.pdf").symlink_to("nowhere.pdf")
    (root / "sub" / "up").symlink_to("..")
    (root / "elsewhere").symlink_to(tmp_path)
    scan = scan_paths([root])
    assert scan.files == (root / "a.pdf", root / "alias.pdf")
    reasons = _reasons(scan)
    assert set(reasons) == {str(root / n) for n in ("out.pdf", "gone.pdf", "sub/up", "elsewhere")}
    assert reasons[str(root / "out.pdf")] == f"symbolic link to a file outside the ingested folder: {outside}"
    assert reasons[str(root / "gone.pdf")].startswith("broken symbolic link")
    assert reasons[str(root / "sub" / "up")].startswith("symbolic link loop")
    assert reasons[str(root / "elsewhere")].startswith("symbolic link loop")  # an ancestor of the folder


def test_a_fifo_in_a_folder_is_skipped_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.pdf")
    scan = scan_paths([tmp_path])
    assert scan.files == () and _reasons(scan) == {str(tmp_path / "pipe.pdf"): "not a regular file (a FIFO, socket or device)"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its permissions")
def test_an_unreadable_folder_is_skipped_with_the_systems_reason(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.pdf").write_bytes(b"x")
    locked.chmod(0)
    try:
        scan = scan_paths([tmp_path])
    finally:
        locked.chmod(0o755)
    assert scan.files == () and _reasons(scan) == {str(locked): "cannot read the folder: Permission denied"}


def test_inspect_batch_lists_the_skipped_beside_the_read(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    g.text_pdf(root / "a.pdf", ["One page."])
    (root / "b.xyz").write_text("x")
    results = inspect_batch([root], IngestConfig(ocr="never", dpi=72))
    assert [(r.path.name, r.status) for r, _, _ in results] == [("b.xyz", "skipped"), ("a.pdf", "ok")]
    assert results[0][1] is None and results[0][2] == [] and results[0][0].reason.startswith("unsupported format .xyz")


def test_a_folder_the_system_refuses_to_list_is_skipped_and_the_walk_goes_on(tmp_path, monkeypatch):
    """The same rule where the tests run as root (which may list any folder): the refusal is simulated."""
    import ingest.batch

    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.pdf").write_bytes(b"x")
    g.text_pdf(tmp_path / "z.pdf", ["After the locked folder."])
    real = os.scandir

    def scandir(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(ingest.batch.os, "scandir", scandir)
    scan = scan_paths([tmp_path])
    assert scan.files == (tmp_path / "z.pdf",)
    assert _reasons(scan) == {str(locked): "cannot read the folder: Permission denied"}

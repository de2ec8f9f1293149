"""Every format end to end: Office (LibreOffice), HTML, Markdown, EPUB and a TIFF stack, made
here, ingested into one knowledge base; a search finds each file's distinctive word on the
right page or slide, and an answer's citation box lands on that word on the page image."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from rag import KnowledgeBase
from tests import _formats as fmt


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One knowledge base holding every format (LibreOffice takes seconds per file)."""
    fmt.soffice()
    folder = tmp_path_factory.mktemp("formats")
    files = fmt.make_all(folder)
    kb_dir = tmp_path_factory.mktemp("kb") / "kb"
    with KnowledgeBase.open(kb_dir, create=True) as kb:
        reports = kb.ingest(files, progress=False)
    return folder, kb_dir, reports


@pytest.fixture(scope="module")
def kb(built):
    with KnowledgeBase.open(built[1]) as kb:
        yield kb


def test_every_format_is_indexed_under_its_own_name_and_bytes(built, kb):
    from rag.ids import sha256_file

    folder, _, reports = built
    assert [r.status for r in reports] == ["indexed"] * len(reports), [(r.path.name, r.error) for r in reports]
    records = {r.name: r for r in kb.documents()}
    kinds = {n: records[Path(n).name].kind for n in fmt.WORDS}
    assert kinds == {"report.docx": "office", "deck.pptx": "office", "stock.xlsx": "office", "web/page.html": "markup",
                     "notes.md": "markup", "book.epub": "ebook", "stack.tif": "image"}
    for name in fmt.WORDS:  # the document id is the sha256 of the original file, not of a converted PDF
        assert records[Path(name).name].doc_id == sha256_file(folder / name)
    assert records["deck.pptx"].pages == 2 and records["stack.tif"].pages == 3


@pytest.mark.parametrize("name", list(fmt.WORDS))
def test_search_finds_the_word_on_its_page(kb, name):
    word, page, question = fmt.WORDS[name]
    hits = kb.search(question, top_k=3).hits
    holding = [h for h in hits if any(word.lower() in e.text.lower() for e in h.evidence)]
    assert holding and (holding[0].source, holding[0].page) == (Path(name).name, page), [(h.source, h.page) for h in hits]


def _word_box_on_page_image(kb: KnowledgeBase, citation, word: str):
    """The word's box in page coordinates, found by OCR of the stored page image (independent
    of the text layer the citation came from)."""
    from PIL import Image

    from ingest._ocr import ocr_array

    image = Image.open(citation.image_path).convert("RGB")
    size = kb.page_size(citation.doc_id, citation.page)
    scale = image.width / size[0] if size else 1.0
    for line in ocr_array(np.asarray(image)):
        if word.lower() in line.text.lower():
            return (line.x0 / scale, line.y0 / scale, line.x1 / scale, line.y1 / scale)
    pytest.fail(f"OCR of {citation.image_path} does not show {word!r}")


@pytest.mark.parametrize("name", ["report.docx", "deck.pptx", "web/page.html", "book.epub", "stack.tif"])
def test_a_citation_box_lands_on_the_word(kb, name):
    word, page, question = fmt.WORDS[name]
    answer = kb.ask(question, abstain=False)
    cited = [c for c in answer.citations if (c.source, c.page) == (Path(name).name, page)]
    assert cited, [(c.source, c.page) for c in answer.citations]
    citation = cited[0]
    assert citation.bbox is not None and citation.image_path is not None
    x0, y0, x1, y1 = _word_box_on_page_image(kb, citation, word)
    box = citation.bbox
    assert min(box.x1, x1) > max(box.x0, x0) and min(box.y1, y1) > max(box.y0, y0), (box, (x0, y0, x1, y1))


def test_an_html_image_outside_its_folder_is_not_read_and_the_page_says_so(built, kb):
    folder, _, _ = built
    record = next(r for r in kb.documents() if r.name == "page.html")
    hits = kb.search("secret.png not read outside the document's folder", top_k=3, documents=[record.doc_id]).hits
    assert hits and "outside the document's folder" in " ".join(e.text for e in hits[0].evidence)


def test_without_libreoffice_office_files_fail_clearly_and_the_rest_is_indexed(tmp_path, monkeypatch, caplog):
    files = [fmt.make_docx(tmp_path / "memo.docx"), fmt.make_markdown(tmp_path / "notes.md")]
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    with KnowledgeBase.open(tmp_path / "kb", create=True) as kb, caplog.at_level(logging.WARNING):
        reports = kb.ingest(files, progress=False)
    by_name = {r.path.name: r for r in reports}
    assert by_name["notes.md"].status == "indexed"
    failed = by_name["memo.docx"]
    assert failed.status == "failed" and failed.error_type == "MissingDependencyError"
    assert "libreoffice-writer-nogui" in failed.error and "apt-get install" in failed.error and "memo.docx" in failed.error


def test_an_unsupported_file_is_refused_with_the_list_of_formats(tmp_path):
    odd = tmp_path / "drawing.dwg"
    odd.write_bytes(b"AC1032\x00\x00\x00\x00binary drawing")
    with KnowledgeBase.open(tmp_path / "kb", create=True) as kb:
        (report,) = kb.ingest([odd], progress=False)
    assert report.status == "failed" and report.error_type == "UnsupportedFormatError"
    for named in ("PDF", "DOCX", "PPTX", "HTML", "Markdown", "EPUB", "TIFF", "GIF"):
        assert named in report.error


def test_markdown_and_epub_uploaded_over_http_are_indexed_and_listed_with_their_kind(tmp_path):
    import httpx

    from rag.server import create_app
    from tests._live_server import live_server, wait_job, wait_ready

    files = [fmt.make_markdown(tmp_path / "notes.md"), fmt.make_epub(tmp_path / "book.epub")]
    with KnowledgeBase.open(tmp_path / "kb", create=True) as kb, live_server(create_app(kb)) as url:
        with httpx.Client(base_url=url, timeout=120) as http:
            wait_ready(http)
            sent = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in files]
            r = http.post("/api/documents", files=sent)
            assert r.status_code == 202, r.text
            job = wait_job(http, r.json()["id"])
            assert [f["state"] for f in job["files"]] == ["indexed", "indexed"], job
            kinds = {d["name"]: d["kind"] for d in http.get("/api/documents").json()["documents"]}
            assert kinds == {"notes.md": "markup", "book.epub": "ebook"}
            hits = http.post("/api/search", json={"question": "When did the narwhal sail out of the fjord?"}).json()["hits"]
            assert ("book.epub", 1) in [(h["source"], h["page"]) for h in hits], hits

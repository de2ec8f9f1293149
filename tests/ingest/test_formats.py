"""Formats beyond PDF: detection by bytes, HTML/Markdown/text layout, e-books, image frames and
the LibreOffice converter's failures (the end-to-end runs are in tests/system/test_formats_end_to_end.py)."""

from __future__ import annotations

import logging
import tempfile
import zipfile
from pathlib import Path

import pytest

from ingest import identify_file, open_document
from ingest._files import SUPPORTED_SUFFIXES, sniff_format
from rag.config import IngestConfig
from rag.errors import CorruptDocumentError, MissingDependencyError, ResourceLimitError, UnsupportedFormatError
from tests import _formats as fmt

NO_OCR = IngestConfig(ocr="never")


def _pages(path: Path, config: IngestConfig = NO_OCR, image_dir: Path | None = None):
    with open_document(path, config, image_dir=image_dir) as reader:
        return reader.info, list(reader.pages(progress=False))


# ------------------------------------------------------------------------------ detection
@pytest.mark.parametrize(
    ("head", "suffix", "expected"),
    [
        (b"GIF89a\x01\x00", "", "gif"),
        (b"{\\rtf1\\ansi hello}", ".txt", "rtf"),  # the bytes win over the name
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, ".doc", "doc"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, ".ppt", "ppt"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, ".msi", None),  # OLE2 but not an Office name
        (b"\x00" * 60 + b"BOOKMOBI", ".bin", "mobi"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "", "svg"),
        (b'<?xml version="1.0"?><FictionBook xmlns="x">', ".fb2", "fb2"),
        (b"<html><body>hi</body></html>", ".html", "html"),
        (b"# Title\n\ntext", ".md", "markdown"),
        (b"just words", ".txt", "text"),
        (b"just words", ".dat", None),  # text, but no name that says how to lay it out
        (b"\x00\x01binary\x00", ".txt", None),  # named text, but the bytes are not
        (b"%PDF-1.7\n", ".html", "pdf"),
    ],
)
def test_formats_are_told_by_their_bytes_then_their_name(head, suffix, expected):
    assert sniff_format(head, suffix) == expected


@pytest.mark.parametrize(
    ("maker", "name", "expected"),
    [
        (fmt.make_docx, "a.docx", "docx"), (fmt.make_pptx, "a.pptx", "pptx"), (fmt.make_xlsx, "a.xlsx", "xlsx"),
        (fmt.make_epub, "a.epub", "epub"), (fmt.make_frames, "a.gif", "gif"),
    ],
)
def test_zip_containers_are_told_apart_by_their_members_not_their_name(tmp_path, maker, name, expected):
    made = maker(tmp_path / name)
    renamed = made.rename(tmp_path / "renamed.bin")  # the name says nothing
    assert identify_file(renamed, NO_OCR).format == expected


def test_odf_is_told_by_its_mimetype_member(tmp_path):
    path = tmp_path / "doc.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.presentation")
        z.writestr("content.xml", "<x/>")
    assert identify_file(path, NO_OCR).format == "odp"


def test_a_plain_zip_and_a_broken_docx_are_refused_with_reasons(tmp_path):
    plain = tmp_path / "photos.zip"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("a.txt", "hello")
    with pytest.raises(UnsupportedFormatError, match="supported: PDF.*DOCX.*EPUB"):
        identify_file(plain, NO_OCR)
    broken = tmp_path / "report.docx"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(CorruptDocumentError, match="ZIP container"):
        identify_file(broken, NO_OCR)


def test_every_new_format_is_a_supported_suffix():
    for suffix in (".docx", ".pptx", ".xlsx", ".odt", ".odp", ".ods", ".rtf", ".doc", ".ppt", ".html", ".htm",
                   ".md", ".markdown", ".txt", ".epub", ".xps", ".fb2", ".mobi", ".cbz", ".svg", ".gif"):
        assert suffix in SUPPORTED_SUFFIXES


# ------------------------------------------------------------------- HTML, Markdown, text
def test_html_keeps_its_text_and_its_own_image_but_never_reads_outside_its_folder(tmp_path, caplog):
    page = fmt.make_html(tmp_path)
    absolute = tmp_path / "web" / "abs.html"
    absolute.write_text(f'<p>absolute</p><img src="{tmp_path / "secret.png"}"><img src="http://example.com/x.png">')
    with caplog.at_level(logging.WARNING, logger="ingest"):
        info, pages = _pages(page, image_dir=tmp_path / "images")
        _, abs_pages = _pages(absolute)
    assert info.kind == "markup" and info.title == "Observatory manual" and info.name == "page.html"
    text = pages[0].page.text
    assert "heliostat mirror" in text and "Observatory manual" in text
    figures = [f for f in pages[0].figures if f.kind == "figure"]
    assert len(figures) == 1  # diagram.png; secret.png was not drawn
    assert "../secret.png not read: outside the document's folder" in text
    assert "not read: an absolute path" in abs_pages[0].page.text and "not read: a URL" in abs_pages[0].page.text
    assert not [f for f in abs_pages[0].figures if f.kind == "figure"]
    logged = caplog.text
    assert "'../secret.png' not read" in logged and "secret.png' not read: an absolute path" in logged
    # the page image shows the diagram (blue-free white/black) and no red secret
    from PIL import Image

    pixels = Image.open(pages[0].page.image_path).convert("RGB").getdata()
    assert not any(r > 200 and g < 60 and b < 60 for r, g, b in pixels)


def test_a_symlink_inside_the_folder_pointing_outside_is_refused(tmp_path):
    fmt.make_html(tmp_path)
    (tmp_path / "web" / "link.png").symlink_to(tmp_path / "secret.png")
    page = tmp_path / "web" / "linked.html"
    page.write_text('<p>linked</p><img src="link.png">')
    _, pages = _pages(page)
    assert "link.png not read: outside the document's folder" in pages[0].page.text
    assert not [f for f in pages[0].figures if f.kind == "figure"]


def test_markdown_becomes_headed_text_with_a_table(tmp_path):
    info, pages = _pages(fmt.make_markdown(tmp_path / "notes.md"))
    assert info.kind == "markup" and len(pages) == 1
    assert "Field notes" in pages[0].page.text and "print('fenced code')" in pages[0].page.text
    tables = [f for f in pages[0].figures if f.kind == "table"]
    assert tables and "quokka" in tables[0].text and "17" in tables[0].text


def test_long_plain_text_wraps_onto_several_pages_in_order(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("".join(f"line {i:04d} of a long log with a very long tail " * 3 + "\n" for i in range(400)))
    info, pages = _pages(path)
    assert info.page_count == len(pages) > 3
    assert "line 0000" in pages[0].page.text and "line 0399" in pages[-1].page.text
    assert all(p.page.width < 600 for p in pages)  # wrapped on A4, not one endless line


def test_markup_laid_out_past_max_pages_is_refused(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("a line\n" * 2000)
    with pytest.raises(ResourceLimitError, match="ingest.max_pages=2"):
        open_document(path, IngestConfig(ocr="never", max_pages=2))


# ------------------------------------------------------------------------------- e-books
def test_epub_is_read_with_its_title_and_text(tmp_path):
    info, pages = _pages(fmt.make_epub(tmp_path / "book.epub"))
    assert info.kind == "ebook" and info.title == "Tiny Book"
    assert "narwhal sailed" in pages[0].page.text and pages[0].blocks


def test_svg_is_read_natively(tmp_path):
    path = tmp_path / "sign.svg"
    path.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="100">'
                    '<text x="10" y="50" font-size="20">Platypus crossing</text></svg>')
    info, pages = _pages(path)
    assert info.kind == "ebook" and "Platypus crossing" in pages[0].page.text


def test_fb2_and_cbz_are_read_natively(tmp_path):
    fb2 = tmp_path / "tale.fb2"
    fb2.write_text('<?xml version="1.0" encoding="utf-8"?><FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0">'
                   "<body><section><p>The axolotl kept the lighthouse.</p></section></body></FictionBook>", encoding="utf-8")
    info, pages = _pages(fb2)
    assert info.kind == "ebook" and "axolotl kept the lighthouse" in pages[0].page.text
    cbz = tmp_path / "comic.cbz"
    with zipfile.ZipFile(cbz, "w") as z:
        for n in (1, 2):
            fmt.picture(tmp_path / f"p{n}.png", f"PANEL {n}")
            z.write(tmp_path / f"p{n}.png", f"{n:02d}.png")
    info, pages = _pages(cbz)
    assert (info.kind, info.page_count, len(pages)) == ("ebook", 2, 2)  # one page per panel image


# --------------------------------------------------------------------------- image frames
def test_every_frame_of_a_tiff_stack_is_a_page_with_its_own_text(tmp_path):
    path = fmt.make_frames(tmp_path / "stack.tif")
    info, pages = _pages(path, IngestConfig(), image_dir=tmp_path / "images")
    assert info.kind == "image" and info.page_count == 3
    assert [p.page.page for p in pages] == [1, 2, 3]
    assert ["ALPHA" in pages[0].page.text, "BRAVO" in pages[1].page.text, "CHARLIE" in pages[2].page.text] == [True] * 3
    assert len({p.page.image_path for p in pages}) == 3 and all(p.page.image_path.is_file() for p in pages)


def test_every_frame_of_an_animated_gif_is_a_page(tmp_path):
    from PIL import Image, ImageChops

    info, pages = _pages(fmt.make_frames(tmp_path / "anim.gif"), image_dir=tmp_path / "images")
    assert info.kind == "image" and [p.page.page for p in pages] == [1, 2, 3]
    first, last = (Image.open(p.page.image_path).convert("RGB") for p in (pages[0], pages[2]))
    assert ImageChops.difference(first, last).getbbox() is not None  # frame 3, not frame 1 again


def test_frames_past_max_pages_are_skipped_and_counted_in_the_log(tmp_path, caplog):
    path = fmt.make_frames(tmp_path / "stack.tif", words=("ONE", "TWO", "THREE", "FOUR", "FIVE"))
    with caplog.at_level(logging.WARNING, logger="ingest"):
        info, pages = _pages(path, IngestConfig(ocr="never", max_pages=2))
    assert info.page_count == len(pages) == 2
    assert "5 frames, above ingest.max_pages=2: frames 1-2 are read as pages, the other 3 are skipped" in caplog.text


# ------------------------------------------------------------------------------ LibreOffice
def test_without_libreoffice_an_office_file_names_the_debian_packages(tmp_path, monkeypatch):
    path = fmt.make_docx(tmp_path / "memo.docx")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(MissingDependencyError, match=r"LibreOffice.*memo\.docx.*apt-get install .*libreoffice-writer-nogui"):
        open_document(path, NO_OCR)


def test_a_broken_office_file_fails_naming_the_file_and_leaves_no_temporary_folder(tmp_path, monkeypatch):
    fmt.soffice()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    docx = tmp_path / "hollow.docx"
    with zipfile.ZipFile(docx, "w") as z:
        z.writestr("[Content_Types].xml", "not xml at all")
        z.writestr("word/document.xml", "<<<")
    with pytest.raises(CorruptDocumentError, match=r"hollow\.docx: LibreOffice could not convert it to PDF"):
        open_document(docx, NO_OCR)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_conversion_past_its_timeout_is_stopped_and_named(tmp_path, monkeypatch):
    fmt.soffice()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = fmt.make_docx(tmp_path / "slow.docx")
    with pytest.raises(ResourceLimitError, match=r"slow\.docx: LibreOffice did not finish .* ingest.convert_timeout_s=0.2 s"):
        open_document(path, IngestConfig(ocr="never", convert_timeout_s=0.2))
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_docx_keeps_its_table_and_picture_and_its_own_identity(tmp_path):
    fmt.soffice()
    path = fmt.make_docx(tmp_path / "report.docx")
    info, pages = _pages(path)
    assert (info.kind, info.name, info.path, info.page_count) == ("office", "report.docx", path, 1)
    assert "zebracorn" in pages[0].page.text
    kinds = sorted(f.kind for f in pages[0].figures)
    assert kinds == ["figure", "table"], pages[0].figures
    table = next(f for f in pages[0].figures if f.kind == "table")
    assert "4200" in table.text and "South" in table.text

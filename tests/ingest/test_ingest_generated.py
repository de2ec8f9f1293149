"""The ingest stage on generated documents: what a user sees in the extracted pages."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

import _pdfgen as g
from ingest import identify_file, inspect_batch, inspect_json, inspect_summary, iter_files, make_samples, open_document
from rag.config import IngestConfig
from rag.ids import sha256_file
from rag.errors import (
    CorruptDocumentError,
    DocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    ResourceLimitError,
    UnreadableFileError,
    UnsupportedFormatError,
)

NO_OCR = IngestConfig(ocr="never")
TABLE_ROWS = (("Branch", "Opens", "Closes"), ("Harbour", "08:30", "17:00"), ("Hillside", "10:15", "19:45"))


@pytest.fixture(scope="module")
def figure_pdf(tmp_path_factory) -> Path:
    """Page 1: a vector chart with caption; page 2: a ruled table with caption and a raster picture."""
    doc = pymupdf.open()
    p1 = doc.new_page()
    p1.insert_textbox(pymupdf.Rect(60, 50, 550, 120), g.LOREM, fontsize=10)
    g.chart_page(p1, 150, 200)
    p1.insert_textbox(pymupdf.Rect(60, 450, 550, 560), "Rainfall was highest in the fourth quarter. " + g.LOREM, fontsize=10)
    p2 = doc.new_page()
    g.table_page(p2, 80, 100, TABLE_ROWS)
    g.raster_page(p2, pymupdf.Rect(80, 300, 280, 420))
    p2.insert_textbox(pymupdf.Rect(60, 500, 550, 600), g.LOREM, fontsize=10)
    return g.save(doc, tmp_path_factory.mktemp("fig") / "figures.pdf")


@pytest.fixture(scope="module")
def figure_read(figure_pdf):
    """figure_pdf read once in inspect mode without OCR: (info, pages)."""
    return _read(figure_pdf)


def _read(path, config=NO_OCR, image_dir=None):
    with open_document(path, config, image_dir) as reader:
        return reader.info, list(reader.pages(progress=False))


def test_vector_chart_found_with_caption_and_axis_labels(figure_read):
    _, pages = figure_read
    figs = [f for f in pages[0].figures if f.kind == "figure"]
    assert len(figs) == 1
    fig = figs[0]
    assert fig.source == "vector"
    assert fig.caption == "Figure 1: Rainfall per quarter in millimetres."
    assert {"Q1", "Q4", "Quarter"} <= set(fig.text.split())
    assert fig.bbox.x0 <= 150 and fig.bbox.y0 <= 200 and fig.bbox.x1 >= 390 and fig.bbox.y1 >= 340
    assert fig.caption_bbox is not None and fig.caption_bbox.y0 >= fig.bbox.y1 - 1
    # the caption stays searchable in the page text and in a chunk
    assert "Figure 1: Rainfall per quarter" in pages[0].page.text
    assert any("Figure 1: Rainfall" in c.text for c in pages[0].chunks)


def test_rules_and_empty_frames_are_not_figures(tmp_path):
    # the Libtasn1 manual's title page: a 4 pt bar under the title; the Shared MIME-info spec:
    # tables whose cells were lost, left as outlines of thin lines under a sentence
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((90, 230), "Libtasn1", fontsize=24)
    page.draw_rect(pymupdf.Rect(90, 234, 522, 238), color=None, fill=(0, 0, 0))
    page.insert_text((130, 330), "Each match element has a number of attributes:", fontsize=10)
    shape = page.new_shape()
    for a, b in (((130, 340), (540, 340)), ((130, 400), (540, 400)), ((130, 340), (130, 370)),
                 ((130, 370), (130, 400)), ((540, 340), (540, 370)), ((540, 370), (540, 400))):
        shape.draw_line(a, b)
        shape.finish(color=(0, 0, 0), width=0.4)  # one path per segment, as the spec's PDF draws them
    shape.commit()
    g.chart_page(page, 150, 480)
    _, pages = _read(g.save(doc, tmp_path / "decor.pdf"))
    (fig,) = pages[0].figures  # the chart alone
    assert fig.bbox.y0 > 450 and fig.caption == "Figure 1: Rainfall per quarter in millimetres."


def test_table_found_as_markdown_with_caption_above(figure_read):
    _, pages = figure_read
    tables = [f for f in pages[1].figures if f.kind == "table"]
    assert len(tables) == 1
    tab = tables[0]
    assert tab.source == "table" and tab.caption == "Table 1: Opening hours of the branches."
    assert "|Hillside|10:15|19:45|" in tab.text.replace(" ", "")
    assert tab.bbox.x0 == pytest.approx(80, abs=5) and tab.bbox.y1 == pytest.approx(160, abs=8)


def test_raster_picture_found_with_fig_caption(figure_read):
    _, pages = figure_read
    rasters = [f for f in pages[1].figures if f.source == "raster"]
    assert len(rasters) == 1
    assert rasters[0].caption == "Fig. 2. A gradient photograph."
    assert rasters[0].bbox.as_list() == [80, 300, 280, 420]


def test_image_dir_gets_page_images_and_crops_inspect_mode_writes_nothing(figure_pdf, tmp_path):
    out = tmp_path / "images"
    info, pages = _read(figure_pdf, image_dir=out)
    folder = out / info.doc_id
    assert pages[0].page.image_path == folder / "page-0001.jpg"
    assert pages[0].page.dpi == 110
    from PIL import Image

    with Image.open(pages[0].page.image_path) as im:
        assert im.format == "JPEG"
        assert im.size[0] == pytest.approx(595 * 110 / 72, abs=1) and im.size[1] == pytest.approx(842 * 110 / 72, abs=1)
    crops = [f.image_path for p in pages for f in p.figures]
    assert len(crops) == 3 and all(p is not None and p.exists() and p.parent == folder for p in crops)
    assert {p.name for p in crops} == {"p0001-fig01.jpg", "p0002-tab01.jpg", "p0002-fig01.jpg"}

    for fmt, suffix, pil_format in (("png", ".png", "PNG"), ("webp", ".webp", "WEBP")):
        with open_document(figure_pdf, IngestConfig(ocr="never", image_format=fmt), tmp_path / fmt) as reader:
            content = reader.page(2)
        assert content.page.image_path.suffix == suffix
        assert all(f.image_path.suffix == suffix for f in content.figures)
        with Image.open(content.page.image_path) as im:
            assert im.format == pil_format

    before = set(os.listdir(tmp_path))
    _, pages = _read(figure_pdf)
    assert set(os.listdir(tmp_path)) == before  # inspect mode wrote nothing
    assert all(p.page.image_path is None and all(f.image_path is None for f in p.figures) for p in pages)
    assert sum(len(p.figures) for p in pages) == 3


def test_two_column_text_in_reading_order(tmp_path):
    _, pages = _read(g.two_column_pdf(tmp_path / "cols.pdf"))
    text = pages[0].page.text
    positions = [text.index(m) for m in ("A Study of Two Columns", "L1 marker", "L2 marker", "L3 marker", "R1 marker", "R2 marker", "R3 marker")]
    assert positions == sorted(positions)
    assert [b.index for b in pages[0].blocks] == list(range(len(pages[0].blocks)))


def test_chunks_stay_on_their_page_and_keep_boxes(tmp_path):
    path = g.text_pdf(tmp_path / "t.pdf", [f"PAGE{i} " + g.LOREM * 4 for i in range(1, 4)])
    _, pages = _read(path, IngestConfig(ocr="never", chunk_chars=400, chunk_overlap_chars=80))
    assert [p.page.page for p in pages] == [1, 2, 3]
    for p in pages:
        assert len(p.chunks) >= 3
        for c in p.chunks:
            assert c.page == p.page.page and len(c.text) <= 400
            assert f"PAGE{p.page.page % 3 + 1}" not in c.text
            assert 60 <= c.bbox.x0 and c.bbox.x1 <= 552 and c.block_bboxes


def test_page_labels_are_kept_beside_physical_pages(tmp_path):
    doc = pymupdf.open()
    for i in range(3):
        doc.new_page().insert_text((72, 72), f"Preface page {i}: " + g.LOREM[:80])
    doc.set_page_labels([{"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1}])
    path = g.save(doc, tmp_path / "labels.pdf")
    _, pages = _read(path)
    assert [(p.page.page, p.page.label) for p in pages] == [(1, "i"), (2, "ii"), (3, "iii")]
    _, plain = _read(g.text_pdf(tmp_path / "plain.pdf", ["hello world " * 10]))
    assert plain[0].page.label is None


@pytest.fixture(scope="module")
def labelled_pdf(tmp_path_factory) -> Path:
    """Five pages: front matter i, ii, then the body numbered 1, 2, 3."""
    doc = pymupdf.open()
    for i in range(5):
        doc.new_page().insert_text((72, 72), f"Physical page {i + 1}: " + g.LOREM[:80])
    doc.set_page_labels([
        {"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
        {"startpage": 2, "prefix": "", "style": "D", "firstpagenum": 1},
    ])
    return g.save(doc, tmp_path_factory.mktemp("labels") / "labelled.pdf")


def _range(path: Path, page_range) -> list[tuple[int, str | None, bool]]:
    with open_document(path, NO_OCR) as reader:
        return [
            (c.page.page, c.page.label, f"Physical page {c.page.page}:" in c.page.text)
            for c in reader.pages(progress=False, page_range=page_range)
        ]


def test_a_page_range_reads_those_physical_pages_with_their_labels(labelled_pdf):
    assert _range(labelled_pdf, (2, 3)) == [(2, "ii", True), (3, "1", True)]
    assert _range(labelled_pdf, (4, 4)) == [(4, "2", True)]
    assert [p for p, _, _ in _range(labelled_pdf, None)] == [1, 2, 3, 4, 5]


def test_a_page_range_is_clipped_to_the_document(labelled_pdf):
    assert [p for p, _, _ in _range(labelled_pdf, (4, 99))] == [4, 5]
    assert [p for p, _, _ in _range(labelled_pdf, (-3, 2))] == [1, 2]
    assert _range(labelled_pdf, (6, 9)) == []  # past the last page: nothing, no error
    assert _range(labelled_pdf, (3, 2)) == []


def test_a_page_range_of_an_image_is_its_one_page(tmp_path):
    path = tmp_path / "shot.png"
    path.write_bytes(g.png_bytes())
    with open_document(path, NO_OCR) as reader:
        assert [c.page.page for c in reader.pages(progress=False, page_range=(1, 5))] == [1]
        assert list(reader.pages(progress=False, page_range=(2, 5))) == []


def test_scanned_page_is_ocrd_in_auto_mode_and_left_empty_with_never(tmp_path):
    path = g.scanned_pdf(tmp_path / "scan.pdf")
    _, pages = _read(path, IngestConfig())
    page = pages[0].page
    assert page.ocr is True and "4471" in page.text and "INVOICE" in page.text.upper()
    block = pages[0].blocks[0]
    assert block.ocr and 0 <= block.bbox.x0 < block.bbox.x1 <= 320 and block.bbox.y1 <= 120  # points, not pixels
    _, pages = _read(path, NO_OCR)
    assert pages[0].page.ocr is False and pages[0].page.text == ""


# items whose second line is short: on a slanted scan the upright box of a long line spans the
# short line under it, and grouping lines by those boxes read "... tank at clean water. three bar."
_SLANTED = [
    "- The pump starts on its own every morning and fills the upper tank at",
    "  seven o'clock.",
    "- The float valve closes the inlet as soon as the upper tank is full of",
    "  clean water.",
    "- The pressure switch stops the motor when the outlet pressure reaches",
    "  three bar.",
]
_SLANTED_TEXT = ("- The pump starts on its own every morning and fills the upper tank at seven o'clock. "
                 "- The float valve closes the inlet as soon as the upper tank is full of clean water. "
                 "- The pressure switch stops the motor when the outlet pressure reaches three bar.")


@pytest.mark.parametrize("kind,degrees", [("pdf", 3.0), ("png", -3.0)])
def test_a_slanted_scan_reads_line_after_line(tmp_path, kind, degrees):
    if kind == "pdf":
        path = g.skewed_scan_pdf(tmp_path / "slanted.pdf", _SLANTED, degrees)
    else:
        path = tmp_path / "slanted.png"
        path.write_bytes(g.skewed_scan_png(_SLANTED, degrees))
    _, pages = _read(path, IngestConfig())
    assert pages[0].page.ocr is True
    assert " ".join(pages[0].page.text.split()) == _SLANTED_TEXT


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("TIFF", ".tif")])
def test_images_are_one_page_documents(tmp_path, fmt, suffix):
    path = tmp_path / f"shot{suffix}"
    path.write_bytes(g.png_bytes(300, 80, fmt=fmt))
    info, pages = _read(path, NO_OCR)
    assert info.kind == "image" and info.page_count == 1
    assert (pages[0].page.width, pages[0].page.height) == (300, 80)
    (fig,) = pages[0].figures
    assert fig.source == "image" and fig.bbox.as_list() == [0, 0, 300, 80]


def test_image_with_wrong_extension_is_detected_by_content_and_ocrd(tmp_path):
    path = tmp_path / "scan.pdf"  # a PNG wearing a .pdf name
    path.write_bytes(g.png_bytes(260, 60, text="GATE 42 OPEN"))
    info, pages = _read(path, IngestConfig(), image_dir=tmp_path / "img")
    assert info.kind == "image"
    assert pages[0].page.ocr and "GATE" in pages[0].page.text and "42" in pages[0].page.text
    assert pages[0].figures[0].text == pages[0].page.text
    assert pages[0].page.image_path.exists()


def test_raster_figure_text_is_ocrd(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), g.LOREM[:90])
    page.insert_image(pymupdf.Rect(100, 200, 400, 270), stream=g.png_bytes(260, 60, text="VALVE 7 CLOSED"))
    _, pages = _read(g.save(doc, tmp_path / "rfig.pdf"), IngestConfig())
    (fig,) = pages[0].figures
    assert fig.source == "raster" and "VALVE" in fig.text
    assert pages[0].page.ocr is False


# -- bad input ---------------------------------------------------------------------------


def _raises(exc_type, path, config=NO_OCR):
    with pytest.raises(exc_type) as err:
        _read(path, config)
    assert str(path) in str(err.value) and err.value.path == Path(path)
    return err.value


def test_bad_inputs_raise_typed_errors_naming_the_file(tmp_path):
    _raises(UnreadableFileError, tmp_path / "missing.pdf")
    _raises(UnreadableFileError, tmp_path)
    loop = tmp_path / "loop.pdf"
    loop.symlink_to(loop)
    _raises(UnreadableFileError, loop)
    (tmp_path / "notes.dat").write_text("just some text, not a document")  # .txt is read as plain text
    e = _raises(UnsupportedFormatError, tmp_path / "notes.dat")
    assert "not a PDF" in e.reason
    (tmp_path / "fake.pdf").write_bytes(b"PK\x03\x04 this is a zip")
    _raises(UnsupportedFormatError, tmp_path / "fake.pdf")
    good = g.text_pdf(tmp_path / "good.pdf", [g.LOREM * 3] * 20)
    data = good.read_bytes()
    (tmp_path / "truncated.pdf").write_bytes(data[: len(data) // 3])
    _raises(CorruptDocumentError, tmp_path / "truncated.pdf")
    (tmp_path / "broken.png").write_bytes(g.png_bytes()[:60])
    _raises(CorruptDocumentError, tmp_path / "broken.png")
    (tmp_path / "zero.pdf").write_bytes(g.zero_page_pdf_bytes())
    _raises(EmptyDocumentError, tmp_path / "zero.pdf")
    (tmp_path / "empty.pdf").write_bytes(b"")
    _raises(EmptyDocumentError, tmp_path / "empty.pdf")


def test_encrypted_pdf_needs_the_right_password(tmp_path):
    path = g.encrypted_pdf(tmp_path / "locked.pdf", "s3cret")
    assert "ingest.password" in _raises(EncryptedDocumentError, path).reason
    assert "wrong" in _raises(EncryptedDocumentError, path, IngestConfig(ocr="never", password="nope")).reason
    _, pages = _read(path, IngestConfig(ocr="never", password="s3cret"))
    assert "board meeting" in pages[0].page.text


def test_resource_limits(tmp_path):
    path = g.text_pdf(tmp_path / "three.pdf", ["one " * 20, "two " * 20, "three " * 20])
    assert "max_pages" in _raises(ResourceLimitError, path, IngestConfig(ocr="never", max_pages=2)).reason
    assert "max_file_bytes" in _raises(ResourceLimitError, path, IngestConfig(ocr="never", max_file_bytes=100)).reason
    img = tmp_path / "big.png"
    img.write_bytes(g.png_bytes(400, 300))
    _raises(ResourceLimitError, img, IngestConfig(ocr="never", max_image_pixels=100_000))


def test_a_page_too_large_for_max_page_pixels_is_rendered_smaller_not_refused(tmp_path):
    """A fold-out drawing among letter pages: its image fits the pixel limit at a lower dpi,
    its text and figure are read as on any page, and the other pages keep the configured dpi."""
    doc = pymupdf.open()
    doc.new_page(width=612, height=792).insert_text((72, 72), "Assembly instructions, page one.")
    poster = doc.new_page(width=2400, height=1700)  # 33 x 24 inches: 9.9 Mpx at 110 dpi
    poster.insert_text((100, 100), "Exploded view of the gearbox, part numbers 1 to 40.", fontsize=24)
    g.chart_page(poster, 200, 300)
    path = g.save(doc, tmp_path / "foldout.pdf")
    config = IngestConfig(ocr="never", dpi=110, max_page_pixels=4_000_000)
    _, pages = _read(path, config, image_dir=tmp_path / "img")
    letter, big = pages[0].page, pages[1].page
    assert letter.dpi == 110 and big.dpi is not None and big.dpi < 110
    assert "gearbox" in big.text and pages[1].figures
    with Image.open(big.image_path) as im:
        assert im.width * im.height <= 4_000_000
        assert abs(im.width / big.width - big.dpi / 72) < 0.01  # boxes map to pixels by the page's own dpi
    crop = pages[1].figures[0].image_path
    with Image.open(crop) as im:
        assert im.width <= pages[1].figures[0].bbox.width * big.dpi / 72 + 2


def test_decompression_bomb_image_is_a_resource_limit_error(tmp_path):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # header claims 30000 x 30000 pixels (900 MP); Pillow refuses it while opening
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(png)
    _raises(ResourceLimitError, path, IngestConfig(ocr="never", max_page_pixels=2_000_000_000))


# -- batches and identity ----------------------------------------------------------------


def test_a_files_identity_is_its_format_size_and_the_sha256_doc_id(tmp_path, figure_pdf):
    identity = identify_file(figure_pdf, NO_OCR)
    assert identity.path == figure_pdf and identity.format == "pdf"
    assert identity.size == figure_pdf.stat().st_size
    assert identity.sha256 == sha256_file(figure_pdf)  # the doc id of every existing knowledge base
    with open_document(figure_pdf, NO_OCR) as reader:
        assert reader.info.doc_id == identity.sha256 and reader.info.size_bytes == identity.size
    png = tmp_path / "named.pdf"
    png.write_bytes(g.png_bytes())
    assert identify_file(png, NO_OCR).format == "png"  # sniffed from the bytes, not the name


@pytest.mark.parametrize(
    ("make", "error", "reason"),
    [
        (lambda p: p.mkdir(), UnreadableFileError, "is a directory"),
        (lambda p: None, UnreadableFileError, "no such file"),
        (lambda p: p.write_bytes(b""), EmptyDocumentError, "file is empty"),
        (lambda p: p.write_bytes(b"plain text, not a document"), UnsupportedFormatError, "not a PDF"),
        (lambda p: p.write_bytes(b"%PDF-1.7" + b"x" * 2000), ResourceLimitError, "ingest.max_file_bytes=1,000"),
    ],
)
def test_a_file_that_cannot_be_identified_says_why(tmp_path, make, error, reason):
    path = tmp_path / "input.pdf"
    make(path)
    with pytest.raises(error, match=reason) as err:
        identify_file(path, IngestConfig(max_file_bytes=1000))
    assert err.value.path == path


class _HashSpy:
    """Counts the sha256 digests made in this process that equal ``target`` (a full hash of the file)."""

    def __init__(self, monkeypatch, target: str) -> None:
        self.target, self.count = target, 0
        real = hashlib.sha256
        spy = self

        class Wrapped:
            def __init__(self, *args, **kwargs):
                self._h = real(*args, **kwargs)

            def update(self, data):
                self._h.update(data)

            def hexdigest(self):
                out = self._h.hexdigest()
                spy.count += out == spy.target
                return out

            def digest(self):
                spy.count += self._h.hexdigest() == spy.target
                return self._h.digest()

        monkeypatch.setattr(hashlib, "sha256", Wrapped)


def test_the_reader_hashes_a_file_once_and_not_again_when_given_its_identity(monkeypatch, figure_pdf):
    spy = _HashSpy(monkeypatch, sha256_file(figure_pdf))
    with open_document(figure_pdf, NO_OCR) as reader:
        list(reader.pages(progress=False))
    assert spy.count == 1
    identity = identify_file(figure_pdf, NO_OCR)
    assert spy.count == 2
    with open_document(figure_pdf, NO_OCR, identity=identity) as reader:
        assert reader.info.doc_id == identity.sha256
        list(reader.pages(progress=False))
    assert spy.count == 2  # the identity was reused: no second read for hashing
    with pytest.raises(ValueError, match="not of"):
        open_document(figure_pdf.with_name("other.pdf"), NO_OCR, identity=identity)


def test_same_bytes_under_two_names_have_one_doc_id(tmp_path, figure_pdf):
    copy = tmp_path / "renamed copy.pdf"
    shutil.copyfile(figure_pdf, copy)
    with open_document(figure_pdf, NO_OCR) as a, open_document(copy, NO_OCR) as b:
        assert a.info.doc_id == b.info.doc_id and a.info.name != b.info.name
        assert len(a.info.doc_id) == 64


def test_iter_files_expands_folders_and_keeps_explicit_files(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for name in ("b.pdf", "a.PNG", "sub/c.jpg", "notes.log", ".secret.pdf", ".hidden/d.pdf"):
        (root / name).write_bytes(b"x")
    explicit = tmp_path / "odd.txt"
    explicit.write_text("x")
    got = list(iter_files([root, explicit]))
    assert got == [root / "a.PNG", root / "b.pdf", root / "sub" / "c.jpg", explicit]


def test_batch_goes_on_after_a_failure_and_reports_each_file(tmp_path, figure_pdf):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(figure_pdf, folder / "a_good.pdf")
    (folder / "b_bad.pdf").write_bytes(b"%PDF-1.4 garbage garbage")
    (folder / "c_img.png").write_bytes(g.png_bytes())
    results = inspect_batch([folder, tmp_path / "gone.pdf"], NO_OCR)
    summary = [(r.path.name, r.status, r.error_type) for r, _, _ in results]
    assert summary == [
        ("a_good.pdf", "ok", None),
        ("b_bad.pdf", "failed", "CorruptDocumentError"),
        ("c_img.png", "ok", None),
        ("gone.pdf", "failed", "UnreadableFileError"),
    ]
    report, info, pages = results[0]
    assert report.pages == 2 and info is not None and len(pages) == 2
    assert "b_bad.pdf" in results[1][0].error and results[1][1] is None


def test_inspect_json_and_summary(figure_read):
    info, pages = figure_read
    data = json.loads(json.dumps(inspect_json(info, pages)))
    assert set(data) == {"doc_id", "path", "name", "kind", "title", "pages"}
    assert data["kind"] == "pdf" and [p["page"] for p in data["pages"]] == [1, 2]
    p1 = data["pages"][0]
    assert set(p1) == {"page", "label", "width", "height", "text_chars", "ocr", "figures", "chunks", "notes"}
    assert p1["notes"] == []  # nothing refused or skipped on an ordinary page
    assert all(set(c) == {"index", "section", "chars"} for c in p1["chunks"]) and p1["chunks"]
    assert p1["figures"][0]["kind"] == "figure" and p1["figures"][0]["caption"].startswith("Figure 1:")
    assert len(p1["figures"][0]["bbox"]) == 4 and p1["text_chars"] == len(pages[0].page.text)
    text = inspect_summary(info, pages)
    assert "figures.pdf" in text and "Table 1: Opening hours" in text and "page 2" in text


def test_errors_share_the_document_error_root(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(DocumentError):
        open_document(tmp_path / "x.bin")


def test_samples_are_deterministic_and_answerable(tmp_path):
    first = make_samples(tmp_path / "a")
    second = make_samples(tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    manual, shot = first
    info, pages = _read(manual, IngestConfig(ocr_figures=False, ocr_dpi=100))  # page OCR only, lower dpi: keeps the test quick
    assert info.page_count == 4 and info.title == "Solar Panel Maintenance Manual" and info.author == "mmrag"
    assert "Inspect the inverter every 6 months" in pages[0].page.text
    kinds = {(f.kind, f.source, (f.caption or "")[:8]) for p in pages for f in p.figures}
    assert {("figure", "vector", "Figure 1"), ("table", "table", "Table 1:"), ("figure", "raster", "Figure 2")} <= kinds
    table = next(f for p in pages for f in p.figures if f.kind == "table")
    assert "E07" in table.text and "Ground fault" in table.text
    chart = next(f for f in pages[1].figures if f.source == "vector")
    assert {"Jul", "kWh"} <= set(chart.text.split())
    assert pages[3].page.ocr and "12 Nm" in pages[3].page.text
    assert not any(p.page.ocr for p in pages[:3])
    info, pages = _read(shot, IngestConfig())
    assert info.kind == "image" and "18.4 kWh" in pages[0].page.text


def test_progress_bar_is_a_parameter_and_one_summary_line_is_logged(tmp_path, capsys, caplog):
    import logging

    path = g.text_pdf(tmp_path / "p.pdf", ["alpha " * 30, "beta " * 30, "gamma " * 30])
    with open_document(path, NO_OCR) as reader:
        list(reader.pages(progress=False))
    assert "page" not in capsys.readouterr().err
    with caplog.at_level(logging.INFO, logger="ingest"), open_document(path, NO_OCR) as reader:
        list(reader.pages(progress=True))
    assert "p.pdf:" in capsys.readouterr().err  # the tqdm bar, named after the file
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ingested")]
    assert "p.pdf: 3 pages (0 OCR)" in line


def test_a_long_read_gives_the_c_heap_back_every_32_pages(tmp_path, monkeypatch):
    """Pages are built in the reading thread and freed in the embedding thread; glibc keeps such
    memory in per-thread arenas until trimmed, so a long document's process grew with its length."""
    import sys

    from ingest import _heap

    trims: list[bool] = []
    real = _heap.trim
    monkeypatch.setattr(_heap, "trim", lambda: trims.append(real()))
    path = g.text_pdf(tmp_path / "long.pdf", [f"Page {i + 1}. {g.LOREM}" for i in range(70)])
    with open_document(path, IngestConfig(ocr="never")) as reader:
        assert [c.page.page for c in reader.pages(progress=False)] == list(range(1, 71))
    assert len(trims) == 2  # after pages 32 and 64
    if sys.platform.startswith("linux"):
        assert all(trims)  # glibc's malloc_trim was found and called


def test_a_metadata_value_that_is_an_object_reference_is_no_name(tmp_path):
    """A PDF written by a Perl program gave its author as 'ARRAY(0x2c7cf020)': not a name a
    reader would call the document by."""
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "A page of text.")
    doc.set_metadata({"title": "Pump manual", "author": "ARRAY(0x2c7cf020)"})
    doc.save(tmp_path / "perl.pdf")
    info, _ = _read(tmp_path / "perl.pdf", IngestConfig(ocr="never"))
    assert (info.title, info.author) == ("Pump manual", None)

"""A real time bound per page and image guards at the decoder (issue 21): hostile pages built
here with PyMuPDF finish within ``page_timeout_s`` plus a constant, images whose own stream
headers exceed ``max_image_pixels`` are left out (and said), and valid input is not refused."""

from __future__ import annotations

import random
import resource
import struct
import time
import zlib
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from ingest import open_document
from ingest._budget import PageClock, Timeout, measure_page, run_killable
from ingest._guards import codestream_size, jpeg_size
from ingest._render import fit_dpi
from rag.config import IngestConfig
from rag.errors import DocumentError, ResourceLimitError

SLACK = 10.0  # seconds a page may take beyond page_timeout_s: measuring, forking, the bits before the bound (2 busy cores)


def _append(doc: pymupdf.Document, page: pymupdf.Page, content: bytes) -> None:
    xref = page.get_contents()[0]
    doc.update_stream(xref, doc.xref_stream(xref) + b"\n" + content)


def _text_page(doc: pymupdf.Document, line: str = "The readable line beside the hostile content.") -> pymupdf.Page:
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 60), line, fontsize=11)  # also gives the page the font /helv
    return page


def _spans_pdf(path: Path, n: int, seed: int = 1) -> Path:
    """One page of ``n`` one-letter spans at random places (what kept the table finder busy for minutes)."""
    doc = pymupdf.open()
    page = _text_page(doc)
    rnd = random.Random(seed)
    ops = "\n".join(f"1 0 0 1 {rnd.uniform(0, 600):.2f} {rnd.uniform(0, 700):.2f} Tm (a) Tj" for _ in range(n))
    _append(doc, page, f"BT /helv 3 Tf\n{ops}\nET".encode())
    doc.save(path, deflate=True)
    return path


def _resource(doc: pymupdf.Document, page: pymupdf.Page, kind: str, name: str, xref: int) -> None:
    """Add ``/kind/name xref 0 R`` to the page's (indirect) resource dictionary."""
    resources = int(doc.xref_get_key(page.xref, "Resources")[1].split()[0])
    doc.xref_set_key(resources, f"{kind}/{name}", f"{xref} 0 R")


def _read(path: Path, config: IngestConfig, image_dir: Path | None = None) -> tuple[list, float]:
    started = time.perf_counter()
    with open_document(path, config, image_dir=image_dir) as reader:
        pages = list(reader.pages(progress=False))
    return pages, time.perf_counter() - started


# -- the time bound ------------------------------------------------------------------------------


def test_a_page_of_many_tiny_spans_finishes_within_the_page_timeout(tmp_path):
    path = _spans_pdf(tmp_path / "spans.pdf", 12_000)
    config = IngestConfig(ocr="never", page_timeout_s=3)
    pages, seconds = _read(path, config, tmp_path / "img")
    assert seconds < config.page_timeout_s + SLACK
    page = pages[0].page
    assert "readable line" in page.text  # the bounded read keeps the page's text
    assert any("too heavy for layout analysis" in n and "text ops" in n for n in page.notes), page.notes
    assert page.image_path is not None and page.image_path.exists()


def test_table_detection_that_blows_up_is_stopped_at_the_deadline(tmp_path):
    """600 spans are far below every cap, yet the table finder runs for tens of seconds on them."""
    path = _spans_pdf(tmp_path / "scatter.pdf", 600)
    config = IngestConfig(ocr="never", page_timeout_s=2)
    pages, seconds = _read(path, config)
    assert seconds < config.page_timeout_s + SLACK
    assert any("table detection skipped, stopped by ingest.page_timeout_s=2" in n for n in pages[0].page.notes), pages[0].page.notes
    assert "readable line" in pages[0].page.text


def test_tens_of_thousands_of_drawing_operators_make_a_page_heavy(tmp_path):
    doc = pymupdf.open()
    page = _text_page(doc)
    ops = "\n".join(f"{(i * 7) % 600} {(i * 13) % 700} 0.5 0.5 re f" for i in range(40_000))
    _append(doc, page, f"q 0 0 1 rg\n{ops}\nQ".encode())
    path = tmp_path / "drawn.pdf"
    doc.save(path, deflate=True)
    load = measure_page(pymupdf.open(path), 0)
    assert load.heavy and load.draw_ops >= 80_000
    pages, seconds = _read(path, IngestConfig(ocr="never", page_timeout_s=3))
    assert seconds < 3 + SLACK
    assert "readable line" in pages[0].page.text and not pages[0].figures


def test_nested_forms_count_as_often_as_they_are_drawn(tmp_path):
    """Three forms, each drawing the next 60 times: 216,000 text operators run from 62 in the file."""
    doc = pymupdf.open()
    page = _text_page(doc)
    inner = doc.get_new_xref()
    doc.update_object(inner, "<</Type/XObject/Subtype/Form/BBox[0 0 10 10]/Resources<</Font<</F 0 0 R>>>>>>")
    font = doc.xref_get_key(page.xref, "Resources/Font/helv")[1]
    doc.xref_set_key(inner, "Resources/Font/F", font)
    doc.update_stream(inner, b"BT /F 1 Tf (x) Tj ET")
    below = inner
    for level in range(2):
        form = doc.get_new_xref()
        doc.update_object(form, f"<</Type/XObject/Subtype/Form/BBox[0 0 10 10]/Resources<</XObject<</X {below} 0 R>>>>>>")
        doc.update_stream(form, b" ".join([b"/X Do"] * 60))
        below = form
    _resource(doc, page, "XObject", "Top", below)
    _append(doc, page, b" ".join([b"q /Top Do Q"] * 60))
    load = measure_page(doc, 0)
    assert load.text_ops >= 60 ** 3 and load.heavy, load


def test_run_killable_returns_results_and_kills_at_the_deadline():
    assert run_killable(lambda: {"answer": 42}, 5) == {"answer": 42}
    started = time.perf_counter()
    with pytest.raises(Timeout):
        run_killable(lambda: time.sleep(30), 0.5)
    assert time.perf_counter() - started < 3
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        run_killable(lambda: 1 / 0, 5)


def _burn(seconds: float) -> int:
    """Spin the CPU for ``seconds`` of this process's CPU time."""
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:
        n += 1
    return n


def test_the_page_budget_counts_cpu_so_waiting_for_a_busy_core_does_not_cut_the_page():
    # a child that waits (as one does on a machine whose cores other work holds) spends no CPU:
    # it finishes although its wall time is five times the CPU budget
    assert run_killable(lambda: (time.sleep(1.0), 7)[1], 0.2, wall=10) == 7
    # one that computes past the budget is stopped at it, and says it was CPU
    started = time.perf_counter()
    with pytest.raises(Timeout, match="CPU"):
        run_killable(lambda: _burn(30), 0.5, wall=20)
    assert time.perf_counter() - started < 5
    # the wall clock still bounds a page that never gets the CPU (or sleeps)
    started = time.perf_counter()
    with pytest.raises(Timeout, match="wall clock"):
        run_killable(lambda: time.sleep(30), 5, wall=1)
    assert time.perf_counter() - started < 3


def test_a_page_clock_adds_its_children_cpu_and_stops_when_spent():
    clock = PageClock(1.0)
    assert clock.run(lambda: _burn(0.3) > 0)
    assert 0.25 <= clock.spent() < 1.0 and clock.remaining() > 0
    with pytest.raises(Timeout):
        clock.run(lambda: _burn(30))  # what is left of the second runs out in the child
    assert clock.over()
    with pytest.raises(Timeout, match="spent before it"):
        clock.run(lambda: 1)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["spans", "text"])
def test_the_attack_pages_finish_within_the_bound(tmp_path, kind):
    """The pages of the attack: 100,000 one-letter spans; 4.8 MB of text (5-8 minutes before)."""
    if kind == "spans":
        path = _spans_pdf(tmp_path / "spans.pdf", 100_000)
    else:
        doc = pymupdf.open()
        page = _text_page(doc)
        line = "lorem ipsum dolor sit amet " * 4
        _append(doc, page, b"BT /helv 2 Tf 10 780 Td 2 TL\n" + f"({line}) '\n".encode() * (4_800_000 // len(line)) + b"ET")
        path = tmp_path / "text.pdf"
        doc.save(path, deflate=True)
    config = IngestConfig(ocr="never", page_timeout_s=10)
    pages, seconds = _read(path, config, tmp_path / "img")
    assert seconds < config.page_timeout_s + 2 * SLACK
    assert "readable line" in pages[0].page.text
    assert pages[0].page.notes


# -- image guards at the decoder -----------------------------------------------------------------


def _codestream(width: int, height: int) -> bytes:
    """The start of a JPEG 2000 codestream: SOC and a SIZ marker declaring ``width`` x ``height``."""
    siz = struct.pack(">HIIIIIIIIH", 0, width, height, 0, 0, width, height, 0, 0, 1) + bytes([7, 1, 1])
    return b"\xff\x4f\xff\x51" + struct.pack(">H", len(siz) + 2) + siz + b"\xff\x52" + b"\x00" * 64


def _image_xobject(doc: pymupdf.Document, dictionary: str, data: bytes, filter: str) -> int:
    xref = doc.get_new_xref()
    doc.update_object(xref, dictionary)
    doc.update_stream(xref, data, compress=False)
    doc.xref_set_key(xref, "Filter", filter)  # after the stream: update_stream drops it
    return xref


def _guarded(tmp_path: Path, doc: pymupdf.Document, name: str) -> tuple[list, int]:
    path = tmp_path / name
    doc.save(path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = IngestConfig(ocr="never", dpi=72, max_image_pixels=50_000_000)
    pages, _ = _read(path, config, tmp_path / "img")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
    return pages, grown_mb


def test_a_jpx_whose_dictionary_understates_its_codestream_is_refused(tmp_path):
    doc = pymupdf.open()
    page = _text_page(doc, "Text beside a JPX bomb stays searchable.")
    xref = _image_xobject(doc, "<</Type/XObject/Subtype/Image/Width 10/Height 10/ColorSpace/DeviceRGB"
                               "/BitsPerComponent 8>>", _codestream(60_000, 60_000), "/JPXDecode")
    _resource(doc, page, "XObject", "Bomb", xref)
    _append(doc, page, b"q 200 0 0 200 100 300 cm /Bomb Do Q")
    doc.new_page().insert_text((72, 72), "The second page is indexed too.")
    pages, grown_mb = _guarded(tmp_path, doc, "jpx.pdf")
    note = " ".join(pages[0].page.notes)
    assert "60000x60000" in note and "JPX stream header (the dictionary says 10x10)" in note and "max_image_pixels" in note
    assert "JPX bomb stays searchable" in pages[0].page.text and "second page" in pages[1].page.text
    assert grown_mb < 400


def test_an_inline_image_over_the_limit_is_cut_from_the_page(tmp_path):
    doc = pymupdf.open()
    page = _text_page(doc, "Text beside an inline bomb.")
    data = zlib.compress(b"\x00" * 100_000)
    _append(doc, page, b"q 100 0 0 100 50 300 cm BI /W 40000 /H 40000 /BPC 8 /CS /G /F /Fl ID " + data + b"\nEI Q")
    pages, grown_mb = _guarded(tmp_path, doc, "inline.pdf")
    assert any("inline image of 40000x40000" in n for n in pages[0].page.notes), pages[0].page.notes
    assert "inline bomb" in pages[0].page.text
    assert grown_mb < 400


def test_an_image_inside_a_type3_glyph_is_refused(tmp_path):
    doc = pymupdf.open()
    page = _text_page(doc, "Text beside a Type3 glyph that draws a bomb.")
    image = _image_xobject(doc, "<</Type/XObject/Subtype/Image/Width 30000/Height 30000/ColorSpace/DeviceGray"
                                "/BitsPerComponent 8>>", zlib.compress(b"\x00" * 100_000), "/FlateDecode")
    glyph = doc.get_new_xref()
    doc.update_object(glyph, "<<>>")
    doc.update_stream(glyph, b"1000 0 d0 q 1000 0 0 1000 0 0 cm /Im1 Do Q")
    font = doc.get_new_xref()
    doc.update_object(font, f"<</Type/Font/Subtype/Type3/FontBBox[0 0 1000 1000]/FontMatrix[0.001 0 0 0.001 0 0]"
                            f"/CharProcs<</g {glyph} 0 R>>/Encoding<</Type/Encoding/Differences[65/g]>>/FirstChar 65"
                            f"/LastChar 65/Widths[1000]/Resources<</XObject<</Im1 {image} 0 R>>>>>>")
    _resource(doc, page, "Font", "T3", font)
    _append(doc, page, b"BT /T3 100 Tf 100 300 Td (A) Tj ET")
    pages, grown_mb = _guarded(tmp_path, doc, "type3.pdf")
    assert any(f"image object {image} of 30000x30000" in n for n in pages[0].page.notes), pages[0].page.notes
    assert "Type3 glyph" in pages[0].page.text
    assert grown_mb < 400


def test_headers_are_read_from_the_stream():
    assert codestream_size(_codestream(60_000, 40_000)) == (60_000, 40_000)
    jpeg = Image.new("RGB", (123, 45))
    from io import BytesIO

    buf = BytesIO()
    jpeg.save(buf, format="JPEG")
    assert jpeg_size(buf.getvalue()) == (123, 45)


def test_a_huge_png_is_refused_from_its_header_and_pillow_follows_the_setting(tmp_path):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # 15000 x 15000 = 225 MP: above Pillow's own 179 MP bomb limit, below ours by default
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 15_000, 15_000, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    path = tmp_path / "huge.png"
    path.write_bytes(png)
    with pytest.raises(ResourceLimitError, match="225,000,000 pixels.* above ingest.max_image_pixels=100,000,000"):
        open_document(path, IngestConfig(ocr="never", max_image_pixels=100_000_000))
    reader = open_document(path, IngestConfig(ocr="never", max_image_pixels=300_000_000))  # the setting governs, not Pillow
    assert reader.info.page_count == 1
    reader.close()


# -- valid input is not refused ------------------------------------------------------------------


def test_a_tall_page_within_the_pixel_limit_is_rendered_not_failed(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=13_680)
    page.insert_text((72, 72), "The top of a very tall receipt.")
    page.insert_text((72, 13_600), "The bottom of it.")
    path = tmp_path / "tall.pdf"
    doc.save(path)
    pages, _ = _read(path, IngestConfig(ocr="never", image_format="webp"), tmp_path / "img")  # WebP: 16,383 px a side
    record = pages[0].page
    assert "bottom of it" in record.text
    with Image.open(record.image_path) as im:
        assert max(im.size) <= 16_383 and abs(im.height / record.height - record.dpi / 72) < 0.01
    assert fit_dpi(612, 13_680, 110, 60_000_000, 16_383) == 86


def test_a_one_pixel_wide_png_is_indexed_or_fails_with_a_reason(tmp_path):
    path = tmp_path / "thin.png"
    Image.new("RGB", (1, 60_000), "white").save(path)
    pages, _ = _read(path, IngestConfig(), tmp_path / "img")
    assert pages[0].page.height == 60_000
    assert any("too thin to hold a line of text" in n for n in pages[0].page.notes)


def test_no_document_error_has_an_empty_reason():
    err = DocumentError("x.pdf", "")
    assert err.reason.strip() and "x.pdf: " in str(err) and str(err).strip() != "x.pdf:"


def test_a_jpeg_whose_header_is_larger_than_its_dictionary_is_refused_and_inspect_json_says_so(tmp_path):
    from io import BytesIO

    from ingest import inspect_json

    buf = BytesIO()
    Image.new("RGB", (16, 16), "gray").save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", 60_000, 60_000)  # the SOF marker now says 60000 x 60000
    doc = pymupdf.open()
    page = _text_page(doc, "Text beside a JPEG bomb.")
    xref = _image_xobject(doc, "<</Type/XObject/Subtype/Image/Width 10/Height 10/ColorSpace/DeviceRGB"
                               "/BitsPerComponent 8>>", bytes(data), "/DCTDecode")
    _resource(doc, page, "XObject", "Photo", xref)
    _append(doc, page, b"q 200 0 0 200 100 300 cm /Photo Do Q")
    path = tmp_path / "jpeg.pdf"
    doc.save(path)
    with open_document(path, IngestConfig(ocr="never", dpi=72)) as reader:
        described = inspect_json(reader.info, reader.pages(progress=False))
    notes = described["pages"][0]["notes"]
    assert any("60000x60000" in n and "DCT stream header (the dictionary says 10x10)" in n for n in notes), notes

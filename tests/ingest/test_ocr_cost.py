"""OCR does no work nobody needs: no recognition of a figure without text, one OCR of an image
repeated on every page, no render above an image's own resolution. Each keeps the words."""

from __future__ import annotations

import io

import numpy as np
import pymupdf
import pytest
from PIL import Image

import _pdfgen as g
from ingest import open_document
from ingest import _ocr as ocr
from rag.lru import LRU
from ingest._textlayer import native_dpi
from rag.config import IngestConfig

pytest.importorskip("rapidocr")


@pytest.fixture
def fresh_reads(monkeypatch):
    """Nothing remembered from earlier tests: every image is read anew."""
    monkeypatch.setattr(ocr, "_READ", LRU(ocr._READ_SIZE))


@pytest.fixture
def stages(monkeypatch, fresh_reads):
    """Counts of the engine's detector, angle classifier and recogniser runs (the real ones)."""
    engine = ocr.get_engine()
    counts = {"det": 0, "cls": 0, "rec": 0}
    for name, method in (("det", "detect_and_crop"), ("cls", "cls_and_rotate"), ("rec", "recognize_txt")):
        real = getattr(engine, method)

        def counted(*args, _real=real, _name=name, **kwargs):
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(engine, method, counted)
    return counts


def _pages(path, config=IngestConfig()):
    with open_document(path, config) as reader:
        return list(reader.pages(progress=False))


def _text_png(width: int, height: int, text: str, fontsize: float) -> bytes:
    """Dark text on white at exactly ``width`` x ``height`` pixels (1 px per point)."""
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    page.insert_text((8, height / 2 + fontsize / 3), text, fontsize=fontsize)
    pix = page.get_pixmap(dpi=72)
    doc.close()
    buf = io.BytesIO()
    Image.frombytes("RGB", (pix.width, pix.height), pix.samples).save(buf, format="PNG")
    return buf.getvalue()


def test_a_photograph_without_text_is_not_sent_to_the_recogniser(tmp_path, stages):
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), g.LOREM[:90])
    g.raster_page(page, pymupdf.Rect(100, 200, 400, 380))
    (content,) = _pages(g.save(doc, tmp_path / "photo.pdf"))
    (fig,) = content.figures
    assert fig.source == "raster" and fig.text == ""
    assert stages == {"det": 1, "cls": 0, "rec": 0}  # looked at once for text, found none, read nothing


def test_the_same_logo_on_ten_pages_is_read_once_and_every_page_keeps_its_text(tmp_path, stages):
    logo = g.png_bytes(260, 60, text="VALVE 7 CLOSED")
    doc = pymupdf.open()
    for i in range(10):
        page = doc.new_page()
        page.insert_text((72, 72), f"Page {i + 1}. " + g.LOREM[:80])
        page.insert_image(pymupdf.Rect(100, 200, 400, 270), stream=logo)
    pages = _pages(g.save(doc, tmp_path / "logos.pdf"))
    texts = [fig.text for p in pages for fig in p.figures]
    assert len(texts) == 10 and all("VALVE" in t and "CLOSED" in t for t in texts)
    assert len(set(texts)) == 1
    assert stages["det"] == 1 and stages["rec"] == 1


def test_a_small_raster_image_is_not_rendered_above_its_own_resolution(tmp_path, monkeypatch, fresh_reads):
    seen: list[tuple[int, ...]] = []
    real = ocr.ocr_array

    def spy(image, *args, **kwargs):
        seen.append(image.shape)
        return real(image, *args, **kwargs)

    monkeypatch.setattr(ocr, "ocr_array", spy)
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), g.LOREM[:90])
    # 300 x 70 pixels shown over 300 x 70 points: 72 dpi, half of ocr_dpi=144
    page.insert_image(pymupdf.Rect(100, 200, 400, 270), stream=_text_png(300, 70, "VALVE 7 CLOSED", 24))
    (content,) = _pages(g.save(doc, tmp_path / "small.pdf"))
    (fig,) = content.figures
    assert "VALVE" in fig.text and "CLOSED" in fig.text
    (shape,) = seen
    assert shape[:2] == (70, 300)  # not (140, 600): 4x the pixels, interpolated


def test_only_regions_covered_by_raster_images_take_their_resolution():
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(100, 100, 300, 200), stream=_text_png(100, 50, "A", 20))  # 36 dpi
    page.insert_image(pymupdf.Rect(100, 300, 300, 400), stream=_text_png(800, 400, "B", 20))  # 288 dpi
    page.insert_text((100, 500), "vector text only")
    assert native_dpi(page, pymupdf.Rect(100, 100, 300, 200)) == 36
    assert native_dpi(page, pymupdf.Rect(110, 110, 290, 190)) == 36  # a clip inside the image
    assert native_dpi(page, pymupdf.Rect(100, 300, 300, 400)) == 288
    assert native_dpi(page, pymupdf.Rect(0, 100, 400, 200)) is None  # half the region is not the image
    assert native_dpi(page, pymupdf.Rect(90, 480, 300, 520)) is None  # text and drawings: no native resolution
    page.insert_text((120, 150), "label", fontsize=8)  # text drawn over the picture keeps the full dpi
    assert native_dpi(page, pymupdf.Rect(100, 100, 300, 200)) is None
    doc.close()


def test_identical_pixels_are_read_once_and_other_pixels_anew(stages):
    blank = np.full((120, 400, 3), 255, dtype=np.uint8)
    ocr.ocr_array(blank)
    ocr.ocr_array(blank.copy())
    assert stages["det"] == 1
    other = blank.copy()
    other[60, 200] = 0
    ocr.ocr_array(other)
    assert stages["det"] == 2


def _text_array(text: str, width: int = 300, height: int = 70, fontsize: float = 24) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(_text_png(width, height, text, fontsize))).convert("RGB"))


def test_a_level_line_read_with_confidence_is_not_sent_to_the_angle_classifier(stages):
    lines = ocr.ocr_array(_text_array("VALVE 7 CLOSED"))
    assert "VALVE 7 CLOSED" in " ".join(ln.text for ln in lines)
    assert stages == {"det": 1, "cls": 0, "rec": 1}


def test_an_upside_down_label_is_still_read(stages):
    upside_down = np.ascontiguousarray(_text_array("VALVE 7 CLOSED")[::-1, ::-1])
    text = " ".join(ln.text for ln in ocr.ocr_array(upside_down))
    assert "VALVE" in text and "CLOSED" in text
    assert stages["cls"] == 1  # its poor first reading sent it to the angle classifier


@pytest.mark.parametrize("quarter_turns", [1, -1], ids=["bottom-to-top", "top-to-bottom"])
def test_an_axis_label_standing_on_end_is_read_either_way_up(quarter_turns, stages):
    label = np.ascontiguousarray(np.rot90(_text_array("Revenue", 130, 40, 24), quarter_turns))
    assert label.shape[0] > 2 * label.shape[1]
    assert "Revenue" in " ".join(ln.text for ln in ocr.ocr_array(label))
    assert stages["cls"] == 0  # read both ways; no classifier needed


def test_a_figure_whose_words_are_in_the_text_layer_is_not_sent_to_the_recogniser(tmp_path, stages):
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), g.LOREM[:90])
    g.raster_page(page, pymupdf.Rect(100, 200, 400, 380))
    page.insert_text((120, 260), "Pressure falls as the valve opens", fontsize=11)
    (content,) = _pages(g.save(doc, tmp_path / "labelled.pdf"))
    (fig,) = content.figures
    assert "Pressure falls as the valve opens" in fig.text
    assert stages == {"det": 0, "cls": 0, "rec": 0}


@pytest.mark.parametrize("height, width", [(364, 589), (180, 300), (900, 1200), (40, 30), (736, 1280)])
def test_an_image_of_ordinary_shape_is_detected_at_rapidocrs_own_size(height, width):
    from rapidocr.ch_ppocr_det.utils import DetPreProcess

    theirs = DetPreProcess(736, "min").resize(np.zeros((height, width, 3), np.uint8)).shape[:2]
    assert ocr.detector_size(height, width) == theirs


@pytest.mark.parametrize("height, width", [(1684, 1191), (1469, 980), (3508, 2480)])
def test_a_page_rendered_for_ocr_is_shrunk_for_the_detector_by_at_most_a_quarter(height, width):
    # rapidocr detects an image whose shorter side is over 736 px at its own size: an A4 page
    # at 144 dpi (1,684 x 1,191 px) went to the detector whole
    from rapidocr.ch_ppocr_det.utils import DetPreProcess

    theirs = DetPreProcess(736, "min").resize(np.zeros((height, width, 3), np.uint8)).shape[:2]
    ours = ocr.detector_size(height, width)
    assert ours[0] * ours[1] < theirs[0] * theirs[1]
    assert max(ours) >= min(ocr._MAX_DETECTED_SIDE, 0.75 * max(height, width) - 32)


def test_a_page_shrunk_for_the_detector_reads_the_same_words(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)  # A4
    page.insert_textbox(pymupdf.Rect(60, 60, 535, 780), g.LOREM * 3, fontsize=10)
    pix = page.get_pixmap(dpi=144)
    image = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, pix.n)[..., :3].copy()
    assert max(image.shape[:2]) > ocr._MAX_DETECTED_SIDE
    read = " ".join(line.text for line in ocr.ocr_array(image))
    words = set(g.LOREM.split())
    assert sum(w in read for w in words) / len(words) >= 0.95


def test_a_thin_logo_is_not_upscaled_past_the_longest_side_the_detector_needs():
    # freeculture.pdf's 188 x 66 px logo: rapidocr sent it to the detector at 2,112 x 736 px
    height, width = ocr.detector_size(66, 188)
    assert width <= ocr._MAX_UPSCALED_SIDE and height >= 2 * 66
    assert height * width < 0.4 * 2112 * 736

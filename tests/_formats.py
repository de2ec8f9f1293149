"""Real files of every format ingestion reads, made here (python-docx, python-pptx, openpyxl,
Pillow, zipfile), each holding a distinctive word on a known page, plus the LibreOffice check
the tests that convert Office files share."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

#: file name -> (distinctive word, physical page it is on, a question that asks for it)
WORDS: dict[str, tuple[str, int, str]] = {
    "report.docx": ("zebracorn", 1, "What did the zebracorn plant's flux capacitor output do?"),
    "deck.pptx": ("marmalade", 2, "Marmalade revenue by quarter"),
    "stock.xlsx": ("gizmotron", 1, "How many Gizmotron widgets are in stock?"),
    "web/page.html": ("heliostat", 1, "What does the heliostat mirror follow?"),
    "notes.md": ("quokka", 1, "How many quokka were counted in the census?"),
    "book.epub": ("narwhal", 1, "When did the narwhal sail out of the fjord?"),
    "stack.tif": ("CHARLIE", 3, "Frame CHARLIE"),
}
OFFICE = ("report.docx", "deck.pptx", "stock.xlsx")


def soffice() -> str:
    """LibreOffice's program, or fail (``CI=true``) / skip the test with the install line."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        message = ("no LibreOffice (soffice) on PATH: install Debian's packages (`apt-get install -y --no-install-recommends "
                   "libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui`; scripts/test.sh does this "
                   "when run as root)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def picture(path: Path, text: str, size: tuple[int, int] = (320, 120), color: str = "white") -> Path:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).text((12, 36), text, fill="black", font=ImageFont.load_default(size=32))
    image.save(path)
    return path


def make_docx(path: Path) -> Path:
    """A heading, a paragraph, a table and an image."""
    import docx

    doc = docx.Document()
    doc.add_heading("Quarterly zebracorn report", 1)
    doc.add_paragraph("The flux capacitor output of the zebracorn plant rose by twelve percent in the northern quadrant.")
    table = doc.add_table(rows=3, cols=2)
    table.style = "Table Grid"
    for i, (a, b) in enumerate([("Region", "Sales"), ("North", "4200"), ("South", "3100")]):
        table.cell(i, 0).text, table.cell(i, 1).text = a, b
    doc.add_picture(str(picture(path.parent / "docx-picture.png", "PICTURE")))
    doc.save(path)
    (path.parent / "docx-picture.png").unlink()
    return path


def make_pptx(path: Path, slides: int = 2) -> Path:
    """A title slide, then a slide holding a chart (and ``slides - 2`` more text slides)."""
    from pptx import Presentation
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Welcome"
    first.placeholders[1].text = "An introduction to the platypus budget"
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Marmalade revenue by quarter"
    data = CategoryChartData()
    data.categories = ["Q1", "Q2", "Q3"]
    data.add_series("Revenue", (1.0, 2.5, 3.2))
    second.shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(2), Inches(6), Inches(4), data)
    for n in range(3, slides + 1):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {n}"
        slide.placeholders[1].text = f"Talking point number {n} about the budget."
    deck.save(path)
    return path


def make_xlsx(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["Item", "Quantity"], ["Gizmotron widgets", 42], ["Sprockets", 7]):
        sheet.append(row)
    book.save(path)
    return path


def make_html(folder: Path) -> Path:
    """``folder/web/page.html`` with a relative image inside its folder and ``../secret.png``
    beside it (which must not be read)."""
    web = folder / "web"
    web.mkdir(parents=True, exist_ok=True)
    picture(web / "diagram.png", "DIAGRAM")
    picture(folder / "secret.png", "SECRET", color="red")
    page = web / "page.html"
    page.write_text(
        "<html><head><title>Observatory manual</title></head><body><h1>Observatory manual</h1>"
        "<p>The heliostat mirror follows the sun across the sky.</p><ul><li>first step</li><li>second step</li></ul>"
        '<img src="diagram.png" alt="diagram"><img src="../secret.png" alt="secret"></body></html>',
        encoding="utf-8",
    )
    return page


def make_markdown(path: Path) -> Path:
    path.write_text(
        "# Field notes\n\nThe quokka census of the island.\n\n| Animal | Count |\n|---|---|\n| quokka | 17 |\n| wombat | 4 |\n\n"
        "```\nprint('fenced code')\n```\n",
        encoding="utf-8",
    )
    return path


def make_epub(path: Path) -> Path:
    """A minimal EPUB 3 written by hand: mimetype (stored first), container, OPF, one XHTML chapter."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        z.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>',
        )
        z.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
            '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">tiny-book</dc:identifier>'
            "<dc:title>Tiny Book</dc:title><dc:language>en</dc:language></metadata>"
            '<manifest><item id="c1" href="ch1.xhtml" media-type="application/xhtml+xml"/></manifest>'
            '<spine><itemref idref="c1"/></spine></package>',
        )
        z.writestr(
            "OEBPS/ch1.xhtml",
            '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>One</title></head><body>'
            "<h1>Chapter One</h1><p>The narwhal sailed out of the fjord at dawn.</p></body></html>",
        )
    return path


def make_frames(path: Path, words: tuple[str, ...] = ("ALPHA", "BRAVO", "CHARLIE")) -> Path:
    """A multi-frame image (TIFF, GIF... by the suffix), one word per frame."""
    from PIL import Image, ImageDraw, ImageFont

    frames = []
    for word in words:
        image = Image.new("RGB", (520, 200), "white")
        ImageDraw.Draw(image).text((20, 60), f"Frame {word}", fill="black", font=ImageFont.load_default(size=48))
        frames.append(image)
    frames[0].save(path, save_all=True, append_images=frames[1:])
    return path


def make_all(folder: Path, office: bool = True) -> list[Path]:
    """Every file of :data:`WORDS` in ``folder`` (the Office ones only with ``office``)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = [make_html(folder), make_markdown(folder / "notes.md"), make_epub(folder / "book.epub"),
            make_frames(folder / "stack.tif")]
    if office:
        made = [make_docx(folder / "report.docx"), make_pptx(folder / "deck.pptx"), make_xlsx(folder / "stock.xlsx")] + made
    return made

"""Generated PDFs and images for the ingest tests (small, deterministic, drawn with PyMuPDF)."""

from __future__ import annotations

import io
from pathlib import Path

import pymupdf

LOREM = (
    "The committee reviewed the annual budget and agreed that the new library should open in the "
    "spring. Members asked for a clear plan for the reading rooms, the children's corner and the "
    "archive of local newspapers, which has been stored in the basement of the town hall since the "
    "flood of the previous decade."
)


def save(doc: pymupdf.Document, path: Path) -> Path:
    doc.save(path, garbage=3, deflate=True, no_new_id=True)
    doc.close()
    return path


def text_pdf(path: Path, pages: list[str], width: float = 612, height: float = 792) -> Path:
    """One paragraph box per page."""
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page(width=width, height=height)
        page.insert_textbox(pymupdf.Rect(60, 60, width - 60, height - 60), text, fontsize=11)
    return save(doc, path)


def two_column_pdf(path: Path) -> Path:
    """A full-width title, then a left column (L1..L3 paragraphs) and a right column (R1..R3)."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(60, 40, 552, 90), "A Study of Two Columns", fontsize=18)
    for col, x0 in (("L", 60), ("R", 320)):
        for i in range(3):
            y = 100 + i * 200
            page.insert_textbox(pymupdf.Rect(x0, y, x0 + 232, y + 180), f"{col}{i + 1} marker. {LOREM}", fontsize=10)
    return save(doc, path)


def chart_page(page: pymupdf.Page, x0: float, y0: float, values=(3, 7, 5, 9), caption: str | None = "Figure 1: Rainfall per quarter in millimetres.") -> pymupdf.Rect:
    """A vector bar chart (paths) with tick labels and an axis title; returns the plot rect."""
    w, h = 240.0, 140.0
    shape = page.new_shape()
    shape.draw_line((x0, y0), (x0, y0 + h))
    shape.draw_line((x0, y0 + h), (x0 + w, y0 + h))
    shape.finish(color=(0, 0, 0), width=1, closePath=False)
    bw = w / len(values)
    for i, v in enumerate(values):
        shape.draw_rect(pymupdf.Rect(x0 + i * bw + 6, y0 + h - h * v / 10, x0 + (i + 1) * bw - 6, y0 + h))
        shape.finish(color=None, fill=(0.2, 0.4, 0.8))
    shape.commit()
    for i in range(len(values)):
        page.insert_text((x0 + i * bw + bw / 2 - 6, y0 + h + 11), f"Q{i + 1}", fontsize=8)
    page.insert_text((x0 - 16, y0 + 8), "10", fontsize=8)
    page.insert_text((x0 - 16, y0 + h), "0", fontsize=8)
    page.insert_text((x0 + w / 2 - 20, y0 + h + 24), "Quarter", fontsize=8)
    if caption:
        page.insert_textbox(pymupdf.Rect(x0 - 20, y0 + h + 34, x0 + w + 40, y0 + h + 60), caption, fontsize=9)
    return pymupdf.Rect(x0, y0, x0 + w, y0 + h)


def table_page(page: pymupdf.Page, x0: float, y0: float, rows, caption: str | None = "Table 1: Opening hours of the branches.") -> pymupdf.Rect:
    """A ruled table; the caption goes above it."""
    if caption:
        page.insert_textbox(pymupdf.Rect(x0, y0 - 22, x0 + 400, y0 - 4), caption, fontsize=9)
    widths = [110.0] * len(rows[0])
    rh = 20.0
    shape = page.new_shape()
    for r in range(len(rows) + 1):
        shape.draw_line((x0, y0 + r * rh), (x0 + sum(widths), y0 + r * rh))
    x = x0
    for cw in [0.0, *widths]:
        x += cw
        shape.draw_line((x, y0), (x, y0 + rh * len(rows)))
    shape.finish(color=(0, 0, 0), width=0.8, closePath=False)
    shape.commit()
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            page.insert_textbox(pymupdf.Rect(x0 + c * 110 + 3, y0 + r * rh + 4, x0 + (c + 1) * 110 - 3, y0 + (r + 1) * rh), cell, fontsize=9)
    return pymupdf.Rect(x0, y0, x0 + sum(widths), y0 + rh * len(rows))


def png_bytes(width: int = 200, height: int = 120, text: str | None = None, fmt: str = "PNG") -> bytes:
    """A gradient picture, optionally with large dark text (rendered by PyMuPDF)."""
    from PIL import Image

    if text:
        doc = pymupdf.open()
        page = doc.new_page(width=width, height=height)
        page.insert_text((10, height / 2 + 8), text, fontsize=22)
        pix = page.get_pixmap(dpi=72 * 2)
        img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
        doc.close()
    else:
        img = Image.new("RGB", (width, height))
        img.putdata([((x * 255) // width, (y * 255) // height, 120) for y in range(height) for x in range(width)])
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def raster_page(page: pymupdf.Page, rect: pymupdf.Rect, caption: str | None = "Fig. 2. A gradient photograph.") -> None:
    page.insert_image(rect, stream=png_bytes())
    if caption:
        page.insert_textbox(pymupdf.Rect(rect.x0, rect.y1 + 8, rect.x1 + 100, rect.y1 + 30), caption, fontsize=9)


def scanned_pdf(path: Path, text: str = "INVOICE NUMBER 4471", width: float = 320, height: float = 120) -> Path:
    """A small page that is only a picture of text (no text layer)."""
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    src = pymupdf.open()
    sp = src.new_page(width=width, height=height)
    sp.insert_text((20, height / 2 + 8), text, fontsize=22)
    pix = sp.get_pixmap(dpi=150)
    page.insert_image(page.rect, pixmap=pix)
    src.close()
    return save(doc, path)


def skewed_scan_png(lines: list[str], degrees: float = 3.0, width: float = 612, height: float = 240) -> bytes:
    """A picture (150 dpi PNG) of ``lines`` of text turned by ``degrees``: a sheet fed into the
    scanner at a slant."""
    from PIL import Image

    src = pymupdf.open()
    sp = src.new_page(width=width, height=height)
    for i, line in enumerate(lines):
        sp.insert_text((60, 60 + 16 * i), line, fontsize=12)
    pix = sp.get_pixmap(dpi=150)
    img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    src.close()
    img = img.rotate(-degrees, resample=Image.BICUBIC, fillcolor=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def skewed_scan_pdf(path: Path, lines: list[str], degrees: float = 3.0, width: float = 612, height: float = 240) -> Path:
    """A page that is only a slanted scan of ``lines`` (no text layer)."""
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    page.insert_image(page.rect, stream=skewed_scan_png(lines, degrees, width, height))
    return save(doc, path)


def encrypted_pdf(path: Path, password: str = "s3cret") -> Path:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Confidential minutes of the board meeting.", fontsize=12)
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw=password + "-owner")
    doc.close()
    return path


def zero_page_pdf_bytes() -> bytes:
    """A well-formed PDF (correct xref) whose page tree is empty."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Root 1 0 R /Size %d >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


BOOK_CHAPTERS = (
    ("Impellers", "The impeller is the rotating part that moves water. Its vanes push the liquid outwards."),
    ("Seals and gaskets", "A mechanical seal keeps water inside the casing; replace the gasket when it hardens."),
    ("Threads and fittings", "Pipe threads are wrapped with tape before the fitting is tightened by hand."),
    ("Bearings", "Bearings carry the shaft; grease them every six months with lithium grease."),
    ("Priming the pump", "Fill the casing with water before the first start so the impeller can draw."),
    ("Cavitation", "Bubbles form when suction pressure drops too low and they wear the impeller away."),
)
BOOK_INDEX = (
    ("bearings", "4"), ("cavitation", "6"), ("fittings", "3"), ("gaskets", "2"), ("impellers", "1, 5"),
    ("priming", "5"), ("seals", "2"), ("threads", "3"),
)


def book_pdf(path: Path, labels: bool = True) -> Path:
    """A small book: title page, contents (dot leaders, right-aligned numbers), preface, six
    one-page chapters, a back-of-book index. Front matter is numbered i-iii and the chapters
    1-6 (physical pages 4-9), so the printed number is the physical page minus 3; ``labels``
    writes that numbering as /PageLabels (else only the printed numbers tell)."""
    doc = pymupdf.open()
    title = doc.new_page(width=420, height=600)
    title.insert_text((60, 200), "A Field Guide to Pumps", fontsize=20)
    toc = doc.new_page(width=420, height=600)
    toc.insert_text((60, 70), "Contents", fontsize=16)
    rows = [("Preface", "iii")] + [(f"{n} {name}", str(n)) for n, (name, _) in enumerate(BOOK_CHAPTERS, 1)] + [("Index", "7")]
    for k, (name, number) in enumerate(rows):
        y = 110 + 22 * k
        toc.insert_text((60, y), name + " " + ". " * 12, fontsize=11)
        toc.insert_text((340, y), number, fontsize=11)
    preface = doc.new_page(width=420, height=600)
    preface.insert_textbox(pymupdf.Rect(60, 60, 360, 400), "Preface\n\nThis guide is for people who look after small water pumps.", fontsize=11)
    for n, (name, body) in enumerate(BOOK_CHAPTERS, 1):
        page = doc.new_page(width=420, height=600)
        page.insert_text((60, 70), f"{n} {name}", fontsize=16)
        page.insert_textbox(pymupdf.Rect(60, 100, 360, 400), body, fontsize=11)
        page.insert_text((205, 570), str(n), fontsize=9)
    index = doc.new_page(width=420, height=600)
    index.insert_text((60, 70), "Index", fontsize=16)
    for k, (term, refs) in enumerate(BOOK_INDEX):
        index.insert_text((60, 110 + 18 * k), f"{term}, {refs}", fontsize=11)
    index.insert_text((205, 570), "7", fontsize=9)
    if labels:
        doc.set_page_labels([{"startpage": 0, "style": "r"}, {"startpage": 3, "style": "D", "firstpagenum": 1}])
    return save(doc, path)

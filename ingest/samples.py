"""Demo documents, generated deterministically with PyMuPDF and Pillow.

``make_samples(folder)`` writes:

* ``solar_maintenance_manual.pdf`` (4 pages): prose with headings; a vector bar chart of
  monthly output drawn with paths ("Figure 1"); a ruled table of inverter fault codes
  ("Table 1"); a photo-like raster figure ("Figure 2"); a scanned service-record page
  (an image of text with noise and no text layer, so OCR is needed).
* ``inverter_dashboard.png``: a screenshot-like picture with text.

Facts a demo question can be answered from: inspect the inverter every 6 months; fault
code E07 means a ground fault (insulation resistance below 1 MOhm); July output is
642 kWh; clean when output drops more than 15 percent; torque mounting bolts to 12 Nm.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

__all__ = ["make_samples", "MONTHLY_KWH", "FAULT_CODES"]

MONTHLY_KWH = (212, 268, 391, 477, 566, 618, 642, 597, 488, 352, 241, 198)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FAULT_CODES = (
    ("Code", "Meaning", "First action"),
    ("E01", "Grid voltage above 253 V", "Wait 10 min, check grid"),
    ("E03", "DC input over 600 V", "Check string wiring"),
    ("E07", "Ground fault, insulation below 1 MOhm", "Call a certified electrician"),
    ("E12", "Fan failure, heatsink over 85 C", "Clean air vents"),
)
_META = {"creationDate": "D:20240101000000Z", "modDate": "D:20240101000000Z", "producer": "mmrag samples"}

_P1 = [
    ("h", "Solar Panel Maintenance Manual"),
    ("p", "This manual describes routine care for a residential photovoltaic system with a 5 kW "
          "string inverter and twenty roof-mounted panels. Following the schedule below keeps the "
          "system safe, preserves the warranty and protects the yearly energy yield."),
    ("h2", "1. Safety first"),
    ("p", "Always switch off the AC isolator before the DC isolator, and wait five minutes before "
          "opening any enclosure. Panels produce voltage whenever light falls on them, so treat every "
          "connector as live. Never walk on the modules; use a roof ladder and a fall-arrest harness."),
    ("h2", "2. Inspection schedule"),
    ("p", "Inspect the inverter every 6 months: read the event log, check that the cooling fan runs "
          "freely and that the display shows no active alarms. Check the panel surfaces every 3 months "
          "for soiling, bird droppings and shading from new growth. Once a year, an electrician should "
          "measure the insulation resistance of each string and re-torque the roof mounting bolts."),
    ("p", "Record every inspection in the service log at the end of this manual, with the date, the "
          "inverter total yield and any fault codes shown."),
]


def _doc() -> Any:
    import pymupdf

    return pymupdf.open()


def _write_flow(page: Any, items: list[tuple[str, str]], top: float) -> float:
    """Write headings and paragraphs down the page; return the y where writing stopped."""
    import pymupdf

    y = top
    for kind, text in items:
        size = {"h": 20, "h2": 13}.get(kind, 10.5)
        font = "helv" if kind == "p" else "hebo"
        height = 36 if kind == "h" else (22 if kind == "h2" else 14 * (len(text) // 88 + 2))
        rect = pymupdf.Rect(60, y, 552, y + height)
        page.insert_textbox(rect, text, fontsize=size, fontname=font, align=0)
        y += height + 4
    return y


def _bar_chart(page: Any, x0: float, y0: float, w: float, h: float) -> None:
    """A bar chart drawn with vector paths: axes, bars, tick labels, axis titles."""
    import pymupdf

    shape = page.new_shape()
    shape.draw_line((x0, y0), (x0, y0 + h))
    shape.draw_line((x0, y0 + h), (x0 + w, y0 + h))
    shape.finish(color=(0, 0, 0), width=1, closePath=False)
    top = 700.0
    bw = w / len(MONTHLY_KWH)
    for i, v in enumerate(MONTHLY_KWH):
        bh = h * v / top
        shape.draw_rect(pymupdf.Rect(x0 + i * bw + 4, y0 + h - bh, x0 + (i + 1) * bw - 4, y0 + h))
        shape.finish(color=None, fill=(0.95, 0.6, 0.1))
    for tick in (0, 200, 400, 600):
        ty = y0 + h - h * tick / top
        shape.draw_line((x0 - 3, ty), (x0, ty))
        shape.finish(color=(0, 0, 0), width=0.8, closePath=False)
    shape.commit()
    for tick in (0, 200, 400, 600):
        page.insert_text((x0 - 24, y0 + h - h * tick / top + 3), str(tick), fontsize=7)
    for i, m in enumerate(MONTHS):
        page.insert_text((x0 + i * bw + bw / 2 - 7, y0 + h + 11), m, fontsize=7)
    page.insert_text((x0 - 38, y0 + h / 2 + 14), "kWh", fontsize=8, rotate=90)
    page.insert_text((x0 + w / 2 - 20, y0 + h + 24), "Month (2023)", fontsize=8)


def _table(page: Any, x0: float, y0: float, widths: tuple[float, ...], rows: tuple[tuple[str, ...], ...]) -> float:
    import pymupdf

    rh = 20.0
    total = sum(widths)
    shape = page.new_shape()
    for r in range(len(rows) + 1):
        shape.draw_line((x0, y0 + r * rh), (x0 + total, y0 + r * rh))
    x = x0
    for cw in (0.0, *widths):
        x += cw
        shape.draw_line((x, y0), (x, y0 + rh * len(rows)))
    shape.finish(color=(0, 0, 0), width=0.8, closePath=False)
    shape.commit()
    for r, row in enumerate(rows):
        x = x0
        for cw, cell in zip(widths, row):
            font = "hebo" if r == 0 else "helv"
            page.insert_textbox(pymupdf.Rect(x + 3, y0 + r * rh + 4, x + cw - 3, y0 + (r + 1) * rh), cell, fontsize=8.5, fontname=font)
            x += cw
    return y0 + rh * len(rows)


def _panel_photo(width: int = 480, height: int = 300) -> bytes:
    """A photo-like picture of a soiled solar panel (cells, gradient, dirt spots, noise)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), dtype=np.float32)
    img[..., 0] = 20 + 30 * yy / height
    img[..., 1] = 40 + 40 * xx / width
    img[..., 2] = 110 + 80 * (1 - yy / height)
    img[(xx % 60) < 2] = 200
    img[(yy % 50) < 2] = 200
    for _ in range(40):
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(4, 18)
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[mask] = img[mask] * 0.4 + np.array([150, 120, 80]) * 0.6
    img += rng.normal(0, 6, img.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype("uint8")).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _scanned_page_image(lines: list[str], dpi: int = 150) -> bytes:
    """Text rendered to pixels with speckle noise: a page that only a scanner could make."""
    import numpy as np
    import pymupdf
    from PIL import Image

    src = pymupdf.open()
    page = src.new_page(width=612, height=792)
    y = 90.0
    for i, line in enumerate(lines):
        page.insert_text((72, y), line, fontsize=16 if i == 0 else 12, fontname="tiro")
        y += 30 if i == 0 else 22
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    arr = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width).astype(np.float32)
    src.close()
    rng = np.random.default_rng(11)
    arr = arr * 0.92 + 12 + rng.normal(0, 10, arr.shape)
    specks = rng.random(arr.shape) < 0.0015
    arr[specks] = 40
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype("uint8")).save(buf, format="JPEG", quality=75)
    return buf.getvalue()


SCAN_LINES = [
    "SERVICE RECORD - scanned copy",
    "Date: 14 March 2024    Technician: A. Moreno",
    "Inverter total yield: 18,412 kWh",
    "Fault log: E07 ground fault on 2 March, cleared after",
    "replacing the damaged MC4 connector on string 2.",
    "Torque the mounting bolts to 12 Nm during each visit.",
    "Next inspection due: September 2024.",
]


def _manual(path: Path) -> None:
    import pymupdf

    doc = _doc()
    p1 = doc.new_page(width=612, height=792)
    _write_flow(p1, _P1, 60)

    p2 = doc.new_page(width=612, height=792)
    y = _write_flow(p2, [
        ("h2", "3. Energy output"),
        ("p", "The chart below shows the monthly energy output of the reference system during 2023. "
              "Output peaks in July at 642 kWh and falls to 198 kWh in December. A month that falls "
              "more than 15 percent below the same month of the previous year points to soiling, "
              "shading or a failing string."),
    ], 60)
    _bar_chart(p2, 130, y + 10, 380, 170)
    cap_y = y + 10 + 170 + 34
    p2.insert_textbox(pymupdf.Rect(100, cap_y, 520, cap_y + 28),
                      "Figure 1: Monthly energy output of the 5 kW reference system in 2023 (kWh).", fontsize=9, fontname="heit")
    y = _write_flow(p2, [
        ("h2", "4. Inverter fault codes"),
        ("p", "When the inverter shows a fault code, look it up in Table 1 and take the first action listed. "
              "Codes not listed here require a call to the installer."),
    ], cap_y + 44)
    p2.insert_textbox(pymupdf.Rect(100, y + 4, 520, y + 20),
                      "Table 1: Inverter fault codes and first actions.", fontsize=9, fontname="heit")
    _table(p2, 100, y + 24, (50, 200, 170), FAULT_CODES)

    p3 = doc.new_page(width=612, height=792)
    y = _write_flow(p3, [
        ("h2", "5. Cleaning the panels"),
        ("p", "Dust, pollen and bird droppings block light and can cost a tenth of the yield. Clean the "
              "panels with deionised water and a soft brush when output drops more than 15 percent, "
              "early in the morning while the glass is cool. Do not use detergents or pressure washers."),
    ], 60)
    p3.insert_image(pymupdf.Rect(126, y + 10, 486, y + 235), stream=_panel_photo())
    p3.insert_textbox(pymupdf.Rect(100, y + 245, 520, y + 275),
                      "Figure 2: Soiling on a panel after 8 weeks without cleaning.", fontsize=9, fontname="heit")
    _write_flow(p3, [
        ("p", "After cleaning, compare the next sunny day's yield with the chart in Figure 1. The yield "
              "should recover to within 5 percent of the expected value for the month."),
    ], y + 290)

    p4 = doc.new_page(width=612, height=792)
    p4.insert_image(p4.rect, stream=_scanned_page_image(SCAN_LINES))

    doc.set_metadata({**_META, "title": "Solar Panel Maintenance Manual", "author": "mmrag"})
    doc.save(path, garbage=3, deflate=True, no_new_id=True)
    doc.close()


def _dashboard_png(path: Path) -> None:
    """A screenshot-like monitoring dashboard: text drawn with PyMuPDF, saved as PNG."""
    import pymupdf

    doc = _doc()
    page = doc.new_page(width=400, height=220)
    page.draw_rect(page.rect, color=None, fill=(0.93, 0.95, 0.98))
    page.draw_rect(pymupdf.Rect(0, 0, 400, 34), color=None, fill=(0.15, 0.3, 0.55))
    page.insert_text((14, 23), "SolarWatch - Inverter status", fontsize=14, color=(1, 1, 1), fontname="hebo")
    rows = [("Status", "OK - feeding grid"), ("Today's yield", "18.4 kWh"), ("Current power", "3.2 kW"), ("Last alarm", "E07 cleared")]
    for i, (k, v) in enumerate(rows):
        page.insert_text((20, 70 + i * 34), k, fontsize=12, fontname="helv")
        page.insert_text((190, 70 + i * 34), v, fontsize=12, fontname="hebo")
    page.get_pixmap(dpi=144).save(str(path))
    doc.close()


def make_samples(folder: str | Path) -> list[Path]:
    """Write the demo documents into ``folder`` (created if needed) and return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manual = folder / "solar_maintenance_manual.pdf"
    dashboard = folder / "inverter_dashboard.png"
    _manual(manual)
    _dashboard_png(dashboard)
    return [manual, dashboard]

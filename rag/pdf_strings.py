"""PDF text strings to Python text: the byte-order marks of the PDF spec, PDFDocEncoding, and
page labels stored undecoded by older versions.

A PDF text string (a page label's prefix, an outline title) is bytes: UTF-16BE after the mark
``FE FF`` (what LaTeX's beamer writes, as the hex string ``<FEFF0031>`` for "1"), UTF-8 after
``EF BB BF`` (PDF 2.0), else PDFDocEncoding (Latin-1 with typographic marks in 0x80-0xA0).
Some writers put plain UTF-8 in without a mark (PyMuPDF's ``set_page_labels`` does); bytes that
are valid UTF-8 with non-ASCII in them read as UTF-8, since PDFDocEncoded words almost never are.

Pure functions, no PDF library: :mod:`ingest` reads labels through them, and search results
built from a knowledge base ingested before labels were decoded pass theirs through
:func:`readable_label`.
"""

from __future__ import annotations

import re

__all__ = ["decode_pdf_bytes", "readable_label"]

# PDFDocEncoding where it differs from Latin-1 (PDF 32000-1:2008, Annex D.2); 0x9F is undefined
_PDFDOC_HIGH = "\u2022\u2020\u2021\u2026\u2014\u2013\u0192\u2044\u2039\u203a\u2212\u2030\u201e\u201c\u201d\u2018" \
               "\u2019\u201a\u2122\ufb01\ufb02\u0141\u0152\u0160\u0178\u017d\u0131\u0142\u0153\u0161\u017e\ufffd\u20ac"
_PDFDOC = {0x80 + i: ch for i, ch in enumerate(_PDFDOC_HIGH)}

# a hex string left in a label (``<FEFF00310037>``), or a run of octal escapes (``\303\251``)
_HEX = re.compile(r"<((?:[0-9A-Fa-f]{2}\s*)+)>")
_OCTAL = re.compile(r"(?:\\[0-7]{3})+")


def decode_pdf_bytes(raw: bytes) -> str:
    """The text of a PDF string's bytes (after its hex or escape syntax is undone)."""
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", errors="replace")
    if raw.startswith(b"\xff\xfe"):  # not in the spec, but written by some tools
        return raw[2:].decode("utf-16-le", errors="replace")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    if any(b >= 0x80 for b in raw):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return "".join(_PDFDOC.get(b, chr(b)) for b in raw)


def _hex_text(m: re.Match[str]) -> str:
    text = decode_pdf_bytes(bytes.fromhex(m.group(1)))
    return text if text.isprintable() else m.group(0)  # "<12>" that was no hex string stays


def readable_label(label: str | None) -> str | None:
    """A page label as a reader sees it: hex strings (``<FEFF0031>`` -> ``1``) and octal escapes
    (``\\303\\251`` -> ``é``) that an older reader left in it decoded; other text unchanged;
    ``None`` or an empty label -> ``None``."""
    if not label:
        return None
    if "<" not in label and "\\" not in label:
        return label
    text = _HEX.sub(_hex_text, label)
    text = _OCTAL.sub(lambda m: decode_pdf_bytes(bytes(int(o, 8) for o in m.group(0).split("\\")[1:])), text)
    return text or None

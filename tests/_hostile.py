"""A hostile-input corpus, generated (never downloaded): broken, hostile and merely odd files.

Each :class:`Kind` writes one input into a folder and says what ingestion must do with it:
``expect`` is ``"indexed"`` (odd but readable: ingests, nothing executed) or the name of the
:mod:`rag.errors` class it must fail with; ``reason`` is a fragment the error message must
contain. PDFs are written byte by byte (:func:`raw_pdf`) so that broken structure is exact.

Kinds modelled on MuPDF and pdf.js bug reports: truncated files, broken and missing xref
tables, startxref past EOF, page trees that point at themselves, /Count lies, recursive form
XObjects, deeply nested arrays, content streams of garbage, broken fonts and image streams,
decompression bombs, huge pages, thousands of images on a page, JavaScript and attachments.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pymupdf

import _pdfgen as g

KNOWN_PASSWORD = "known-pass"

#: settings the hostile batch runs with (no OCR: the point is the file handling)
BATCH_SETTINGS = {"ocr": "never", "password": KNOWN_PASSWORD, "dpi": 72}

CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
HELVETICA = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


# -- a byte-exact PDF writer ------------------------------------------------------------------


def stream(entries: bytes, data: bytes) -> bytes:
    return b"<< " + entries + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def text_content(text: str, y: int = 700) -> bytes:
    return b"BT /F1 12 Tf 72 %d Td (%s) Tj ET" % (y, text.encode("latin-1"))


def raw_pdf(objects: list[bytes], root: int = 1, trailer: bytes = b"", xref: bool = True, startxref: int | None = None) -> bytes:
    """A PDF of ``objects`` (bodies of objects 1..n) with a correct xref table unless told otherwise."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    start = len(out)
    if xref:
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        for off in offsets:
            out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R %s>>\n" % (len(objects) + 1, root, trailer)
    out += b"startxref\n%d\n%%%%EOF\n" % (start if startxref is None else startxref)
    return bytes(out)


def one_page_pdf(content: bytes, resources: bytes = b"<< /Font << /F1 4 0 R >> >>", extra: list[bytes] = (),  # type: ignore[assignment]
                 mediabox: bytes = b"[0 0 612 792]", catalog: bytes = CATALOG, **kw) -> bytes:
    """Objects: 1 catalog, 2 pages, 3 page, 4 Helvetica, 5 content, 6.. ``extra``."""
    objs = [
        catalog,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox " + mediabox + b" /Resources " + resources + b" /Contents 5 0 R >>",
        HELVETICA,
        stream(b"", content),
        *extra,
    ]
    return raw_pdf(objs, **kw)


def flate_image(width: int, height: int, byte: int = 0xFF, rows: int | None = None) -> bytes:
    """A FlateDecode RGB image stream of one colour, compressed row by row (small on disk).

    ``rows`` < ``height`` writes only that many rows: the dictionary still declares the full
    size (what a decompression bomb looks like to a size check), the data ends early.
    """
    comp = zlib.compressobj(9)
    row = bytes([byte]) * (width * 3)
    data = b"".join(comp.compress(row) for _ in range(height if rows is None else rows)) + comp.flush()
    return stream(
        b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode"
        % (width, height),
        data,
    )


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# -- the kinds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    filename: str
    write: Callable[[Path], None]  # writes the input at the given path
    expect: str  # "indexed" or an error class name
    reason: str = ""  # fragment the error message must contain
    note: str = ""


def _bytes(data: bytes | Callable[[], bytes]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(data() if callable(data) else data)

    return write


def _good_pdf_bytes(text: str = "A perfectly ordinary page about tide tables.", pages: int = 1) -> bytes:
    doc = pymupdf.open()
    for i in range(pages):
        doc.new_page().insert_text((72, 72), f"{text} Page {i + 1}.", fontsize=12)
    data = doc.tobytes(garbage=3, deflate=True, no_new_id=True)
    doc.close()
    return data


def _truncated() -> bytes:
    data = _good_pdf_bytes(g.LOREM, pages=20)
    return data[: len(data) // 3]


def _broken_xref() -> bytes:
    # every xref offset is wrong and startxref points past the end: MuPDF rebuilds the table
    data = one_page_pdf(text_content("Broken xref but readable text."))
    data = re.sub(rb"\d{10} 00000 n", b"9999999999 00000 n", data)
    return re.sub(rb"startxref\n\d+", b"startxref\n99999999", data)


def _encrypted(user_pw: str, owner_pw: str, text: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        doc = pymupdf.open()
        doc.new_page().insert_text((72, 72), text, fontsize=12)
        doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=user_pw, owner_pw=owner_pw)
        doc.close()

    return write


def _bomb_png() -> bytes:
    # the header claims 40000 x 40000 pixels (1.6 GP); the data is a few bytes
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0))
    return png + png_chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + png_chunk(b"IEND", b"")


def _bomb_in_pdf() -> bytes:
    # an image declared 30000 x 30000 (900 Mpx, 2.7 GB decoded) in ~100 kB, drawn 200 pt wide
    return one_page_pdf(
        text_content("A page with a decompression bomb.") + b" q 200 0 0 200 50 50 cm /Im0 Do Q",
        b"<< /Font << /F1 4 0 R >> /XObject << /Im0 6 0 R >> >>",
        [flate_image(30000, 30000, rows=1000)],
    )


def _many_images(n: int = 3000) -> bytes:
    draws = b" ".join(b"q 4 0 0 4 %d %d cm /Im0 Do Q" % (20 + (i % 100) * 5, 100 + (i // 100) * 5) for i in range(n))
    return one_page_pdf(
        text_content("Thousands of tiny images.") + b" " + draws,
        b"<< /Font << /F1 4 0 R >> /XObject << /Im0 6 0 R >> >>",
        [flate_image(2, 2, 0x40)],
    )


def _deep_nesting(depth: int = 100_000) -> bytes:
    nested = b"[" * depth + b"]" * depth
    return one_page_pdf(text_content("Deeply nested arrays in the resources."),
                        b"<< /Font << /F1 4 0 R >> /Deep " + nested + b" >>")


def _recursive_pages() -> bytes:
    # the page tree's only kid is the page tree itself
    objs = [CATALOG, b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]
    return raw_pdf(objs)


def _count_lie() -> bytes:
    objs = [
        CATALOG,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1000000000 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        HELVETICA,
        stream(b"", text_content("The page tree claims a billion pages.")),
    ]
    return raw_pdf(objs)


def _recursive_form() -> bytes:
    form = stream(
        b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /XObject << /Fm0 6 0 R >> >>",
        b"q 0.9 0 0 0.9 10 10 cm /Fm0 Do Q",
    )
    return one_page_pdf(
        text_content("A form XObject that draws itself.") + b" /Fm0 Do",
        b"<< /Font << /F1 4 0 R >> /XObject << /Fm0 6 0 R >> >>",
        [form],
    )


def _javascript() -> bytes:
    js = b"<< /Type /Action /S /JavaScript /JS (app.alert('pwned'); this.exportDataObject({cName: 'x', nLaunch: 2});) >>"
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R /Names << /JavaScript << /Names [(a) 6 0 R] >> >> >>"
    return one_page_pdf(text_content("A page with a JavaScript open action."), catalog=catalog, extra=[js])


ATTACHMENT_MARKER = "zanzibar-attachment-secret"


def _embedded_file() -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "A page with an attached file.", fontsize=12)
    doc.embfile_add("payload.pdf", _good_pdf_bytes(ATTACHMENT_MARKER), filename="payload.pdf")
    doc.embfile_add("run.sh", b"#!/bin/sh\ntouch /tmp/mmrag-pwned\n", filename="run.sh")
    data = doc.tobytes()
    doc.close()
    return data


def _unknown_security() -> bytes:
    return one_page_pdf(text_content("Encrypted by a handler nobody has."), extra=[
        b"<< /Filter /AcmeSecurity /V 9 /R 9 /Length 256 /O (x) /U (y) /P -4 >>"],
        trailer=b"/Encrypt 6 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>] ")


def _xref_stream_bomb() -> bytes:
    # startxref names an xref stream claiming 2^31 entries of 3 x 2^31-byte fields
    data = one_page_pdf(text_content("An xref stream that claims too much."), xref=False)
    start = data.index(b"trailer")
    body = stream(b"/Type /XRef /Size 2147483647 /W [2147483647 2147483647 2147483647] /Root 1 0 R",
                  zlib.compress(b"\x00" * 64))
    obj = b"7 0 obj\n" + body + b"\nendobj\n"
    return data[:start] + obj + b"startxref\n%d\n%%%%EOF\n" % start


def _garbage_content() -> bytes:
    junk = b"q q q Q Q Q Q Q 1 2 3 4 5 6 7 8 re f* BT /NoFont 99 Tf (unbalanced ET ET ET ) ] >> << garbage \xff\xfe\x00 cm cm Do Do"
    return one_page_pdf(text_content("Text before the garbage.") + b" " + junk)


def _broken_font() -> bytes:
    font = b"<< /Type /Font /Subtype /TrueType /BaseFont /Broken /FirstChar 32 /LastChar 126 /FontDescriptor 7 0 R >>"
    desc = b"<< /Type /FontDescriptor /FontName /Broken /Flags 32 /FontBBox [0 0 1000 1000] /FontFile2 8 0 R >>"
    return one_page_pdf(
        b"BT /F2 12 Tf 72 700 Td (Text in a broken font.) Tj ET " + text_content("And in Helvetica.", 650),
        b"<< /Font << /F1 4 0 R /F2 6 0 R >> >>",
        [font, desc, stream(b"", b"\x00\x01\x00\x00 this is not a TrueType font at all" * 20)],
    )


def _broken_image_stream() -> bytes:
    image = stream(b"/Type /XObject /Subtype /Image /Width 64 /Height 64 /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode",
                   b"\xff\xd8\xff\xe0 definitely not jpeg data" * 10)
    return one_page_pdf(
        text_content("A page with a broken JPEG inside.") + b" q 200 0 0 200 50 300 cm /Im0 Do Q",
        b"<< /Font << /F1 4 0 R >> /XObject << /Im0 6 0 R >> >>",
        [image],
    )


def _junk_before_header() -> bytes:
    return b"X-Mailer: junk before the header\r\n" * 10 + _good_pdf_bytes("Junk before the header.")


def _no_xref_no_trailer() -> bytes:
    data = one_page_pdf(text_content("No xref table and no trailer."), xref=False)
    return data[: data.index(b"trailer")]


def _corrupt_png() -> bytes:
    return g.png_bytes()[:80]


def _bad_crc_png() -> bytes:
    data = bytearray(g.png_bytes())
    idat = data.index(b"IDAT")
    data[idat + 40] ^= 0xFF  # flips a byte inside the compressed data; the CRC no longer matches
    return bytes(data)


def _corrupt_jpeg() -> bytes:
    data = g.png_bytes(fmt="JPEG")
    return data[:200] + b"\x00" * 50


def _corrupt_tiff() -> bytes:
    # a little-endian TIFF header whose first IFD offset points past the end
    return b"II*\x00" + struct.pack("<I", 10_000_000) + b"\x00" * 64


def _zero_size_png() -> bytes:
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0))
    return png + png_chunk(b"IEND", b"")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dir(path: Path) -> None:
    path.mkdir()
    (path / "inside.xyz").write_text("a folder, not a PDF")


def _loop(path: Path) -> None:
    path.symlink_to(path.name)


def _under_a_file(path: Path) -> None:
    # the parent "folder" is a regular file: stat fails with ENOTDIR (open fails, even for root)
    path.parent.write_bytes(_good_pdf_bytes())


KINDS: tuple[Kind, ...] = (
    Kind("truncated_pdf", "truncated.pdf", _bytes(_truncated), "CorruptDocumentError", "truncated"),
    Kind("broken_xref", "broken_xref.pdf", _bytes(_broken_xref), "indexed", note="MuPDF rebuilds the xref table"),
    Kind("no_xref_no_trailer", "no_trailer.pdf", _bytes(_no_xref_no_trailer), "indexed", note="repaired by scanning objects"),
    Kind("encrypted_other_password", "locked.pdf", _encrypted("other-pass", "o", "Locked away."), "EncryptedDocumentError", "wrong"),
    Kind("encrypted_known_password", "unlocked.pdf", _encrypted(KNOWN_PASSWORD, "o", "Opened with the known password."), "indexed"),
    Kind("encrypted_owner_only", "owner_only.pdf", _encrypted("", "owner", "Only an owner password."), "indexed",
         note="empty user password: opens, permissions are not enforced for reading"),
    Kind("zero_pages", "zero_pages.pdf", _bytes(g.zero_page_pdf_bytes), "EmptyDocumentError", "no pages"),
    Kind("recursive_page_tree", "recursive_tree.pdf", _bytes(_recursive_pages), "CorruptDocumentError"),
    Kind("page_count_lie", "count_lie.pdf", _bytes(_count_lie), "CorruptDocumentError", "number of pages",
         note="MuPDF trusts /Count and refuses the tree"),
    Kind("huge_page", "huge_page.pdf",
         _bytes(lambda: one_page_pdf(text_content("Huge page."), mediabox=b"[0 0 100000 100000]")),
         "indexed", note="rendered at the largest dpi within ingest.max_page_pixels; its text from the text layer"),
    Kind("bomb_image_in_pdf", "bomb_inside.pdf", _bytes(_bomb_in_pdf), "indexed",
         note="the image is left out before decoding (Page.notes says so); the page's text is indexed"),
    Kind("bomb_png", "bomb.png", _bytes(_bomb_png), "ResourceLimitError", "decompression bomb"),
    Kind("many_tiny_images", "many_images.pdf", _bytes(_many_images), "indexed",
         note="images past ingest.max_images_per_page are ignored by figure detection (logged)"),
    Kind("deep_nesting", "deep_nesting.pdf", _bytes(_deep_nesting), "indexed", note="MuPDF caps the nesting depth"),
    Kind("recursive_form_xobject", "recursive_form.pdf", _bytes(_recursive_form), "indexed", note="MuPDF breaks the cycle"),
    Kind("javascript", "javascript.pdf", _bytes(_javascript), "indexed", note="never executed"),
    Kind("embedded_files", "attachments.pdf", _bytes(_embedded_file), "indexed", note="attachments are neither extracted nor run"),
    Kind("garbage_content_stream", "garbage_content.pdf", _bytes(_garbage_content), "indexed"),
    Kind("broken_font", "broken_font.pdf", _bytes(_broken_font), "indexed"),
    Kind("broken_image_stream", "broken_image.pdf", _bytes(_broken_image_stream), "indexed"),
    Kind("junk_before_header", "junk_header.pdf", _bytes(_junk_before_header), "indexed"),
    Kind("png_named_pdf", "picture.pdf", _bytes(g.png_bytes), "indexed", note="format sniffed from the bytes"),
    Kind("pdf_named_png", "document.png", _bytes(_good_pdf_bytes), "indexed", note="format sniffed from the bytes"),
    Kind("text_named_pdf", "notes.pdf", _bytes(b"Just some notes, not a PDF.\n"), "UnsupportedFormatError", "not a PDF"),
    Kind("zip_named_pdf", "archive.pdf", _bytes(b"PK\x03\x04" + b"\x00" * 100), "UnsupportedFormatError", "not a PDF"),
    Kind("gif_image", "anim.gif", _bytes(lambda: g.png_bytes(fmt="GIF")), "indexed", note="GIF is an image format"),
    Kind("zip_named_docx", "report.docx", _bytes(b"PK\x03\x04" + b"\x00" * 100), "CorruptDocumentError", "ZIP container",
         note="a .docx is a ZIP container; this one cannot be read, so LibreOffice is never started"),
    Kind("empty_file", "empty.pdf", _bytes(b""), "EmptyDocumentError", "empty"),
    Kind("directory_named_pdf", "folder.pdf", _dir, "UnreadableFileError", "directory"),
    Kind("fifo_named_pdf", "pipe.pdf", _fifo, "UnreadableFileError", "not a regular file"),
    Kind("symlink_loop", "loop.pdf", _loop, "UnreadableFileError", "symbolic links"),
    Kind("device_named_pdf", "zeros.pdf", lambda p: p.symlink_to("/dev/zero"), "UnreadableFileError", "not a regular file",
         note="a symlink to /dev/zero: reading it would never end"),
    Kind("unknown_security_handler", "foreign_crypt.pdf", _bytes(_unknown_security), "EncryptedDocumentError", "AcmeSecurity"),
    Kind("xref_stream_bomb", "xref_bomb.pdf", _bytes(_xref_stream_bomb), "indexed", note="MuPDF ignores the bad xref stream and rebuilds"),
    Kind("path_under_a_file", "not_a_dir.pdf/inner.pdf", _under_a_file, "UnreadableFileError", "Not a directory"),
    Kind("corrupt_png", "corrupt.png", _bytes(_corrupt_png), "CorruptDocumentError"),
    Kind("png_bad_crc", "bad_crc.png", _bytes(_bad_crc_png), "indexed",
         note="Pillow does not check IDAT checksums: the damaged pixels are ingested"),
    Kind("zero_size_png", "zero_size.png", _bytes(_zero_size_png), "CorruptDocumentError"),
    Kind("corrupt_jpeg", "corrupt.jpg", _bytes(_corrupt_jpeg), "CorruptDocumentError"),
    Kind("corrupt_tiff", "corrupt.tif", _bytes(_corrupt_tiff), "CorruptDocumentError"),
    Kind("non_utf8_name", os.fsdecode(b"caf\xe9-\xff.pdf"), _bytes(lambda: _good_pdf_bytes("A file whose name is not UTF-8.")), "indexed"),
    Kind("newline_in_name", "two\nlines.pdf", _bytes(lambda: _good_pdf_bytes("A file with a newline in its name.")), "indexed"),
    Kind("dotdot_name", "a/b/../../dotdot.pdf", _bytes(lambda: _good_pdf_bytes("Reached through dot-dot.")), "indexed"),
)


def write_corpus(folder: Path, kinds: tuple[Kind, ...] = KINDS) -> dict[str, Path]:
    """Write every kind into ``folder``; returns {kind name: path as given to ingest}."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in kinds:
        path = folder / kind.filename
        if kind.name == "dotdot_name":
            (folder / "a" / "b").mkdir(parents=True, exist_ok=True)
        elif kind.name != "path_under_a_file":
            path.parent.mkdir(parents=True, exist_ok=True)
        kind.write(path)
        paths[kind.name] = path
    return paths


def failing(kinds: tuple[Kind, ...] = KINDS) -> list[Kind]:
    return [k for k in kinds if k.expect != "indexed"]


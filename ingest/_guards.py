"""Image guards at the decoder: every image a page can draw, sized from its own stream header
before anything decodes it.

A PDF image dictionary's ``/Width`` and ``/Height`` can understate what its decoder will
allocate: a JPX codestream carries its own size in its SIZ marker (9.6 KB of JPX declared
10x10 took 2.35 GB to decode), a JPEG in its SOF marker, a JBIG2 stream in its page
information segment. And a page draws images the page's own image list does not show: inside
Form XObjects, inline (``BI ... ID ... EI``) in a content stream, inside Type3 glyphs,
patterns and annotation appearances. :func:`guard_page` walks all of those (:func:`page_objects`),
takes the larger of the dictionary's size and the header's, and *neutralises* each image
above ``ingest.max_image_pixels`` in the open document (in memory only: it becomes a 1x1 gray
image, an inline one is cut from its content stream), so the page goes on without it and the
returned notes say which were refused and why. :func:`image_size` reads the same headers.
"""

from __future__ import annotations

import logging
import re
import struct
import weakref
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PageObjects", "page_objects", "guard_page", "image_size", "codestream_size", "pillow_limit", "doc_cache"]

logger = logging.getLogger("ingest")
_REF = re.compile(r"(\d+) 0 R")
# links out of the page's drawing (to the page tree, other pages, outlines): not followed
_SKIP_KEYS = re.compile(r"/(?:Parent|P|Dest|Popup|IRT|Next|Prev|First|Last|Thumb)\s*\d+ 0 R")
# streams that are data, not page description, whatever their dictionary looks like (a ToUnicode
# CMap has no /Subtype): never scanned as content
_DATA_KEYS = re.compile(r"/(?:ToUnicode|FontFile\d?|Metadata|CIDSet|CIDToGIDMap|Encoding|DestOutputProfile|JBIG2Globals"
                        r"|Functions?|SMask|Mask)\s*(\d+) 0 R")
_HEADER_BYTES = 1 << 16  # enough of any stream to find its size marker
_HEADERED = ("JPXDecode", "DCTDecode", "DCT", "JBIG2Decode")  # filters whose data declares its own size
_CACHES: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def doc_cache(doc: Any) -> dict[str, Any]:
    """Per open document: what the guards and the page measure already know about objects
    shared between pages (a resource dictionary of 500 images used by every page is read once)."""
    try:
        return _CACHES.setdefault(doc, {})
    except TypeError:  # not weak-referenceable: no sharing, same results
        return {}


@dataclass
class PageObjects:
    """What a page reaches: content streams (page, forms, patterns, glyphs, appearances),
    image XObjects, forms, annotations; ``truncated`` when the walk stopped at its cap."""

    contents: list[int] = field(default_factory=list)
    images: list[int] = field(default_factory=list)
    forms: list[int] = field(default_factory=list)
    annotations: int = 0
    visited: int = 0
    truncated: bool = False


def _key(doc: Any, xref: int, key: str) -> tuple[str, str]:
    try:
        return doc.xref_get_key(xref, key)
    except Exception:  # noqa: BLE001 - a broken object reads as absent
        return ("null", "null")


def _int(doc: Any, xref: int, *keys: str) -> int:
    for key in keys:
        kind, value = _key(doc, xref, key)
        if kind == "int":
            return int(value)
        if kind == "real":
            return int(float(value))
    return 0


def _is_content(obj: str) -> bool:
    """A stream that holds page-description operators (a form, a tiling pattern, a Type3 glyph,
    an appearance): not an image, font program, ICC profile, function or file."""
    compact = re.sub(r"\s+", "", obj)
    if "/Subtype/Form" in compact:
        return True
    if "/Subtype" in compact or "/PatternType2" in compact:
        return False
    return not any(k in compact for k in ("/Length1", "/Length2", "/Length3", "/FunctionType", "/Type/Metadata",
                                          "/Type/EmbeddedFile", "/Type/ObjStm", "/Type/XRef", "/N1", "/N3", "/N4"))


def page_objects(doc: Any, index: int, max_objects: int = 20_000) -> PageObjects:
    """Walk everything page ``index`` (0-based) can draw, each object once, at most ``max_objects``."""
    page_xref = doc.page_xref(index)
    out = PageObjects()
    roots: list[int] = []
    kind, value = _key(doc, page_xref, "Contents")
    if kind in ("xref", "array"):
        out.contents.extend(int(r) for r in _REF.findall(value))
    # resources, inherited from the page tree when the page has none of its own
    node, depth = page_xref, 0
    while node and depth < 32:
        kind, value = _key(doc, node, "Resources")
        if kind != "null":
            roots.extend(int(r) for r in _REF.findall(value))  # an indirect or a direct dictionary
            break
        kind, value = _key(doc, node, "Parent")
        node = int(_REF.findall(value)[0]) if kind == "xref" and _REF.findall(value) else 0
        depth += 1
    kind, value = _key(doc, page_xref, "Annots")
    annots = [int(r) for r in _REF.findall(value)] if kind in ("array", "xref") else []
    if kind == "xref" and annots:  # an indirect array
        annots = [int(r) for r in _REF.findall(doc.xref_object(annots[0], compressed=True))]
    out.annotations = len(annots)
    for a in annots[:2000]:
        kind, value = _key(doc, a, "AP")
        roots.extend(int(r) for r in _REF.findall(value))
    seen: set[int] = set(out.contents)
    data: set[int] = set()  # referenced as data (fonts, CMaps, profiles, masks): not content
    stack = list(reversed(roots))
    total = doc.xref_length()
    while stack:
        xref = stack.pop()
        if xref in seen or not 0 < xref < total:
            continue
        seen.add(xref)
        if len(seen) > max_objects:
            out.truncated = True
            break
        try:
            obj = doc.xref_object(xref, compressed=True)
            is_stream = doc.xref_is_stream(xref)
        except Exception:  # noqa: BLE001 - a broken object: MuPDF skips it too
            continue
        if is_stream:
            compact = re.sub(r"\s+", "", obj)
            if "/Subtype/Image" in compact:
                out.images.append(xref)
            elif xref not in data and _is_content(obj):
                out.contents.append(xref)
                if "/Subtype/Form" in compact:
                    out.forms.append(xref)
            else:
                continue  # a font program, profile, function: nothing it refers to is drawn
        data.update(int(r) for r in _DATA_KEYS.findall(obj))
        stack.extend(int(r) for r in reversed(_REF.findall(_SKIP_KEYS.sub(" ", obj))))
    out.visited = len(seen)
    return out


# -- stream headers ------------------------------------------------------------------------


def codestream_size(data: bytes) -> tuple[int, int] | None:
    """Width and height a JPEG 2000 stream declares in its SIZ marker (raw codestream or JP2 file)."""
    at = data.find(b"\xff\x4f\xff\x51")
    if at < 0 or len(data) < at + 4 + 2 + 2 + 16:
        return None
    xsiz, ysiz, xo, yo = struct.unpack(">IIII", data[at + 8: at + 24])
    return max(xsiz - xo, 0), max(ysiz - yo, 0)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height in a JPEG's first SOF marker."""
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", data[i + 2: i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5: i + 9])
            return width, height
        i += 2 + length
    return None


def jbig2_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of an embedded JBIG2 stream's page information segment (type 48)."""
    i = 0
    for _ in range(64):
        if i + 11 > len(data):
            return None
        flags = data[i + 4]
        kind, big_assoc = flags & 0x3F, bool(flags & 0x40)
        j = i + 5
        count = data[j] >> 5
        if count == 7:
            count = struct.unpack(">I", data[j: j + 4])[0] & 0x1FFFFFFF
            j += 4 + (count + 8) // 8
        else:
            j += 1
        number = struct.unpack(">I", data[i: i + 4])[0]
        j += count * (1 if number <= 256 else 2 if number <= 65536 else 4)
        j += 4 if big_assoc else 1
        if j + 4 > len(data):
            return None
        length = struct.unpack(">I", data[j: j + 4])[0]
        j += 4
        if kind == 48 and j + 8 <= len(data):
            width, height = struct.unpack(">II", data[j: j + 8])
            return width, height if height != 0xFFFFFFFF else 0
        if length == 0xFFFFFFFF:
            return None
        i = j + length
    return None


def image_size(head: bytes, filters: list[str]) -> tuple[int, int] | None:
    """The size an image stream's own header declares (JPX, DCT, JBIG2), from its first bytes."""
    last = filters[-1] if filters else ""
    if last in ("JPXDecode",):
        return codestream_size(head)
    if last in ("DCTDecode", "DCT"):
        return jpeg_size(head)
    if last == "JBIG2Decode":
        return jbig2_size(head)
    return None


def _head(raw: bytes, filters: list[str]) -> bytes:
    """The first bytes of the last filter's input: leading Flate layers inflated, at most 64 KB."""
    data = raw[: _HEADER_BYTES * 16]
    for name in filters[:-1]:
        if name not in ("FlateDecode", "Fl"):
            return b""
        try:
            data = zlib.decompressobj().decompress(data, _HEADER_BYTES)
        except zlib.error:
            return b""
    return data[:_HEADER_BYTES]


# -- the page guard ------------------------------------------------------------------------


def _declared(doc: Any, xref: int) -> tuple[int, int, list[str], str]:
    """(width, height, filters, how) for an image XObject: the larger of its dictionary and its
    stream header; ``how`` says where the size was read."""
    from ingest._budget import stream_filters

    width, height = _int(doc, xref, "Width", "W"), _int(doc, xref, "Height", "H")
    filters = stream_filters(doc, xref)
    if filters and filters[-1] == "CCITTFaxDecode":
        width = max(width, _int(doc, xref, "DecodeParms/Columns"))
        height = max(height, _int(doc, xref, "DecodeParms/Rows"))
    how = "its dictionary"
    head = b""
    if filters and filters[-1] in _HEADERED:
        try:
            head = _head(doc.xref_stream_raw(xref) or b"", filters)
        except Exception:  # noqa: BLE001 - unreadable data: MuPDF fails on it too, cheaply
            head = b""
    found = image_size(head, filters)
    if found is not None and found[0] * found[1] > width * height:
        how = f"its {filters[-1].replace('Decode', '')} stream header (the dictionary says {width}x{height})"
        width, height = found
    return width, height, filters, how


def _neutralise(doc: Any, xref: int) -> None:
    """Make image ``xref`` a 1x1 gray image in the open document (never saved)."""
    for key in ("Filter", "DecodeParms", "SMask", "Mask", "Decode", "JBIG2Globals", "SMaskInData"):
        doc.xref_set_key(xref, key, "null")
    doc.xref_set_key(xref, "Width", "1")
    doc.xref_set_key(xref, "Height", "1")
    doc.xref_set_key(xref, "BitsPerComponent", "8")
    doc.xref_set_key(xref, "ColorSpace", "/DeviceGray")
    doc.xref_set_key(xref, "ImageMask", "null")
    doc.update_stream(xref, b"\xff")


_INLINE = re.compile(rb"(?<![A-Za-z0-9_*])BI(?![A-Za-z0-9_*])(.*?)(?<![A-Za-z0-9_*])ID\s", re.DOTALL)
_INLINE_END = re.compile(rb"\sEI(?![A-Za-z0-9_*])")
_INLINE_ABBR = {b"/DCT": "DCTDecode", b"/DCTDecode": "DCTDecode", b"/JPXDecode": "JPXDecode",
                b"/JBIG2Decode": "JBIG2Decode", b"/Fl": "FlateDecode", b"/FlateDecode": "FlateDecode"}


def _inline_images(data: bytes, limit: int) -> tuple[bytes, list[str]]:
    """``data`` without its inline images above ``limit`` pixels, and one note per image cut."""
    notes: list[str] = []
    out: list[bytes] = []
    pos = 0
    for m in _INLINE.finditer(data):
        if m.start() < pos:
            continue
        head = m.group(1)
        w = re.search(rb"/(?:W|Width)\s+(\d+)", head)
        h = re.search(rb"/(?:H|Height)\s+(\d+)", head)
        width, height = int(w.group(1)) if w else 0, int(h.group(1)) if h else 0
        end = _INLINE_END.search(data, m.end())
        stop = end.end() if end else len(data)
        filt = re.search(rb"/(?:F|Filter)\s*\[?\s*((?:/\w+\s*)+)", head)
        names = [_INLINE_ABBR.get(b"/" + n, n.decode("latin-1")) for n in re.findall(rb"/(\w+)", filt.group(1))] if filt else []
        found = image_size(data[m.end(): m.end() + _HEADER_BYTES], names) if names else None
        how = "its dictionary"
        if found is not None and found[0] * found[1] > width * height:
            how = f"its {names[-1].replace('Decode', '')} header (the dictionary says {width}x{height})"
            width, height = found
        if width * height > limit:
            out.append(data[pos: m.start()])
            pos = stop
            notes.append(f"an inline image of {width}x{height} = {width * height:,} pixels (read from {how})")
    out.append(data[pos:])
    return b"".join(out), notes


def guard_page(doc: Any, index: int, max_image_pixels: int, walk: PageObjects | None = None) -> list[str]:
    """Refuse (neutralise) every image page ``index`` can draw whose size, read from its own
    stream header, exceeds ``max_image_pixels``; one note per refused image, saying why."""
    from ingest._budget import inflate_bounded, stream_filters

    walk = page_objects(doc, index) if walk is None else walk
    notes: list[str] = []
    limit = f"above ingest.max_image_pixels={max_image_pixels:,}; refused before decoding, the page is read without it"
    cache = doc_cache(doc)
    seen_images: set[int] = cache.setdefault(("images", max_image_pixels), set())
    seen_contents: set[int] = cache.setdefault(("inline", max_image_pixels), set())
    for xref in walk.images:
        if xref in seen_images:
            continue
        seen_images.add(xref)
        width, height, _filters, how = _declared(doc, xref)
        if width * height > max_image_pixels:
            _neutralise(doc, xref)
            notes.append(f"image object {xref} of {width}x{height} = {width * height:,} pixels (read from {how}) {limit}")
    for xref in walk.contents:
        if xref in seen_contents:
            continue
        seen_contents.add(xref)
        raw = doc.xref_stream_raw(xref) or b""
        data = inflate_bounded(raw, stream_filters(doc, xref))
        if data is None or b"BI" not in data:
            continue
        cleaned, cut = _inline_images(data, max_image_pixels)
        if cut:
            doc.update_stream(xref, cleaned)
            notes.extend(f"{c} in content object {xref} {limit}" for c in cut)
    return notes


@contextmanager
def pillow_limit(max_image_pixels: int) -> Iterator[None]:
    """Within the block, Pillow's own decompression-bomb limit follows ``ingest.max_image_pixels``
    (Pillow warns above its ``MAX_IMAGE_PIXELS`` and raises at twice it; left alone, its 179 MP
    default overrides ours). Restored afterwards: the setting is process-wide in Pillow."""
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_image_pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before

"""Printed page labels from a PDF's /PageLabels number tree, decoded to text.

PyMuPDF resolves the tree (kids, references) into one ``<</S/D/P(...)/St 1>>`` rule per range;
its own ``Page.get_label`` then splits that text on ``/`` and drops parentheses, so a prefix
stays undecoded (a beamer talk's ``<FEFF0031>`` for "1", ``\\303\\251`` for "é") and a prefix
holding ``/`` or ``(`` breaks. Here each rule is tokenized as PDF syntax and its prefix decoded
by :func:`rag.pdf_strings.decode_pdf_bytes`; numbering follows PDF 32000-1 §12.4.2.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from rag.pdf_strings import decode_pdf_bytes

__all__ = ["LabelRule", "parse_rule", "format_label", "page_labels"]

log = logging.getLogger("mmrag.ingest")

_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "b": b"\b", "f": b"\f", "(": b"(", ")": b")", "\\": b"\\"}
_NAME = re.compile(r"/([^\s/<>\[\]()]*)")
_NUMBER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True, slots=True)
class LabelRule:
    """One range of pages: from ``start`` (0-based page index), ``style`` (D, r, R, a, A or
    none), ``prefix`` text, and the number its first page gets (``first``)."""

    start: int
    style: str | None = None
    prefix: str = ""
    first: int = 1


def _literal(text: str, i: int) -> tuple[bytes, int]:
    """The bytes of the literal string opening at ``text[i] == "("``, and the index after it."""
    out, depth, i = bytearray(), 1, i + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            octal = re.match(r"[0-7]{1,3}", text[i + 1 : i + 4])
            if octal:
                out.append(int(octal.group(0), 8) & 0xFF)
                i += 1 + len(octal.group(0))
                continue
            if nxt in "\r\n":  # a line continuation
                i += 2 + (nxt == "\r" and text[i + 2 : i + 3] == "\n")
                continue
            out += _ESCAPES.get(nxt, nxt.encode("latin-1", errors="replace"))
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return bytes(out), i + 1
        out += ch.encode("latin-1", errors="ignore") if ord(ch) < 256 else ch.encode("utf-8")
        i += 1
    return bytes(out), i


def parse_rule(start: int, rule: str) -> LabelRule:
    """A rule dictionary as PyMuPDF prints it (``<</S/r/P<FEFF0041>/St 3>>``)."""
    values: dict[str, Any] = {}
    key: str | None = None
    i, body = 0, rule.strip()
    if body.startswith("<<"):
        body = body[2:]
    while i < len(body):
        ch = body[i]
        if ch.isspace() or body.startswith(">>", i):
            i += 2 if ch == ">" else 1
            continue
        value: Any
        if ch == "/":
            m = _NAME.match(body, i)
            assert m is not None  # "/" always matches
            i = m.end()
            if key is None:
                key = m.group(1)
                continue
            value = m.group(1)
        elif ch == "(":
            value, i = _literal(body, i)
        elif ch == "<":
            end = body.find(">", i)
            end = len(body) if end < 0 else end
            digits = re.sub(r"[^0-9A-Fa-f]", "", body[i + 1 : end])
            value, i = bytes.fromhex(digits + "0" * (len(digits) % 2)), end + 1
        elif m := _NUMBER.match(body, i):
            value, i = int(m.group(0)), m.end()
        else:  # something this reader does not know: skip one character
            i += 1
            continue
        if key is not None:
            values[key] = value
            key = None
    prefix = values.get("P", b"")
    first = values.get("St", 1)
    style = values.get("S")
    return LabelRule(
        start,
        style if isinstance(style, str) and style else None,
        decode_pdf_bytes(prefix) if isinstance(prefix, bytes) else "",
        first if isinstance(first, int) and first >= 1 else 1,
    )


def _roman(n: int) -> str:
    out = []
    for value, numeral in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                           (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        count, n = divmod(n, value)
        out.append(numeral * count)
    return "".join(out)


def format_label(rule: LabelRule, index: int) -> str:
    """The label of the page at 0-based ``index`` under ``rule``."""
    n = index - rule.start + rule.first
    style = rule.style
    if style == "D":
        number = str(n)
    elif style in ("r", "R"):
        number = _roman(n) if style == "R" else _roman(n).lower()
    elif style in ("a", "A"):  # a..z, then aa..zz, aaa..
        letter = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        number = letter.upper() if style == "A" else letter
    else:
        number = ""
    return rule.prefix + number


def page_labels(doc: Any) -> list[str | None]:
    """The printed label of every page of a PyMuPDF document (``None`` where a page has none)."""
    count = doc.page_count
    try:
        raw = doc._get_page_labels() if doc.is_pdf else []
    except Exception as exc:  # noqa: BLE001 - a broken label tree must not fail the document
        log.warning("%s: unreadable /PageLabels (%s); pages keep no printed label", doc.name, exc)
        return [None] * count
    rules = sorted((parse_rule(int(start), str(text)) for start, text in raw), key=lambda r: r.start)
    labels: list[str | None] = [None] * count
    for k, rule in enumerate(rules):
        end = rules[k + 1].start if k + 1 < len(rules) else count
        for index in range(max(0, rule.start), min(end, count)):
            labels[index] = format_label(rule, index) or None
    return labels

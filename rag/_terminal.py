"""Text made safe to write to a terminal: pure functions, no I/O.

File names and document text are data, not terminal commands: an ESC, a bell, a C1 control, a
bidirectional override or a lone surrogate (a file name that is not UTF-8) in them is shown as
an escape (``\\x1b``, ``\\u202e``, ``\\udcff``) instead of being written raw, where it could
recolour, clear or retitle the terminal, or make a line read backwards.
"""

from __future__ import annotations

import re

__all__ = ["shown", "json_safe_for_terminal", "not_utf8"]

#: C0 and C1 controls and DEL, bidirectional embeddings/overrides/isolates, line and paragraph
#: separators, and lone surrogates; newline and tab are kept by :func:`shown` when asked.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: object, *, keep_lines: bool = False) -> str:
    """``str(text)`` with every control character, bidi override and lone surrogate escaped;
    with ``keep_lines``, newlines and tabs stay (answer text, multi-line summaries)."""
    return (_UNSAFE_KEEP_LINES if keep_lines else _UNSAFE).sub(_escape, str(text))


def json_safe_for_terminal(text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with the characters
    :func:`shown` escapes written as JSON ``\\uXXXX`` escapes: the same JSON value, no raw
    control character on the terminal (``json.dumps`` itself leaves DEL, C1 controls, bidi
    overrides and lone surrogates raw)."""
    # json.dumps already escapes C0 controls inside strings; the newlines left are its indentation
    return _UNSAFE_KEEP_LINES.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def not_utf8(text: str) -> bool:
    """Whether ``text`` holds lone surrogates: bytes that were not UTF-8 (an argument or a
    file name decoded with ``surrogateescape``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

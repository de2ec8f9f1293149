"""Server-sent events as sent by OpenAI-compatible chat endpoints, parsed strictly.

A stream is lines: ``data: <json>`` events separated by blank lines, ``: comment`` keep-alives,
optional ``event:``/``id:``/``retry:`` fields, and a final ``data: [DONE]``. Anything else is a
protocol error (:class:`SSEError`): a proxy's HTML error page, a truncated stream, a server
that does not speak the protocol.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["SSEError", "DONE", "iter_sse_data", "iter_chat_deltas"]

DONE = "[DONE]"
_FIELDS = ("data", "event", "id", "retry")


class SSEError(ValueError):
    """The byte stream is not a well-formed chat-completions event stream."""


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Yield the data of each event (multi-line data joined by newlines), up to ``[DONE]``.

    Raises :class:`SSEError` on a line that is no SSE field, or when the stream ends without
    ``data: [DONE]``.
    """
    data: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload.strip() == DONE:
                    return
                yield payload
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if not sep or name not in _FIELDS:
            raise SSEError(f"line {number} is not a server-sent event: {line[:80]!r}")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data and "\n".join(data).strip() == DONE:
        return
    raise SSEError("the stream ended before 'data: [DONE]' (truncated)")


def _content(chunk: Any) -> str:
    if not isinstance(chunk, dict):
        raise SSEError(f"event is not a JSON object: {str(chunk)[:80]!r}")
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise SSEError(f"the server reported an error in the stream: {message}")
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise SSEError(f"event has no 'choices' list: {json.dumps(chunk)[:120]}")
    if not choices:  # e.g. the final usage chunk
        return ""
    delta = choices[0].get("delta") if isinstance(choices[0], dict) else None
    if not isinstance(delta, dict):
        raise SSEError(f"event has no 'choices[0].delta' object: {json.dumps(chunk)[:120]}")
    content = delta.get("content")
    return content if isinstance(content, str) else ""


def iter_chat_deltas(lines: Iterable[str]) -> Iterator[str]:
    """The ``choices[0].delta.content`` text of each chunk of a chat-completions stream."""
    for payload in iter_sse_data(lines):
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise SSEError(f"event data is not JSON ({exc.msg}): {payload[:80]!r}") from exc
        text = _content(chunk)
        if text:
            yield text

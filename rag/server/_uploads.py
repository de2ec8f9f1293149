"""Receive a multipart upload as it streams in: each file part goes straight into a temporary
file inside the knowledge base, its bytes counted as they arrive, and the request is refused
(413) the moment one file passes the limit, so nothing above the limit is ever written, whether
the body came chunked or with a Content-Length. Names are checked from the part's headers,
before its bytes are read.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from rag.server._security import safe_upload_name

__all__ = ["Received", "Upload", "receive_files", "receive_upload", "UPLOAD_BODY", "MAX_FILES", "TEXT_FIELDS"]

#: Files in one upload request.
MAX_FILES = 100
_FIELD = "files"
#: The text fields an upload may carry beside its files, with their limits in bytes.
TEXT_FIELDS: dict[str, int] = {"metadata": 20_000}

#: The request body of ``POST /api/documents`` for the OpenAPI schema (the route reads the
#: stream itself, so FastAPI cannot infer it).
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        _FIELD: {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": f"documents: PDF, images, Office, HTML, Markdown, text, e-books, video (at most {MAX_FILES})",
                        },
                        "metadata": {
                            "type": "string",
                            "maxLength": TEXT_FIELDS["metadata"],
                            "description": 'metadata of these files, a JSON object: {"team": "finance", "year": 2025}',
                        },
                    },
                    "required": [_FIELD],
                }
            }
        },
    }
}


@dataclass(frozen=True)
class Received:
    """One uploaded file, whole, in a temporary file beside its final place."""

    name: str  # the safe file name (:func:`safe_upload_name`)
    tmp: Path
    size: int


@dataclass(frozen=True)
class Upload:
    """A whole upload: its files (in temporary files) and its text fields (``metadata``)."""

    files: list[Received]
    fields: dict[str, str]


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str | None = None  # a file part's safe name; None for a part that is skipped
    fh: Any = None
    tmp: Path | None = None
    size: int = 0
    text_field: str | None = None  # a text field's name (:data:`TEXT_FIELDS`)
    text: bytearray = field(default_factory=bytearray)


class _Receiver:
    """The callbacks of python-multipart's streaming parser, writing file parts to ``folder``."""

    def __init__(self, folder: Path, max_file_bytes: int, suffixes: frozenset[str]) -> None:
        self.folder = folder
        self.max_file_bytes = max_file_bytes
        self.suffixes = suffixes
        self.part = _Part()
        self.received: list[Received] = []
        self.fields: dict[str, str] = {}
        self.open_tmp: list[Path] = []
        self.ended = False
        self._header_name = b""
        self._header_value = b""

    # python-multipart callbacks ------------------------------------------------------------
    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]
        if len(self._header_name) > 1024:
            raise HTTPException(400, "a multipart header name is longer than 1024 bytes")

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        if len(self._header_value) > 8192:
            raise HTTPException(400, "a multipart header is longer than 8192 bytes")

    def on_header_end(self) -> None:
        if len(self.part.headers) >= 32:
            raise HTTPException(400, "a multipart part has more than 32 headers")
        self.part.headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("latin-1")
        if name in TEXT_FIELDS and b"filename" not in options:
            self.part.text_field = name
            return
        if name != _FIELD:
            return  # another form field: read past it, keep nothing
        if b"filename" not in options:
            raise HTTPException(400, f"the {_FIELD!r} part has no filename: send each file as a file part (curl -F 'files=@report.pdf')")
        if len(self.received) + 1 > MAX_FILES:
            raise HTTPException(400, f"more than {MAX_FILES} files in one upload; send at most {MAX_FILES} per request")
        name = safe_upload_name(_decode(options[b"filename"]), self.suffixes)  # ConfigError: 400
        if name in {r.name for r in self.received}:
            raise HTTPException(400, f"two files of this upload have the same name: {name!r}")
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=self.folder)
        self.part.name, self.part.tmp = name, Path(tmp)
        self.open_tmp.append(Path(tmp))
        self.part.fh = os.fdopen(fd, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.text_field is not None:
            self.part.text += data[start:end]
            limit = TEXT_FIELDS[self.part.text_field]
            if len(self.part.text) > limit:
                raise HTTPException(413, f"the {self.part.text_field!r} field is longer than {limit} bytes")
            return
        if self.part.fh is None:
            return
        self.part.size += end - start
        if self.part.size > self.max_file_bytes:
            raise HTTPException(413, f"{self.part.name}: larger than the upload limit of {self.max_file_bytes} bytes")
        self.part.fh.write(data[start:end])

    def on_part_end(self) -> None:
        part = self.part
        if part.text_field is not None:
            self.fields[part.text_field] = _decode(bytes(part.text))
            return
        if part.fh is None or part.name is None or part.tmp is None:
            return
        part.fh.close()
        part.fh = None
        if part.size == 0:
            raise HTTPException(400, f"{part.name}: the uploaded file is empty")
        self.received.append(Received(part.name, part.tmp, part.size))

    def on_end(self) -> None:
        self.ended = True

    def callbacks(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end", "on_headers_finished",
            "on_part_data", "on_part_end", "on_end",
        )}

    def discard(self) -> None:
        if self.part.fh is not None:
            self.part.fh.close()
        for tmp in self.open_tmp:
            tmp.unlink(missing_ok=True)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def receive_files(
    headers: Mapping[str, str], stream: AsyncIterator[bytes], folder: Path, *, max_file_bytes: int, suffixes: frozenset[str]
) -> list[Received]:
    """The files of :func:`receive_upload` (its text fields are read and dropped)."""
    upload = await receive_upload(headers, stream, folder, max_file_bytes=max_file_bytes, suffixes=suffixes)
    return upload.files


async def receive_upload(
    headers: Mapping[str, str], stream: AsyncIterator[bytes], folder: Path, *, max_file_bytes: int, suffixes: frozenset[str]
) -> Upload:
    """Every ``files`` part of a ``multipart/form-data`` body, each in a temporary file in
    ``folder``; all or none: on any refusal the temporary files are removed and an
    :class:`HTTPException` (400, 413, 415) or :class:`rag.errors.ConfigError` (a file name or type
    that cannot be accepted) says why. The :data:`TEXT_FIELDS` (bounded) come back as text."""
    kind, params = parse_options_header(headers.get("content-type", ""))
    if kind != b"multipart/form-data":
        raise HTTPException(415, f"expected a multipart/form-data body with {_FIELD!r} file parts, got {kind.decode('latin-1')[:100] or 'no content type'!r}")
    boundary = params.get(b"boundary", b"")
    if not boundary or len(boundary) > 200:
        raise HTTPException(400, "the multipart/form-data content type has no usable boundary")
    folder.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(folder, max_file_bytes, suffixes)
    try:
        parser = MultipartParser(boundary, receiver.callbacks())
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
        if not receiver.ended:
            raise HTTPException(400, "the multipart body ended before its closing boundary (a truncated upload?)")
        if not receiver.received:
            raise HTTPException(400, f"no files in the upload: send them as {_FIELD!r} file parts")
        return Upload(receiver.received, receiver.fields)
    except MultipartParseError as exc:
        receiver.discard()
        raise HTTPException(400, f"the multipart body cannot be parsed ({type(exc).__name__})") from None
    except BaseException:
        receiver.discard()
        raise

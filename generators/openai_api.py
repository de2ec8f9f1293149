"""Answers from any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, Ollama...).

Page images and figure crops are sent as ``data:image/...;base64,`` URLs, encoded from their
files at request time and never stored. With streaming (``on_token`` given, or :meth:`stream`)
the server-sent events are parsed strictly (:mod:`generators._sse`).

The answer is checked against its citations (:mod:`generators.grounding`): a marker whose
evidence does not hold the claims it is placed after is removed and its sentence listed in
``Answer.unsupported``. ``on_token`` still receives the raw text as it streams; the returned
Answer is the checked one.

Retries: connection failures (refused, dropped before a response), HTTP 429 and 5xx are retried up to ``max_retries`` times with
exponential backoff (``backoff * 2**attempt`` seconds), or the server's ``Retry-After`` when it
sends one (capped at 60 s). Read timeouts and other HTTP errors are not retried. Every failure
raises :class:`rag.errors.GeneratorError` naming the endpoint, the model and the cause.

The API key is read from the environment variable ``api_key_env`` at request time and sent as
``Authorization: Bearer``; it is never logged nor put in an error message. Without the variable
no ``Authorization`` header is sent (local servers need none).
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import ConfigError, GeneratorError
from rag.lazy import require
from rag.types import Answer, Hit

from generators._sse import SSEError, iter_chat_deltas
from generators.base import (
    SYSTEM_PROMPT,
    ContextItem,
    Stopwatch,
    TokenCallback,
    build_context,
    build_prompt,
    image_caption,
    select_images,
)
from generators.markers import cited_answer

if TYPE_CHECKING:
    import httpx

__all__ = ["OpenAIChatGenerator", "image_data_url"]

logger = logging.getLogger(__name__)

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif"}
_MAX_WAIT_S = 60.0


def image_data_url(path: str | Path) -> str:
    """A ``data:`` URL of an image file (PNG/JPEG/WebP/GIF as is; other formats converted to PNG)."""
    p = Path(path)
    mime = _MIME.get(p.suffix.lower())
    if mime is not None:
        data = p.read_bytes()
    else:
        import io

        from PIL import Image

        with Image.open(p) as image:
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="PNG")
        data, mime = buffer.getvalue(), "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


def _server_message(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        error = json.loads(text).get("error")
    except (json.JSONDecodeError, AttributeError):
        return text[:300] or "(empty body)"
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error)[:300] if error else text[:300]


class OpenAIChatGenerator:
    """A generator backed by an OpenAI-compatible chat-completions endpoint."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        max_images: int = 3,
        max_items: int = 8,
        max_tokens: int | None = None,
        temperature: float | None = 0.0,
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must be an http(s) URL like http://localhost:8000/v1, got {base_url!r}")
        if max_retries < 0 or backoff < 0 or timeout <= 0:
            raise ConfigError("max_retries and backoff must be >= 0 and timeout > 0")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.transport = transport
        self.max_images = max_images
        self.max_items = max_items
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.name = f"openai:{model}"
        self._client: Any = None
        self._sleep = time.sleep

    def __repr__(self) -> str:
        return f"OpenAIChatGenerator(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def _where(self) -> str:
        return f"OpenAI-compatible endpoint {self.base_url} (model {self.model})"

    def load(self) -> OpenAIChatGenerator:
        """Create the HTTP client (idempotent). No request is made."""
        if self._client is None:
            httpx = require("httpx", "api", "OpenAI-compatible generators")
            self._client = httpx.Client(timeout=self.timeout, transport=self.transport)
        return self

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> OpenAIChatGenerator:
        return self.load()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------

    def build_messages(self, question: str, items: Sequence[ContextItem]) -> list[dict[str, Any]]:
        """System + user messages; the user content holds captioned images and the evidence."""
        content: list[dict[str, Any]] = []
        for item in select_images(items, self.max_images):
            try:
                url = image_data_url(item.visual)  # type: ignore[arg-type]
            except OSError as exc:
                logger.warning("cannot read image %s for [%d]: %s; sent without it", item.visual, item.marker, exc)
                continue
            content.append({"type": "text", "text": image_caption(item)})
            content.append({"type": "image_url", "image_url": {"url": url}})
        content.append({"type": "text", "text": build_prompt(question, items)})
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]

    def _payload(self, messages: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "stream": stream}
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        return payload

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _open(self, payload: dict[str, Any]) -> httpx.Response:
        """POST with retries; returns an open response with status 200 (caller closes it)."""
        import httpx

        self.load()
        url = f"{self.base_url}/chat/completions"
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            wait = self.backoff * 2**attempt
            try:
                request = self._client.build_request("POST", url, json=payload, headers=self._headers())
                response = self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                cause = f"cannot connect ({type(exc).__name__}: {exc})"
            except httpx.RemoteProtocolError as exc:  # dropped before any response: safe to retry
                cause = f"connection dropped ({exc})"
            except httpx.TimeoutException as exc:
                raise GeneratorError(f"{self._where}: no response within {self.timeout}s ({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                raise GeneratorError(f"{self._where}: request failed: {type(exc).__name__}: {exc}") from exc
            else:
                if response.status_code == 200:
                    return response
                try:
                    message = _server_message(response.read())
                except httpx.HTTPError as exc:
                    message = f"(body unreadable: {exc})"
                finally:
                    response.close()
                cause = f"HTTP {response.status_code}: {message}"
                if response.status_code != 429 and response.status_code < 500:
                    raise GeneratorError(f"{self._where}: {cause}")
                after = _retry_after(response.headers.get("Retry-After"))
                if after is not None:
                    wait = min(after, _MAX_WAIT_S)
            if attempt + 1 < attempts:
                logger.warning("%s: %s; retry %d/%d in %.2fs", self._where, cause, attempt + 1, self.max_retries, wait)
                self._sleep(wait)
        raise GeneratorError(f"{self._where}: {cause} (gave up after {attempts} attempt(s))")

    def _read_json(self, response: httpx.Response) -> Any:
        import httpx

        try:
            body = response.read()
        except httpx.TimeoutException as exc:
            raise GeneratorError(f"{self._where}: response timed out after {self.timeout}s") from exc
        except httpx.HTTPError as exc:
            raise GeneratorError(f"{self._where}: response broken: {type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GeneratorError(f"{self._where}: response is not JSON: {body[:120]!r}") from exc

    def _message_text(self, data: Any) -> str:
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            if isinstance(data, dict) and "error" in data:
                raise GeneratorError(f"{self._where}: server error: {_server_message(json.dumps(data).encode())}") from exc
            raise GeneratorError(
                f"{self._where}: unexpected response, no choices[0].message.content: {json.dumps(data)[:200]}"
            ) from exc
        if content is None:
            return ""
        if not isinstance(content, str):
            raise GeneratorError(f"{self._where}: message content is not text: {json.dumps(content)[:200]}")
        return content

    def _chat(self, messages: list[dict[str, Any]], stream: bool) -> Iterator[str]:
        import httpx

        response = self._open(self._payload(messages, stream))
        try:
            if not stream or response.headers.get("content-type", "").startswith("application/json"):
                yield self._message_text(self._read_json(response))
                return
            try:
                yield from iter_chat_deltas(response.iter_lines())
            except SSEError as exc:
                raise GeneratorError(f"{self._where}: malformed event stream: {exc}") from exc
            except httpx.TimeoutException as exc:
                raise GeneratorError(f"{self._where}: stream stalled for {self.timeout}s") from exc
            except httpx.HTTPError as exc:
                raise GeneratorError(f"{self._where}: stream broken: {type(exc).__name__}: {exc}") from exc
        finally:
            response.close()

    # -- the generator role ----------------------------------------------------------------

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[str]:
        """The raw answer text in pieces as the server streams it."""
        items = build_context(hits, max_items=self.max_items)
        yield from self._chat(self.build_messages(question, items), stream=True)

    def generate(
        self, question: str, hits: Sequence[Hit], *, on_token: TokenCallback | None = None, phrases: Sequence[str] | None = None
    ) -> Answer:
        """Answer with citations; streams when ``on_token`` is given, else one JSON response."""
        watch = Stopwatch()
        items = build_context(hits, max_items=self.max_items)
        messages = self.build_messages(question, items)
        watch.lap("prepare")
        raw = "".join(watch.iterate(self._chat(messages, stream=on_token is not None), on_token))
        watch.lap("generate")
        return cited_answer(self.name, question, raw, items, hits, watch.timings, check=True)

    def complete(self, prompt: str) -> str:
        """Plain completion of a text prompt (one user message, no streaming)."""
        return "".join(self._chat([{"role": "user", "content": prompt}], stream=False)).strip()

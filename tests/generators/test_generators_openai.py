"""The OpenAI-compatible generator against replayed wire traffic and a real loopback server."""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from generators.base import StreamingGenerator
from generators.openai_api import OpenAIChatGenerator
from rag.errors import GeneratorError
from rag.types import BBox, Evidence, Hit

from _doubles import HTTPRecorder

BASE = "http://llm.test/v1"
SECRET = "sk-test-0123456789abcdef"


def chunk(content: str | None = None, *, role: bool = False, finish: str | None = None) -> dict:
    delta: dict = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-9abc",
        "object": "chat.completion.chunk",
        "created": 1732240000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def sse(*events: dict | str, done: bool = True) -> bytes:
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


STREAM = sse(
    chunk("", role=True),
    chunk("The panel is"),
    chunk(" inspected every 6 months [1]"),
    chunk(", fault E21 means high voltage [2]."),
    chunk(finish="stop"),
)


def completion(content: str) -> dict:
    return {
        "id": "chatcmpl-9abd",
        "object": "chat.completion",
        "created": 1732240001,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content, "refusal": None}, "logprobs": None,
             "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 812, "completion_tokens": 17, "total_tokens": 829},
    }


@pytest.fixture
def hits(tmp_path) -> list[Hit]:
    page = tmp_path / "page3.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(page)
    return [
        Hit("d1", "manual.pdf", 3, 0.9, "text", image_path=page,
            evidence=(Evidence("text", "chunk", "Inspect the panel every 6 months.", 0.9, BBox(50, 100, 500, 160)),)),
        Hit("d1", "manual.pdf", 5, 0.7, "text",
            evidence=(Evidence("text", "chunk", "Fault E21: grid voltage too high.", 0.7, BBox(40, 60, 300, 90)),)),
    ]


def generator(recorder: HTTPRecorder, **options) -> OpenAIChatGenerator:
    gen = OpenAIChatGenerator("gpt-4o-mini", base_url=BASE, transport=httpx.MockTransport(recorder), **options)
    gen._sleep = lambda s: recorder.__dict__.setdefault("waits", []).append(s)
    return gen


def event_stream(body: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def test_sse_parser_joins_multiline_data_and_skips_comments_and_fields():
    from generators._sse import SSEError, iter_sse_data

    lines = [": ping", "event: message", "id: 7", "data: {\"a\":", "data: 1}", "", "retry: 10", "data: [DONE]", ""]
    assert list(iter_sse_data(lines)) == ['{"a":\n1}']
    assert list(iter_sse_data(["data: x\r\n", "\r\n", "data: [DONE]"])) == ["x"]  # CRLF, DONE at EOF
    with pytest.raises(SSEError, match="truncated"):
        list(iter_sse_data(["data: x", ""]))


def test_streamed_answer_sends_images_and_key_and_cites_pages(hits, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    rec = HTTPRecorder(event_stream(STREAM))
    tokens: list[str] = []
    answer = generator(rec).generate("How often is the panel inspected?", hits, on_token=tokens.append)

    assert tokens == ["The panel is", " inspected every 6 months [1]", ", fault E21 means high voltage [2]."]
    assert answer.text == "".join(tokens)
    assert [(c.marker, c.page) for c in answer.citations] == [(1, 3), (2, 5)]
    assert answer.generator == "openai:gpt-4o-mini"

    request = rec.requests[0]
    assert str(request.url) == f"{BASE}/chat/completions"
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    body = rec.body()
    assert (body["model"], body["stream"]) == ("gpt-4o-mini", True)
    user = body["messages"][1]["content"]
    images = [part["image_url"]["url"] for part in user if part["type"] == "image_url"]
    page_bytes = Path(hits[0].image_path).read_bytes()
    assert images == ["data:image/png;base64," + base64.b64encode(page_bytes).decode()]
    prompt = user[-1]["text"]
    assert "[1] manual.pdf, page 3" in prompt and "How often is the panel inspected?" in prompt
    assert "base64" not in repr(answer)  # images are encoded for the request only


def test_non_streaming_answer_strips_markers_for_evidence_not_given(hits, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    rec = HTTPRecorder(httpx.Response(200, json=completion("Every 6 months [1], see also [7].")))
    answer = generator(rec, max_tokens=64).generate("How often?", hits)
    assert rec.body()["stream"] is False and rec.body()["max_tokens"] == 64
    assert "authorization" not in rec.requests[0].headers
    assert answer.text == "Every 6 months [1], see also."
    assert [c.marker for c in answer.citations] == [1]


def test_at_most_max_images_are_sent(tmp_path):
    many = []
    for i in range(1, 6):
        page = tmp_path / f"p{i}.webp"
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(page)
        many.append(Hit("d", "d.pdf", i, 1 / i, "pages", image_path=page))
    rec = HTTPRecorder(httpx.Response(200, json=completion("ok")))
    generator(rec, max_images=2).generate("q", many)
    urls = [p["image_url"]["url"] for p in rec.body()["messages"][1]["content"] if p["type"] == "image_url"]
    assert len(urls) == 2 and all(u.startswith("data:image/webp;base64,") for u in urls)
    assert base64.b64decode(urls[1].split(",", 1)[1]) == (tmp_path / "p2.webp").read_bytes()


def test_complete_returns_the_message_text():
    rec = HTTPRecorder(httpx.Response(200, json=completion('{"corpora": ["text"]}')))
    assert generator(rec).complete("Route: ...") == '{"corpora": ["text"]}'
    assert rec.body()["messages"] == [{"role": "user", "content": "Route: ..."}]


def test_429_is_retried_after_the_servers_retry_after(hits):
    rate_limited = httpx.Response(
        429, headers={"Retry-After": "2"}, json={"error": {"message": "Rate limit reached", "type": "requests"}}
    )
    rec = HTTPRecorder(rate_limited, event_stream(STREAM))
    answer = generator(rec).generate("q", hits, on_token=lambda t: None)
    assert len(rec.requests) == 2
    assert rec.waits == [2.0]
    assert answer.text.startswith("The panel is inspected")


def test_connection_dropped_before_a_response_is_retried(hits):
    rec = HTTPRecorder(httpx.RemoteProtocolError("Server disconnected without sending a response."), event_stream(STREAM))
    gen = generator(rec)
    assert isinstance(gen, StreamingGenerator)
    answer = gen.generate("q", hits, on_token=lambda t: None)
    assert len(rec.requests) == 2 and rec.waits == [0.5]
    assert [c.page for c in answer.citations] == [3, 5]


def test_5xx_and_connect_errors_back_off_exponentially_then_give_up(hits):
    rec = HTTPRecorder(
        httpx.ConnectError("connection reset"),
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.Response(500, json={"error": {"message": "The server had an error"}}),
    )
    with pytest.raises(GeneratorError) as info:
        generator(rec, max_retries=2, backoff=0.5).generate("q", hits)
    assert len(rec.requests) == 3
    assert rec.waits == [0.5, 1.0]
    message = str(info.value)
    assert BASE in message and "HTTP 500" in message and "The server had an error" in message and "3 attempt" in message


def test_401_is_not_retried_and_names_the_cause_without_leaking_the_key(hits, monkeypatch, caplog):
    monkeypatch.setenv("MY_KEY", SECRET)
    error = {"error": {"message": "Incorrect API key provided: sk-test-***cdef.", "type": "invalid_request_error",
                       "code": "invalid_api_key"}}
    rec = HTTPRecorder(httpx.Response(401, json=error))
    with caplog.at_level(logging.DEBUG), pytest.raises(GeneratorError) as info:
        generator(rec, api_key_env="MY_KEY").generate("q", hits)
    assert len(rec.requests) == 1
    assert "HTTP 401" in str(info.value) and "Incorrect API key provided" in str(info.value) and BASE in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in caplog.text


@pytest.mark.parametrize(
    ("response", "stream", "cause"),
    [
        (httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>login</html>"), False, "not JSON"),
        (httpx.Response(200, json={"object": "list", "data": []}), False, r"no choices\[0\]\.message\.content"),
        (event_stream(sse(chunk("The panel"), chunk(" is"), done=False)), True, "truncated"),
        (event_stream(b"data: " + json.dumps(chunk("ok")).encode() + b"\n\n<html>proxy error</html>\n"), True,
         "not a server-sent event"),
        (event_stream(sse(chunk("x"), "{not json")), True, "not JSON"),
        (event_stream(sse(chunk("x"), {"error": {"message": "model overloaded"}})), True, "model overloaded"),
    ],
    ids=["html-body", "wrong-json", "truncated-stream", "garbage-line", "bad-event-json", "error-event"],
)
def test_malformed_responses_raise_generator_error(hits, response, stream, cause):
    rec = HTTPRecorder(response)
    on_token = (lambda t: None) if stream else None
    with pytest.raises(GeneratorError, match=cause) as info:
        generator(rec).generate("q", hits, on_token=on_token)
    assert BASE in str(info.value)


def test_base_url_without_scheme_is_a_config_error():
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="http://localhost:8000/v1"):
        OpenAIChatGenerator("m", base_url="localhost:8000/v1")


def test_read_timeout_is_reported_not_retried(hits):
    rec = HTTPRecorder(httpx.ReadTimeout("timed out"))
    with pytest.raises(GeneratorError, match="no response within 5.0s"):
        generator(rec, timeout=5.0).generate("q", hits)
    assert len(rec.requests) == 1


def test_connection_refused_over_the_real_network(hits):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    gen = OpenAIChatGenerator("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff=0.0)
    with pytest.raises(GeneratorError, match=rf"127\.0\.0\.1:{port}.*cannot connect.*2 attempt"):
        gen.generate("q", hits)


class _ChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _ChatHandler.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(b": keep-alive\n\n")
        for part in STREAM.split(b"\n\n"):
            if part:
                self.wfile.write(part + b"\n\n")
                self.wfile.flush()

    def log_message(self, *args) -> None:
        pass


def test_streams_from_a_real_loopback_http_server(hits, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        tokens: list[str] = []
        with OpenAIChatGenerator("local-model", base_url=base, timeout=10.0) as gen:
            answer = gen.generate("How often is the panel inspected?", hits, on_token=tokens.append)
            streamed = "".join(gen.stream("again?", hits))
    finally:
        server.shutdown()
        server.server_close()
    assert answer.text == "".join(tokens) == streamed
    assert answer.text == "The panel is inspected every 6 months [1], fault E21 means high voltage [2]."
    assert [c.page for c in answer.citations] == [3, 5]
    first = _ChatHandler.seen[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == f"Bearer {SECRET}"
    assert first["body"]["stream"] is True and first["body"]["model"] == "local-model"


# -- answers checked against their citations (generators.grounding) ---------------------------
class _ScriptedChat(BaseHTTPRequestHandler):
    """A loopback OpenAI-compatible server whose answer is ``reply(user prompt)``: streamed as
    server-sent events when the request asks for a stream, else one JSON completion."""

    protocol_version = "HTTP/1.0"
    reply: Callable[[str], str] = staticmethod(lambda prompt: "")

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"][-1]["text"]
        text = type(self).reply(prompt)
        self.send_response(200)
        if body["stream"]:
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            words = text.split(" ")
            pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
            self.wfile.write(sse(chunk("", role=True), *(chunk(p) for p in pieces), chunk(finish="stop")))
        else:
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(completion(text)).encode())

    def log_message(self, *args) -> None:
        pass


@contextmanager
def scripted_server(reply: Callable[[str], str]) -> Iterator[str]:
    """The base URL of a loopback chat server answering ``reply(prompt)``."""
    handler = type("Handler", (_ScriptedChat,), {"reply": staticmethod(reply)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


SUPPORTED = "The panel is inspected every 6 months [1]."
WRONG_NUMBER = "Fault E21 means the grid voltage is above 253 V [2]."
WRONG_MARKER = "Fault E21 means the grid voltage is too high [1]."
UNKNOWN_NAME = "Fault E21 grid voltage alarms come from Siemens inverters [2]."
SCRIPT = " ".join([SUPPORTED, WRONG_NUMBER, WRONG_MARKER, UNKNOWN_NAME])


def _uncited(sentence: str) -> str:
    return sentence.replace(" [1]", "").replace(" [2]", "")


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "json"])
def test_a_loopback_answer_is_checked_against_its_citations(hits, streamed):
    tokens: list[str] = []
    with scripted_server(lambda prompt: SCRIPT) as base, OpenAIChatGenerator("m", base_url=base, timeout=10.0) as gen:
        answer = gen.generate("What does fault E21 mean?", hits, on_token=tokens.append if streamed else None)
    if streamed:
        assert "".join(tokens) == SCRIPT  # the raw text streams as the model wrote it
    assert answer.text == " ".join([SUPPORTED, *map(_uncited, (WRONG_NUMBER, WRONG_MARKER, UNKNOWN_NAME))])
    assert [(c.marker, c.page) for c in answer.citations] == [(1, 3)]  # no marker names [2] any more
    assert answer.unsupported == tuple(map(_uncited, (WRONG_NUMBER, WRONG_MARKER, UNKNOWN_NAME)))


def test_a_supported_answer_keeps_every_marker_and_citation(hits):
    text = "The panel is inspected every six months [1], and fault E21 means the grid voltage is too high [2]."
    with scripted_server(lambda prompt: text) as base, OpenAIChatGenerator("m", base_url=base, timeout=10.0) as gen:
        answer = gen.generate("q", hits)
    assert answer.text == text and answer.unsupported == ()
    assert [(c.marker, c.page) for c in answer.citations] == [(1, 3), (2, 5)]


def _evidence_blocks(prompt: str) -> dict[int, str]:
    """The numbered evidence of a prompt (``[n] source, page p, kind:`` then its text)."""
    evidence = prompt.split("Question:")[0]
    blocks = re.split(r"^\[(\d+)\] [^\n]*:\n", evidence, flags=re.M)
    return {int(n): body for n, body in zip(blocks[1::2], blocks[2::2])}


def _kb_reply(prompt: str) -> str:
    """Cites the passage that holds the inspection interval, once right and three times wrong."""
    blocks = _evidence_blocks(prompt)
    right = next(n for n, body in blocks.items() if "every 6 months" in " ".join(body.split()))
    other = next(n for n, body in blocks.items() if "inspect" not in body.lower() and "6 months" not in body)
    return (
        f"Inspect the inverter every 6 months [{right}]. Inspect the inverter every 9 months [{right}]. "
        f"The inverter event log is read by Siemens [{right}]. Inspect the inverter every 6 months [{other}]."
    )


def test_mmrag_ask_json_flags_the_sentences_the_openai_answer_could_not_support(capsys, kb_path):
    from rag.cli import main

    with scripted_server(_kb_reply) as base:
        code = main(["ask", "How often should the inverter be inspected?", "--kb", str(kb_path), "--json",
                     "--generator", "openai", "--api-base", base, "--api-model", "m"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["generator"] == "openai:m"
    right = data["citations"][0]["marker"]
    assert data["answer"] == (
        f"Inspect the inverter every 6 months [{right}]. Inspect the inverter every 9 months. "
        "The inverter event log is read by Siemens. Inspect the inverter every 6 months."
    )
    assert len(data["citations"]) == 1 and "every 6 months" in " ".join(data["citations"][0]["text"].split())
    assert data["unsupported"] == [
        "Inspect the inverter every 9 months.", "The inverter event log is read by Siemens.",
        "Inspect the inverter every 6 months.",
    ]

    with scripted_server(_kb_reply) as base:
        code = main(["ask", "How often should the inverter be inspected?", "--kb", str(kb_path),
                     "--generator", "openai", "--api-base", base, "--api-model", "m"])
    out, _ = capsys.readouterr()
    assert code == 0
    flagged = out.split("Not found in the evidence they cited (citation removed):\n")[1]
    assert "  ! The inverter event log is read by Siemens.\n" in flagged

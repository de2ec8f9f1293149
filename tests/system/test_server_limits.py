"""The server against hostile input and load (issue 21): no 5xx and no traceback whatever the
request holds; uploads bounded while they stream, chunked or not; health and searches answered
while writers wait for the write lock."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests._live_server import live_server, tiny_pdf, wait_job, wait_ready

LIMIT = 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from rag import KnowledgeBase
    from rag.server import create_app

    root = tmp_path_factory.mktemp("limits-kb")
    pdf = tiny_pdf(root / "valves.pdf", ["Valve service", "Grease the valve stem every 500 cycles."])
    with KnowledgeBase.open(root / "kb", create=True) as kb:
        app = create_app(kb, max_upload_bytes=LIMIT)
        with live_server(app) as url:
            with httpx.Client(base_url=url, timeout=120) as http:
                wait_ready(http)
                with pdf.open("rb") as fh:
                    job = http.post("/api/documents", files={"files": ("valves.pdf", fh, "application/pdf")}).json()
                assert wait_job(http, job["id"])["state"] == "done"
                doc_id = http.get("/api/documents").json()["documents"][0]["doc_id"]
                yield http, app, root / "kb", doc_id


# -- no 5xx on any input ----------------------------------------------------------------------
BODIES = [
    b'{"question": "\\ud800"}',  # a lone surrogate: the validation error echoes it
    b'{"question": "valve \\udfff stem"}',
    b'{"question": "x", "top_k": NaN}',
    b'{"question": "x", "top_k": Infinity}',
    b'{"question": "x", "top_k": -Infinity}',
    b'{"question": "x", "top_k": 1e400}',  # parsed as infinity
    b'{"question": "x", "top_k": 1e30}',
    b'{"question": "x", "top_k": 123456789012345678901234567890}',
    b'{"question": "x", "page_from": 99999999999999999999999999}',
    b'{"question": NaN}',
    b'{"question": "x", "history": [{"question": "\\ud800", "answer": NaN}]}',
    b'{"question": "x", "documents": ["\\ud800", "\\u0000"]}',
    b'{"question": "\\u0000\\u001b[2J valve"}',
    b'\xff\xfe\x00',
    b'[NaN, Infinity, "\\ud800"]',
    b"",
]


@pytest.mark.parametrize("route", ["/api/search", "/api/ask", "/api/ask/stream"])
@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_no_json_body_makes_a_server_error(server, route, body):
    http, *_ = server
    r = http.post(route, content=body, headers={"content-type": "application/json"})
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        data = r.json()  # an error body that renders: JSON, with the error and its kind
        assert data["error"] and data["type"], data


def test_a_validation_error_echoes_what_it_cannot_render_as_plain_text(server):
    http, *_ = server
    r = http.post("/api/search", content=b'{"question": "\\ud800", "top_k": NaN}', headers={"content-type": "application/json"})
    assert r.status_code == 422
    data = r.json()
    assert "question" in data["error"] and "top_k" in data["error"]
    echoed = json.dumps(data["detail"])
    assert "\\\\ud800" in echoed and "nan" in echoed.lower()  # shown, as text


@pytest.mark.parametrize(
    "path",
    [
        "/api/images/abc/%00x.png",
        "/api/images/%00/x.png",
        "/api/images/%ED%A0%80/x.png",
        "/api/images/..%2F..%2Fmanifest.json/x",
        "/api/documents/{doc}/pages/0/image",
        "/api/documents/{doc}/pages/99999999999999999999999/image",
        "/api/documents/{doc}/pages/-1/highlight?bbox=0,0,10,10",
        "/api/documents/{doc}/pages/1/highlight?bbox=nan,nan,nan,nan",
        "/api/documents/{doc}/pages/1/highlight?bbox=0,0,1e400,1e400",
        "/api/documents/{doc}/pages/1/highlight?bbox=0,0,10,10&margin=nan",
        "/api/documents/{doc}/pages/1/highlight?bbox=0,0,10,10&margin=1e400",
        "/api/documents/{doc}/pages/1/highlight?bbox=%00",
        "/api/documents/%00/pages/1/image",
        "/api/jobs/%00%ff",
        "/api/examples?limit=nan",
        "/api/examples?limit=99999999999999999999999",
    ],
)
def test_no_path_or_query_makes_a_server_error(server, path):
    http, _, _, doc_id = server
    r = http.get(path.format(doc=doc_id))
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]


@pytest.mark.parametrize("doc", ["%00", "%ED%A0%80", "a%00b.pdf", "..%2F..%2Fmanifest.json"])
def test_deleting_a_hostile_name_is_a_404(server, doc):
    http, *_ = server
    r = http.delete(f"/api/documents/{doc}")
    assert r.status_code == 404 and r.json()["error"], r.text


def test_top_k_zero_is_refused_naming_the_allowed_range(server):
    http, *_ = server
    r = http.post("/api/search", json={"question": "valve", "top_k": 0})
    assert r.status_code == 422 and "top_k" in r.json()["error"] and "allowed: 1..50" in r.json()["error"]


# -- uploads bounded while streaming --------------------------------------------------------------
def _multipart(name: str, chunks, counter: list[int]):
    yield f'--b0undary\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n\r\n'.encode()
    for chunk in chunks:
        counter[0] += len(chunk)
        yield chunk
    yield b"\r\n--b0undary--\r\n"


def test_a_chunked_upload_above_the_limit_is_refused_and_nothing_is_kept(server):
    http, _, kb, _ = server
    sent = [0]
    body = _multipart("big.pdf", (b"%PDF-1.7\n" + b"0" * 65527 for _ in range(80)), sent)  # 5.2 MB, no Content-Length
    r = http.post("/api/documents", content=body, headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert r.status_code == 413 and "big.pdf" in r.json()["error"] and str(LIMIT) in r.json()["error"]
    uploads = kb / "uploads"
    assert not any(p.name.startswith(".upload-") or p.name == "big.pdf" for p in uploads.iterdir())


def test_a_chunked_upload_within_the_limit_is_accepted(server):
    http, *_ = server
    pdf = tiny_pdf_bytes()
    body = _multipart("chunked.pdf", [pdf[i : i + 500] for i in range(0, len(pdf), 500)], [0])
    r = http.post("/api/documents", content=body, headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert r.status_code == 202, r.text
    assert wait_job(http, r.json()["id"])["files"][0]["state"] == "indexed"


def tiny_pdf_bytes() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Chunked upload: the pump is oiled every 9 days.")
    data = doc.tobytes()
    doc.close()
    return data


def test_receiving_stops_reading_at_the_limit(tmp_path):
    # the reader itself, fed a body far above the limit: it stops asking for more right after
    # the limit and leaves nothing in the folder
    from fastapi import HTTPException

    from rag.server._uploads import receive_files

    pulled = [0]

    async def stream():
        yield b'--xx\r\nContent-Disposition: form-data; name="files"; filename="a.pdf"\r\n\r\n'
        for _ in range(10_000):  # 655 MB if it were all read
            pulled[0] += 65536
            yield b"%" * 65536

    folder = tmp_path
    with pytest.raises(HTTPException) as refused:
        asyncio.run(receive_files({"content-type": "multipart/form-data; boundary=xx"}, stream(), folder,
                                  max_file_bytes=LIMIT, suffixes=frozenset({".pdf"})))
    assert refused.value.status_code == 413
    assert pulled[0] <= LIMIT + 65536 and list(folder.iterdir()) == []


def test_a_bad_file_name_is_refused_before_its_bytes_are_read(tmp_path):
    from rag.errors import ConfigError
    from rag.server._uploads import receive_files

    pulled = [0]

    async def stream():
        yield b'--xx\r\nContent-Disposition: form-data; name="files"; filename="tool.exe"\r\n\r\n'
        for _ in range(100):
            pulled[0] += 1
            yield b"M" * 65536

    with pytest.raises(ConfigError, match=r"\.exe"):
        asyncio.run(receive_files({"content-type": "multipart/form-data; boundary=xx"}, stream(), tmp_path,
                                  max_file_bytes=LIMIT, suffixes=frozenset({".pdf"})))
    assert pulled[0] <= 1


def test_any_request_body_is_counted_as_it_arrives(server):
    http, *_ = server
    # a 40 MB chunked JSON body to a search: refused at 32 MiB, not parsed
    body = (b" " * 65536 for _ in range(640))
    r = http.post("/api/search", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]
    declared = http.post("/api/search", content=b" " * (33 * 1024**2), headers={"content-type": "application/json"})
    assert declared.status_code == 413


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"content-type": "application/json"}, b'{"files": []}', 415),
        ({"content-type": "multipart/form-data"}, b"--x\r\n", 400),  # no boundary
        ({"content-type": "multipart/form-data; boundary=x"}, b"garbage", 400),
        ({"content-type": "multipart/form-data; boundary=x"}, b'--x\r\nContent-Disposition: form-data; name="files"\r\n\r\nhello\r\n--x--\r\n', 400),
        ({"content-type": "multipart/form-data; boundary=x"}, b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.pdf"\r\n\r\n%PDF', 400),
        ({"content-type": "multipart/form-data; boundary=x"}, b'--x\r\nContent-Disposition: form-data; name="files"; filename="\xff\x00.pdf"\r\n\r\n%PDF-1.4\r\n--x--\r\n', 400),
    ],
)
def test_malformed_uploads_are_client_errors(server, headers, body, status):
    http, *_ = server
    r = http.post("/api/documents", content=body, headers=headers)
    assert r.status_code == status, r.text
    if status >= 400:
        assert r.json()["error"]


# -- the server keeps serving while writers wait ---------------------------------------------------
def test_health_and_search_answer_while_forty_deletes_and_uploads_wait_for_a_write(server):
    http, app, _, _ = server
    url = str(http.base_url).rstrip("/")
    write_lock = app.state.service.jobs.write_lock
    assert write_lock.acquire(timeout=60)  # a write is running (as an ingest job holds it)
    released = threading.Event()
    try:
        pool = ThreadPoolExecutor(max_workers=80)

        def delete(i: int) -> httpx.Response:
            return httpx.delete(f"{url}/api/documents/no-such-{i}.pdf", timeout=120)

        def upload(i: int) -> httpx.Response:
            return httpx.post(f"{url}/api/documents", files={"files": (f"u{i}.pdf", b"%PDF-1.4 not really", "application/pdf")}, timeout=120)

        deletes = [pool.submit(delete, i) for i in range(40)]
        uploads = [pool.submit(upload, i) for i in range(40)]
        time.sleep(1.0)  # every one of them has reached the server and is waiting or answered
        for _ in range(3):
            t0 = time.monotonic()
            health = httpx.get(f"{url}/api/health", timeout=30)
            t1 = time.monotonic()
            search = httpx.post(f"{url}/api/search", json={"question": "valve stem grease"}, timeout=30)
            t2 = time.monotonic()
            assert health.status_code == 200 and t1 - t0 < 2.0, f"health took {t1 - t0:.1f} s"
            assert search.status_code == 200 and t2 - t1 < 2.0, f"search took {t2 - t1:.1f} s"
        # writers beyond the few allowed to wait are told at once to come back later
        refused = [f.result() for f in deletes if f.done()]
        assert refused and all(r.status_code == 503 and int(r.headers["retry-after"]) > 0 for r in refused), [r.status_code for r in refused]
        write_lock.release()
        released.set()
        statuses = sorted({f.result().status_code for f in deletes})
        assert set(statuses) <= {404, 503}, statuses  # the waiting ones ran once the write ended: no such document
        assert all(f.result().status_code == 202 for f in uploads)  # uploads queue jobs, they never wait for the lock
        pool.shutdown()
    finally:
        if not released.is_set():
            write_lock.release()
    deadline = time.monotonic() + 120
    while not app.state.service.jobs.idle():
        assert time.monotonic() < deadline
        time.sleep(0.2)

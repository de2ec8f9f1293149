"""Uploads, ingest jobs, deletes and bearer-token auth on a real server over a fresh knowledge base;
the bind policy; and `mmrag serve` as a user starts it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.errors import ConfigError
from rag.server import TOKEN_ENV, plan_bind, read_token, safe_upload_name
from tests._live_server import live_server, tiny_pdf, wait_job, wait_ready

TOKEN = "test-token-0123456789abcdef"
SUFFIXES = frozenset({".pdf", ".png"})


@pytest.fixture(scope="module")
def writable(tmp_path_factory):
    from rag import KnowledgeBase
    from rag.server import create_app

    root = tmp_path_factory.mktemp("server-kb")
    with KnowledgeBase.open(root / "kb", create=True) as kb:
        app = create_app(kb, token=TOKEN, max_upload_bytes=200_000)
        with live_server(app) as url:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=url, headers=auth, timeout=120) as http:
                wait_ready(http)
                yield http, root, url


def test_api_needs_the_bearer_token_but_health_does_not(writable):
    _, _, url = writable
    assert httpx.get(f"{url}/api/health").status_code == 200
    assert httpx.get(f"{url}/api/documents").status_code == 401
    wrong = httpx.get(f"{url}/api/documents", headers={"Authorization": "Bearer nope-nope-nope-nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert httpx.post(f"{url}/api/search", json={"question": "x"}).status_code == 401


def test_upload_ingest_search_delete(writable, tmp_path):
    http, root, _ = writable
    pdf = tiny_pdf(tmp_path / "pump.pdf", ["Pump maintenance", "Replace the pump impeller seal every 4000 hours."])
    with pdf.open("rb") as fh:
        # a hostile name: folders are stripped, the file lands in the knowledge base's uploads/
        r = http.post("/api/documents", files={"files": ("../../../escape/pump.pdf", fh, "application/pdf")})
    assert r.status_code == 202, r.text
    # reads go on while the job runs: no "knowledge base is locked" for a search
    assert http.post("/api/search", json={"question": "impeller seal"}).status_code == 200
    job = wait_job(http, r.json()["id"])
    assert job["state"] == "done" and job["files"][0]["state"] == "indexed", job
    assert job["files"][0]["pages"] == 1
    assert job["files"][0]["pages_done"] == job["files"][0]["pages_total"] == 1  # page-by-page progress, finished
    assert (root / "kb" / "uploads" / "pump.pdf").is_file()
    assert not (root / "escape").exists() and not (root.parent / "escape").exists()

    docs = http.get("/api/documents").json()["documents"]
    assert [d["name"] for d in docs] == ["pump.pdf"]
    hits = http.post("/api/search", json={"question": "how often is the impeller seal replaced?"}).json()["hits"]
    assert hits and hits[0]["source"] == "pump.pdf"

    # uploading the same name again replaces that document
    v2 = tiny_pdf(tmp_path / "v2.pdf", ["Pump maintenance", "Replace the pump impeller seal every 6000 hours."])
    with v2.open("rb") as fh:
        job = wait_job(http, http.post("/api/documents", files={"files": ("pump.pdf", fh, "application/pdf")}).json()["id"])
    assert job["files"][0]["state"] == "indexed"
    docs = http.get("/api/documents").json()["documents"]
    assert [d["name"] for d in docs] == ["pump.pdf"] and docs[0]["doc_id"] == job["files"][0]["doc_id"]
    answer = http.post("/api/ask", json={"question": "how often is the impeller seal replaced?"}).json()["answer"]
    assert "6000" in answer and "4000" not in answer

    gone = http.delete(f"/api/documents/{docs[0]['doc_id']}")
    assert gone.status_code == 200 and gone.json()["deleted"][0]["name"] == "pump.pdf"
    assert http.get("/api/documents").json()["documents"] == []
    assert not (root / "kb" / "uploads" / "pump.pdf").exists()


def test_a_broken_upload_is_reported_in_its_job(writable):
    http, _, _ = writable
    r = http.post("/api/documents", files={"files": ("broken.pdf", b"%PDF-1.7 this is not really a pdf", "application/pdf")})
    job = wait_job(http, r.json()["id"])
    assert job["files"][0]["state"] == "failed" and "broken.pdf" in job["files"][0]["error"]
    assert http.get("/api/documents").json()["documents"] == []


def test_upload_limits_and_unsupported_types(writable):
    http, root, _ = writable
    big = http.post("/api/documents", files={"files": ("big.pdf", b"%PDF-1.7\n" + b"0" * 300_000, "application/pdf")})
    assert big.status_code == 413 and "200000" in big.json()["error"]
    exe = http.post("/api/documents", files={"files": ("tool.exe", b"MZ....", "application/octet-stream")})
    assert exe.status_code == 400 and ".exe" in exe.json()["error"]
    # all or nothing: one refused file keeps the whole request out of the knowledge base
    mixed = http.post("/api/documents", files=[("files", ("fine.pdf", b"%PDF-1.7 small", "application/pdf")),
                                               ("files", ("huge.pdf", b"%PDF-1.7\n" + b"0" * 300_000, "application/pdf"))])
    assert mixed.status_code == 413
    uploads = root / "kb" / "uploads"
    leftovers = [p.name for p in uploads.iterdir()] if uploads.exists() else []
    assert not {"big.pdf", "fine.pdf", "huge.pdf"} & set(leftovers) and not any(n.startswith(".upload-") for n in leftovers)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [("report.pdf", "report.pdf"), ("../../etc/x.pdf", "x.pdf"), ("C:\\Users\\a\\scan.PNG", "scan.PNG"),
     ("..pdf.pdf", "pdf.pdf"), ("we ird;name$.pdf", "we ird_name_.pdf")],
)
def test_safe_upload_name(raw, safe):
    assert safe_upload_name(raw, SUFFIXES) == safe


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_no_upload_name_escapes_the_uploads_folder(raw):
    root = Path("/srv/kb/uploads")
    try:
        name = safe_upload_name(raw, SUFFIXES)
    except ConfigError:
        return
    assert "/" not in name and "\\" not in name and not name.startswith((".", "-"))
    assert os.path.normpath(root / name).startswith(str(root) + "/") and Path(name).suffix.lower() in SUFFIXES


@pytest.mark.parametrize("raw", ["", "..", "/", "notes.txt", "../.pdf"])
def test_unsafe_upload_names_are_refused(raw):
    with pytest.raises(ConfigError):
        safe_upload_name(raw, SUFFIXES)


def test_bind_policy_without_a_token_is_loopback_only():
    plan = plan_bind("0.0.0.0", 8000, None)
    assert plan.host == "127.0.0.1" and not plan.auth and "loopback" in plan.message and TOKEN_ENV in plan.message
    assert plan_bind("::1", 8000, None).host == "::1"
    with_token = plan_bind("0.0.0.0", 8000, TOKEN)
    assert with_token.host == "0.0.0.0" and with_token.auth


def test_token_from_environment_or_file(tmp_path):
    assert read_token(environ={}) is None
    assert read_token(environ={TOKEN_ENV: TOKEN}) == TOKEN
    (tmp_path / "t").write_text(TOKEN + "\n")
    assert read_token(tmp_path / "t") == TOKEN
    with pytest.raises(ConfigError, match="at least 16"):
        read_token(environ={TOKEN_ENV: "short"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_addresses(port: int) -> list[str]:
    """IPv4 addresses listening on ``port``, from /proc/net/tcp (state 0A = LISTEN)."""
    out = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, _, hexport = local.partition(":")
        if state == "0A" and int(hexport, 16) == port:
            out.append(".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return out


def test_mmrag_serve_without_a_token_listens_on_loopback_and_says_so(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--kb", str(tmp_path / "kb"), "--host", "0.0.0.0", "--port", str(port)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "mmrag serve did not start"
                time.sleep(0.2)
        assert health.status_code == 200
        assert _listening_addresses(port) == ["127.0.0.1"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "refusing to listen on 0.0.0.0" in err and "loopback 127.0.0.1" in err, err


def test_importing_rag_and_rag_server_stays_light():
    code = "import sys, rag, rag.server; print(sorted(m for m in ('fastapi', 'uvicorn', 'torch', 'pymupdf') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_public_exports():
    import rag.integrations.llama_index as li
    import rag.server as server

    assert sorted(server.__all__) == sorted(["create_app", "serve", "plan_bind", "read_token", "safe_upload_name", "BindPlan", "TOKEN_ENV"])
    assert sorted(li.__all__) == ["MmragQueryEngine", "MmragRetriever", "hit_to_node"]


def test_job_queue_runs_one_file_at_a_time_in_order_and_survives_a_crash():
    import threading

    from rag.server._jobs import JobQueue
    from rag.types import FileReport

    seen: list[str] = []
    active = [0, 0]  # now, max
    guard = threading.Lock()

    def ingest_one(path: Path, on_page) -> FileReport:
        with guard:
            active[0] += 1
            active[1] = max(active)
        try:
            seen.append(path.name)
            if path.name == "boom.pdf":
                raise RuntimeError("disk on fire")
            on_page(path, 1, 2)
            time.sleep(0.01)
            return FileReport(path, "indexed", f"id-{path.stem}", 2)
        finally:
            with guard:
                active[0] -= 1

    jobs = JobQueue(ingest_one)
    first = jobs.submit([Path("a.pdf"), Path("b.pdf")])
    crash = jobs.submit([Path("boom.pdf"), Path("never.pdf")])
    last = jobs.submit([Path("c.pdf")])
    deadline = time.monotonic() + 30
    while not jobs.idle():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    jobs.close()
    assert seen == ["a.pdf", "b.pdf", "boom.pdf", "c.pdf"] and active[1] == 1
    done = jobs.get(first.id)
    assert done.state == "done" and [f.state for f in done.files] == ["indexed", "indexed"] and done.files[0].pages == 2
    assert [(f["pages_done"], f["pages_total"]) for f in done.to_json()["files"]] == [(1, 2), (1, 2)]  # as last reported
    failed = jobs.get(crash.id)
    assert failed.state == "failed" and "disk on fire" in failed.error
    assert jobs.get(last.id).state == "done" and jobs.get(last.id).to_json()["done"] == 1

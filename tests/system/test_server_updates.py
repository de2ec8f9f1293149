"""Through the HTTP upload, an update replaces (issue 21 item 2): uploading a file with the name
of an earlier upload replaces that document even when its new bytes are those of another
document; the two then have their own points, and deleting one leaves the other."""

from __future__ import annotations

import pytest

from tests._live_server import live_server, tiny_pdf, wait_job, wait_ready

TOKEN = "test-token-updates-0123456789"
ALPHA = ["Apricot zeppelin maintenance", "The apricot zeppelin hangar door opens at dawn."]
BRAVO = ["Blueberry quasar calibration", "The blueberry quasar lens is cleaned every Tuesday."]


@pytest.fixture()
def server(tmp_path):
    import httpx

    from rag import KnowledgeBase
    from rag.server import create_app

    with KnowledgeBase.open(tmp_path / "kb", create=True) as kb:
        app = create_app(kb, token=TOKEN, max_upload_bytes=200_000)
        with live_server(app) as url:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as http:
                wait_ready(http)
                yield http


def _upload(http, name: str, data: bytes) -> dict:
    r = http.post("/api/documents", files={"files": (name, data, "application/pdf")})
    assert r.status_code == 202, r.text
    job = wait_job(http, r.json()["id"])
    assert job["state"] == "done", job
    return job["files"][0]


def _sources(http, question: str, word: str) -> set[str]:
    """Names of the documents whose hits for ``question`` quote ``word``."""
    hits = http.post("/api/search", json={"question": question, "top_k": 10}).json()["hits"]
    return {h["source"] for h in hits if any(word in e["text"].lower() for e in h["evidence"])}


def test_uploading_another_documents_bytes_under_a_known_name_replaces_it(server, tmp_path):
    http = server
    a = tiny_pdf(tmp_path / "a.pdf", ALPHA).read_bytes()
    b = tiny_pdf(tmp_path / "b.pdf", BRAVO).read_bytes()
    assert _upload(http, "a.pdf", a)["state"] == "indexed"
    b_file = _upload(http, "b.pdf", b)
    assert _sources(http, "apricot zeppelin hangar", "apricot") == {"a.pdf"}

    again = _upload(http, "a.pdf", b)  # a.pdf now holds exactly b.pdf's bytes
    assert again["state"] == "indexed", again
    docs = {d["name"]: d["doc_id"] for d in http.get("/api/documents").json()["documents"]}
    assert set(docs) == {"a.pdf", "b.pdf"} and docs["a.pdf"] != docs["b.pdf"] == b_file["doc_id"]
    assert _sources(http, "apricot zeppelin hangar", "apricot") == set()
    assert _sources(http, "blueberry quasar lens", "blueberry") == {"a.pdf", "b.pdf"}

    gone = http.delete(f"/api/documents/{docs['a.pdf']}")
    assert gone.status_code == 200 and [d["name"] for d in gone.json()["deleted"]] == ["a.pdf"]
    assert [d["name"] for d in http.get("/api/documents").json()["documents"]] == ["b.pdf"]
    assert _sources(http, "blueberry quasar lens", "blueberry") == {"b.pdf"}

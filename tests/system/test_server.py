"""The HTTP API, served for real by uvicorn on loopback, over the shared demo knowledge base."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest

from tests._live_server import live_server, wait_ready


@pytest.fixture(scope="module")
def client(kb_path: Path):
    from rag import KnowledgeBase
    from rag.server import create_app

    with KnowledgeBase.open(kb_path) as kb:
        with live_server(create_app(kb)) as url, httpx.Client(base_url=url, timeout=120) as http:
            wait_ready(http)
            yield http


def _sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        name = next(line[6:].strip() for line in lines if line.startswith("event:"))
        data = "".join(line[5:].strip() for line in lines if line.startswith("data:"))
        events.append((name, json.loads(data)))
    return events


def test_health_info_and_documents(client):
    assert client.get("/api/health").json() == {"status": "ok", "ready": True, "error": None}
    info = client.get("/api/info").json()
    assert info["documents"] == 2 and info["pages"] == 5
    assert info["server"]["auth"] is False
    assert "path" not in info  # no server file-system paths in API answers
    names = sorted(d["name"] for d in client.get("/api/documents").json()["documents"])
    assert names == ["inverter_dashboard.png", "solar_maintenance_manual.pdf"]


def test_openapi_schema_lists_the_routes(client):
    schema = client.get("/openapi.json").json()
    for path in ("/api/search", "/api/ask", "/api/ask/stream", "/api/documents", "/api/documents/{doc}",
                 "/api/jobs/{job_id}", "/api/images/{doc_id}/{name}", "/api/documents/{doc_id}/pages/{page}/highlight"):
        assert path in schema["paths"], path


def test_search_finds_the_fault_table_and_serves_its_page_image(client):
    result = client.post("/api/search", json={"question": "What does fault code E07 mean?", "top_k": 3}).json()
    pages = [(h["source"], h["page"]) for h in result["hits"]]
    assert ("solar_maintenance_manual.pdf", 2) in pages, pages
    assert result["route"]["reason"]
    hit = result["hits"][0]
    assert "image_path" not in hit and hit["page_width"] > 0 and hit["page_height"] > 0
    image = client.get(hit["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content[:3] == b"\xff\xd8\xff"  # a JPEG, the default ingest.image_format


def test_search_restricted_to_a_document_and_pages(client):
    body = {"question": "monthly output chart", "documents": ["solar_maintenance_manual.pdf"], "page_from": 3, "page_to": 4}
    hits = client.post("/api/search", json=body).json()["hits"]
    assert hits and all(h["source"] == "solar_maintenance_manual.pdf" and 3 <= h["page"] <= 4 for h in hits)
    missing = client.post("/api/search", json={"question": "x", "documents": ["nope.pdf"]})
    assert missing.status_code == 404 and "nope.pdf" in missing.json()["error"]


def test_ask_streams_search_tokens_then_a_cited_answer(client):
    with client.stream("POST", "/api/ask/stream", json={"question": "How often should the inverter be inspected?"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    events = _sse_events(text)
    names = [n for n, _ in events]
    assert names[0] == "search" and names[-1] == "answer" and "token" in names, names
    streamed = "".join(d["text"] for n, d in events if n == "token")
    final = events[-1][1]
    assert "6 months" in streamed and "6 months" in final["answer"]
    assert final["citations"] and all(c["page"] >= 1 for c in final["citations"])
    assert any(c["bbox"] and c["page"] == 1 for c in final["citations"])


def test_ask_with_a_history_list_searches_the_follow_up_with_the_earlier_subject(client):
    first = client.post("/api/ask", json={"question": "How often should the inverter be inspected?"}).json()
    assert first["rewritten"] is None
    follow_up = "And who should measure its insulation resistance?"
    # an earlier /api/ask response is a turn as it is (question and answer, other keys ignored)
    answer = client.post("/api/ask", json={"question": follow_up, "history": [first]}).json()
    assert answer["question"] == follow_up
    assert answer["rewritten"] == f"{follow_up} (inverter)"
    assert "searched for: " in answer["route"]["reason"] and "electrician" in answer["answer"]
    with client.stream("POST", "/api/ask/stream", json={"question": follow_up, "history": [first]}) as r:
        events = _sse_events("".join(r.iter_text()))
    assert events[0][1]["rewritten"] == answer["rewritten"] and events[-1][1]["rewritten"] == answer["rewritten"]
    searched = client.post("/api/search", json={"question": follow_up, "history": [first]}).json()
    assert searched["rewritten"] == answer["rewritten"]
    bad = client.post("/api/ask", json={"question": follow_up, "history": [{"answer": "no question"}]})
    assert bad.status_code in (400, 422) and "question" in bad.text


def test_ask_json_and_a_highlighted_crop_of_its_citation(client):
    from PIL import Image

    answer = client.post("/api/ask", json={"question": "What torque for the roof mounting bolts?"}).json()
    assert answer["citations"], answer
    c = next(c for c in answer["citations"] if c["bbox"])
    crop = client.get(f"/api/documents/{c['doc_id']}/pages/{c['page']}/highlight", params={"bbox": ",".join(map(str, c["bbox"]))})
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(crop.content)).convert("RGB")
    red = sum(1 for px in image.getdata() if px[0] > 200 and px[1] < 80 and px[2] < 80)
    assert red > 100, "the cited box is drawn in red"
    page = client.get(f"/api/documents/{c['doc_id']}/pages/{c['page']}/image")
    assert page.status_code == 200 and page.content[:3] == b"\xff\xd8\xff"  # JPEG, the default format


@pytest.mark.parametrize(
    "path",
    [
        "/api/images/..%2F..%2Fmanifest.json/x",
        "/api/images/..%2F../manifest.json",
        "/api/images/%2E%2E/documents.json",
        "/api/images/x/..%2F..%2Fdocuments.json",
        "/api/images/x/%2Fetc%2Fpasswd",
    ],
)
def test_image_routes_never_serve_files_outside_the_images_folder(client, path):
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert b'"documents"' not in r.content and b"root:" not in r.content


def test_clear_errors_for_bad_requests(client):
    empty = client.post("/api/search", json={"question": "   "})
    assert empty.status_code == 400 and "empty" in empty.json()["error"]
    invalid = client.post("/api/search", json={"question": "x", "top_k": 0})
    assert invalid.status_code == 422 and invalid.json()["type"] == "ValidationError" and "top_k" in invalid.json()["error"]
    assert client.post("/api/search", json={"question": "x", "page_from": 5, "page_to": 2}).status_code == 400
    assert client.get("/api/jobs/job-999").status_code == 404
    missing = client.delete("/api/documents/no-such-document.pdf")
    assert missing.status_code == 404 and missing.json()["type"] == "DocumentNotFoundError"
    assert "no document matches 'no-such-document.pdf'" in missing.json()["error"]
    doc = client.get("/api/documents").json()["documents"][0]
    assert client.get(f"/api/documents/{doc['doc_id']}/pages/99/image").status_code == 404
    bad_box = client.get(f"/api/documents/{doc['doc_id']}/pages/1/highlight", params={"bbox": "1,2,3"})
    assert bad_box.status_code == 400 and "x0,y0,x1,y1" in bad_box.json()["error"]


def test_the_web_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="question"' in page.text and "/static/app.js" in page.text
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        r = client.get(asset)
        assert r.status_code == 200 and kind in r.headers["content-type"]


def test_example_questions_come_from_the_documents_held(client):
    examples = client.get("/api/examples").json()["examples"]
    assert 1 <= len(examples) <= 4 and all(q.endswith("?") for q in examples)
    # from the manual's title and its figure/table captions, not a fixed list
    assert "What is “Solar Panel Maintenance Manual” about?" in examples
    assert any(q.startswith(("What does Figure", "What does Table")) for q in examples), examples
    assert len(client.get("/api/examples", params={"limit": 1}).json()["examples"]) == 1


def test_citations_carry_image_urls_never_file_paths(client):
    answer = client.post("/api/ask", json={"question": "What torque for the roof mounting bolts?"}).json()
    c = next(c for c in answer["citations"] if c["bbox"])
    assert "crop_path" not in c and "image_path" not in c
    crop = client.get(c["highlight_url"])
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/png"
    assert c["crop_url"] is None or client.get(c["crop_url"]).status_code == 200


def test_the_favicon_is_served(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml") and b"<svg" in icon.content
    assert 'rel="icon"' in client.get("/").text


def test_the_api_docs_page_works_offline_with_local_swagger_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert "cdn.jsdelivr.net" not in page.text and "unpkg.com" not in page.text  # nothing to fetch from the internet
    for asset, kind in (("/docs-assets/swagger-ui-bundle.js", "javascript"), ("/docs-assets/swagger-ui.css", "text/css")):
        assert asset in page.text
        r = client.get(asset)
        assert r.status_code == 200 and kind in r.headers["content-type"] and len(r.content) > 10_000


def test_a_highlight_maps_points_to_pixels_by_the_page_image_size(tmp_path):
    """A page rendered below ingest.dpi (an oversized page) is still boxed in the right place:
    the scale comes from the image's width over the page's width, not from the configured dpi."""
    from PIL import Image

    from rag.server._images import crop_png

    page = tmp_path / "page.png"
    Image.new("RGB", (200, 100), "white").save(page)  # a 400 x 200 pt page at 36 dpi
    png = crop_png(page, (100, 50, 200, 100), margin=0, page_width=400, scale=110 / 72)
    crop = Image.open(io.BytesIO(png)).convert("RGB")
    assert crop.size == (51, 26)  # pixels 50..100 x 25..50
    assert crop.getpixel((0, 0))[0] > 200 and crop.getpixel((0, 0))[1] < 80  # the box's corner, in red

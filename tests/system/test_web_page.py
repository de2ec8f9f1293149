"""The web page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): ask a
question over the demo knowledge base and see the answer first, its sources with crops of the
cited boxes, "why these results" folded away and highlighted thumbnails; markdown tables and
abstentions as a reader sees them; the empty state; uploads; no console errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests._live_server import live_server, tiny_pdf, wait_ready

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _watch(page) -> list[str]:
    """Console errors, uncaught exceptions and failed requests of ``page``, as they happen."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"exception: {exc}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status} {r.url}"))

    def failed(request) -> None:
        # Chromium reports a fetch body read to its end through getReader() as ERR_ABORTED
        # (microsoft/playwright#42742): the answer stream is checked by what the page shows instead
        if not (request.url.endswith("/api/ask/stream") and "ERR_ABORTED" in (request.failure or "")):
            problems.append(f"failed: {request.url} {request.failure}")

    page.on("requestfailed", failed)
    return problems


def _chromium() -> str:
    path = os.environ.get("MMRAG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        message = (f"no Chromium at {path}: install Debian's package (`apt-get install -y chromium`; "
                   "scripts/test.sh does this when run as root) or set MMRAG_CHROMIUM")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def page_url(kb_path: Path):
    from rag import KnowledgeBase
    from rag.server import create_app

    with KnowledgeBase.open(kb_path) as kb:
        with live_server(create_app(kb)) as url:
            with httpx.Client(base_url=url, timeout=120) as http:
                wait_ready(http)
            yield url


def test_ask_in_the_browser_shows_answer_citations_and_highlighted_thumbnails(page_url, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors = _watch(page)
            page.goto(page_url + "/")
            page.wait_for_selector("#documents li", timeout=30_000)
            assert "solar_maintenance_manual.pdf" in page.inner_text("#documents")
            # before any question: example questions about these documents, that fill the box
            page.wait_for_selector("#examples button.example", timeout=30_000)
            example = page.locator("#examples button.example").first
            text = example.inner_text()
            example.click()
            assert page.input_value("#question") == text

            page.fill("#question", "How often should the inverter be inspected?")
            page.click("#ask-button")
            page.wait_for_selector("#answer a.cite", timeout=60_000)
            assert page.locator("#examples").is_hidden()
            answer = page.inner_text("#answer")
            assert "6 months" in answer
            # sources with human page names and a crop of the cited box, loaded
            sources = page.locator("#citations li")
            assert sources.count() >= 1
            assert "solar_maintenance_manual.pdf · page " in sources.first.inner_text()
            page.wait_for_function("() => document.querySelector('#citations li img.crop').naturalWidth > 0", timeout=30_000)
            # why these results: there, folded away until asked for
            assert page.locator("#route").get_attribute("open") is None
            assert page.locator("#route-summary").is_hidden()
            page.click("#route summary")
            assert "text" in page.inner_text("#route-summary")

            # a thumbnail of a cited page, its image loaded, with the cited box drawn over it
            page.wait_for_function(
                "() => [...document.querySelectorAll('.hit .page')].some("
                "p => p.querySelector('.box.cited') && p.querySelector('img').naturalWidth > 0)",
                timeout=30_000,
            )
            box = page.locator(".hit .box.cited").first.bounding_box()
            assert box is not None and box["width"] > 5 and box["height"] > 5

            # a citation marker opens the page with the box
            page.locator("#answer a.cite").first.click()
            page.wait_for_selector("#viewer[open] .box.cited", timeout=10_000)
            page.keyboard.press("Escape")

            shot = Path(os.environ.get("MMRAG_SCREENSHOT_DIR", tmp_path)) / "web-page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert page.evaluate("() => document.querySelector('link[rel=icon]').href").endswith("favicon.svg")
            assert errors == []
        finally:
            browser.close()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_token_prompt_upload_and_ingest_progress_in_the_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    from rag import KnowledgeBase
    from rag.server import create_app

    executable = _chromium()
    token = "browser-token-0123456789"
    pdf = tiny_pdf(tmp_path / "pump.pdf", ["Pump maintenance", "Replace the impeller seal every 4000 hours."])
    with KnowledgeBase.open(tmp_path / "kb", create=True) as kb, live_server(create_app(kb, token=token)) as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(url + "/")
                page.wait_for_selector("#token-button:not([hidden])", timeout=30_000)  # the API said 401
                page.once("dialog", lambda dialog: dialog.accept(token))
                page.click("#token-button")
                errors = _watch(page)
                page.wait_for_selector("#documents li.muted", timeout=30_000)  # "no documents yet"
                assert "mmrag ingest" in page.inner_text("#empty-no-docs")  # the empty state says what to do
                page.set_input_files("#upload-files", str(pdf))
                page.click("#upload-form button[type=submit]")
                page.wait_for_function("() => document.querySelector('#documents').innerText.includes('pump.pdf')", timeout=120_000)
                jobs = page.inner_text("#jobs")
                assert "done 1/1" in jobs and "pump.pdf: indexed" in jobs, jobs
                page.fill("#question", "How often is the impeller seal replaced?")
                page.click("#ask-button")
                page.wait_for_selector("#answer a.cite", timeout=60_000)
                assert "4000 hours" in page.inner_text("#answer")
                assert errors == []
            finally:
                browser.close()


SEARCH_ROUTE = {"corpora": ["text", "figures"], "weights": {"text": 0.7, "figures": 0.3}, "top_k": 5,
                "reason": "a question about a table: text and figures", "router": "rules"}


def _sse(*events: tuple[str, dict]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def test_table_answers_render_as_tables_and_abstentions_as_a_plain_sentence(page_url, tmp_path):
    """The answer view over canned answers (the generators' text is theirs to test): a markdown
    table with citation markers becomes a table, never HTML from the text; an answer the
    documents do not hold shows a sentence and the closest pages, not citations."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with httpx.Client(base_url=page_url, timeout=120) as http:
        hits = http.post("/api/search", json={"question": "inverter fault codes table"}).json()["hits"]
    hit = hits[0]
    cite = {"marker": 1, "source": hit["source"], "doc_id": hit["doc_id"], "page": hit["page"], "label": "iv",
            "bbox": hit["bbox"], "text": "Fault codes:\n| Code | Meaning |\n|---|---|\n| E01 | grid fault |",
            "image_url": hit["image_url"], "crop_url": None,
            "highlight_url": None}
    table = ("Fault codes:\n| Code | Meaning |\n|---|---|\n| E01 | grid fault [1] |\n"
             "| E02 | <img src=x onerror=alert(1)> |\nCheck the fuse first [1].")
    common = {"question": "q", "hits": hits, "route": SEARCH_ROUTE, "generator": "canned", "timings_ms": {"total": 1}}
    answers = {
        "table": {**common, "answer": table, "answered": True, "citations": [cite],
                  "unsupported": ["The fuse is rated 40 A."]},
        "none": {**common, "answer": "The documents do not say what the boiling point of nitrogen is.",
                 "answered": False, "citations": []},
    }
    shots = Path(os.environ.get("MMRAG_SCREENSHOT_DIR", tmp_path))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors = _watch(page)
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

            def canned(route) -> None:
                which = "none" if "nitrogen" in (route.request.post_data or "") else "table"
                body = _sse(("search", {"route": SEARCH_ROUTE, "hits": hits}), ("answer", answers[which]))
                route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body)

            page.route("**/api/ask/stream", canned)
            page.goto(page_url + "/")
            page.wait_for_selector("#documents li", timeout=30_000)
            page.fill("#question", "What do the fault codes mean?")
            page.click("#ask-button")
            page.wait_for_selector("#answer table", timeout=30_000)
            assert page.locator("#answer th").all_inner_texts() == ["Code", "Meaning"]
            assert page.locator("#answer tbody tr").count() == 2
            assert page.locator("#answer td a.cite").count() == 1
            assert page.locator("#answer img").count() == 0  # text, not markup
            assert "<img src=x" in page.inner_text("#answer tbody")
            assert f"page {hit['page']} (printed iv)" in page.inner_text("#citations")
            # the cited table's text in its source reads as rows of cells, not markdown
            quoted = page.inner_text("#citations blockquote")
            assert "Code, Meaning; E01, grid fault;" in quoted and "|" not in quoted and "---" not in quoted
            # a sentence the grounding check uncited is shown apart, as not found in its evidence
            assert "The fuse is rated 40 A." in page.inner_text("#answer .unsupported")
            page.screenshot(path=str(shots / "web-table.png"), full_page=True)

            page.fill("#question", "What is the boiling point of nitrogen?")
            page.click("#ask-button")
            page.wait_for_selector("#answer.abstain", timeout=30_000)
            assert "do not say" in page.inner_text("#answer")
            assert page.locator("#answer a.cite").count() == 0
            assert page.inner_text("#sources-title") == "Closest pages"
            assert hit["source"] in page.inner_text("#citations")
            page.screenshot(path=str(shots / "web-abstain.png"), full_page=True)
            assert errors == [] and dialogs == []
        finally:
            browser.close()


def test_the_page_keeps_the_conversation_and_a_follow_up_searches_with_it(page_url, tmp_path):
    """Two turns in the browser against the real server: the second question refers back ("its"),
    the page sends the first turn with it, shows what was searched for and lists the earlier turn;
    "New conversation" forgets it, so the same follow-up is then searched as asked."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    follow_up = "And who should measure its insulation resistance?"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors = _watch(page)
            sent: list[dict] = []
            page.on("request", lambda r: r.url.endswith("/api/ask/stream") and sent.append(json.loads(r.post_data or "{}")))
            page.goto(page_url + "/")
            page.wait_for_selector("#documents li", timeout=30_000)
            assert page.locator("#conversation-panel").is_hidden()

            page.fill("#question", "How often should the inverter be inspected?")
            page.click("#ask-button")
            page.wait_for_function("() => document.querySelector('#status').textContent.includes('source')", timeout=60_000)
            assert "6 months" in page.inner_text("#answer")
            assert page.locator("#rewritten").is_hidden()

            page.fill("#question", follow_up)
            page.click("#ask-button")
            page.wait_for_selector("#rewritten:not([hidden])", timeout=60_000)
            page.wait_for_function("() => document.querySelector('#answer').textContent.includes('electrician')", timeout=60_000)
            assert page.inner_text("#rewritten") == f"searched for: {follow_up} (inverter)"
            assert [t["question"] for t in sent[1]["history"]] == ["How often should the inverter be inspected?"]
            assert "6 months" in sent[1]["history"][0]["answer"]
            earlier = page.locator("#conversation li")
            assert earlier.count() == 1 and "How often should the inverter be inspected?" in earlier.first.inner_text()
            page.screenshot(path=str(Path(os.environ.get("MMRAG_SCREENSHOT_DIR", tmp_path)) / "web-conversation.png"), full_page=True)

            page.click("#new-conversation")
            assert page.locator("#conversation-panel").is_hidden()
            page.fill("#question", follow_up)
            page.click("#ask-button")
            page.wait_for_function("() => document.querySelector('#status').textContent.includes('retrieval')", timeout=60_000)
            assert sent[2]["history"] == [] and page.locator("#rewritten").is_hidden()
            assert errors == []
        finally:
            browser.close()

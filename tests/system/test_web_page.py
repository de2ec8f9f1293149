"""The web page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): ask a
question over the demo knowledge base, see the streamed answer and a highlighted thumbnail."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests._live_server import live_server, tiny_pdf, wait_ready

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_url + "/")
            page.wait_for_selector("#documents li", timeout=30_000)
            assert "solar_maintenance_manual.pdf" in page.inner_text("#documents")

            page.fill("#question", "How often should the inverter be inspected?")
            page.click("#ask-button")
            page.wait_for_selector("#answer a.cite", timeout=60_000)
            answer = page.inner_text("#answer")
            assert "6 months" in answer
            assert page.locator("#citations li").count() >= 1
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
                page.wait_for_selector("#documents li.muted", timeout=30_000)  # "no documents yet"
                page.set_input_files("#upload-files", str(pdf))
                page.click("#upload-form button[type=submit]")
                page.wait_for_function("() => document.querySelector('#documents').innerText.includes('pump.pdf')", timeout=120_000)
                jobs = page.inner_text("#jobs")
                assert "done 1/1" in jobs and "pump.pdf: indexed" in jobs, jobs
                page.fill("#question", "How often is the impeller seal replaced?")
                page.click("#ask-button")
                page.wait_for_selector("#answer a.cite", timeout=60_000)
                assert "4000 hours" in page.inner_text("#answer")
            finally:
                browser.close()

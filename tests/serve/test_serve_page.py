"""The web page in headless Debian Chromium, driven by Playwright against a real server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("LLMREC_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing and LLMREC_REQUIRE_BROWSER is set "
                        "(apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); set "
                    "LLMREC_REQUIRE_BROWSER=1 to make this a failure")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_page_shows_history_recommendations_and_similar_items(browser, live_server, artifacts,
                                                              tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_server.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)

    # user 1 is the first option: their history, newest first, with ratings
    history = page.locator("#history tbody tr")
    assert history.count() == 30
    ds = artifacts.dataset
    newest = ds.item_titles()[int(ds.history("1")[-1])]
    assert newest in history.first.inner_text()

    recs = page.locator("#recs tbody tr.rec")
    assert recs.count() == 10
    text = page.locator("#recs").inner_text()
    assert any(c in text for c in ("sequential", "ann", "popularity"))
    assert page.locator("#recs td.expl").first.inner_text().strip()

    # another user, chosen in the list: the recommendations change
    first_titles = recs.all_inner_texts()
    page.select_option("#user-select", "2")
    page.wait_for_function("document.querySelector('#user-summary').textContent"
                           ".startsWith('user 2:')")
    page.wait_for_function("rows => document.querySelectorAll('#recs tbody tr.rec')"
                           "[0].innerText !== rows", arg=first_titles[0])
    assert recs.count() == 10 and recs.all_inner_texts() != first_titles

    # similar items for Star Wars
    page.fill("#item-input", "50")
    page.click("#similar")
    page.wait_for_selector("#similar-table tbody tr.sim")
    assert page.locator("#similar-table tbody tr.sim").count() == 10
    assert "Star Wars" in page.locator("#similar-title").inner_text()

    # an unknown item is an error message on the page, not a crash
    page.fill("#item-input", "no-such-item")
    page.click("#similar")
    page.wait_for_function("document.querySelector('#similar-error').textContent.length > 0")
    assert "unknown item" in page.locator("#similar-error").inner_text()

    shot = Path(os.environ.get("LLMREC_ARTIFACTS", tmp_path)) / "serve_page.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.fill("#item-input", "50")
    page.click("#similar")
    page.wait_for_selector("#similar-table tbody tr.sim")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert errors == []
    page.close()

"""Exercise 08 in a real browser: the chat page streams a reply in pieces, the dashboard updates live.

Debian's Chromium, driven by Python playwright through ``executable_path`` (playwright cannot
download its own browser here; never run ``playwright install``). The app runs on uvicorn at
127.0.0.1 with the recordings at half their real pace. Screenshots are kept as test artifacts in
``$LABKIT_ARTIFACTS/ex08`` (default: the system temp folder's ``labkit-artifacts/ex08``). These
tests run in ``make test``; without Chromium they fail and say how to install it (set
``LABKIT_SKIP_BROWSER=1`` to skip them on a machine that cannot have a browser).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from labkit import web
from labkit.checks import load_learner_module
from labkit.course import ex08 as course
from labkit.paths import solutions_dir
from labkit.replay import load_cassette, resolve_cassette
from labkit.simulate import recorded_answer
from labkit.streams import LoopPacer
from labkit.web import MemoryMailer, RequestLog, serve, upstream_client

CHROMIUM = os.environ.get("LABKIT_CHROMIUM", web.CHROMIUM)


def artifacts() -> Path:
    folder = Path(os.environ.get("LABKIT_ARTIFACTS") or Path(tempfile.gettempdir()) / "labkit-artifacts") / "ex08"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if os.environ.get("LABKIT_SKIP_BROWSER"):
        pytest.skip("LABKIT_SKIP_BROWSER is set")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium` (or set LABKIT_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=web.CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    sol = load_learner_module(solutions_dir() / "ex08_streaming_web.py")
    client = upstream_client("ex08", pace=LoopPacer(0.5), max_retries=0)
    app = sol.create_app(client, mailer=MemoryMailer(), log=RequestLog())
    with serve(app) as base:
        yield base


def reply(label: str) -> str:
    inter = next(i for i in load_cassette(resolve_cassette("ex08")).interactions if i.label.startswith(label))
    answer = recorded_answer(inter)
    assert answer is not None
    return answer[0]


#: Records the text of the assistant's bubble every time it changes.
WATCH = """() => {
  window.__snapshots = [];
  new MutationObserver(() => {
    const bots = document.querySelectorAll('.msg.bot');
    if (bots.length) window.__snapshots.push(bots[bots.length - 1].textContent);
  }).observe(document.getElementById('log'), {childList: true, subtree: true, characterData: true});
}"""


def test_chat_page_streams_the_reply_in_pieces(browser: Any, site: str) -> None:
    page = browser.new_page(viewport={"width": 900, "height": 640})
    try:
        page.goto(site + "/")
        page.wait_for_selector("#status.on", timeout=10_000)
        page.evaluate(WATCH)
        page.fill("#message", course.CHAT_SCRIPT[0])
        page.click("#send")
        page.wait_for_selector(".meta", timeout=20_000)  # the usage note comes with "done"
        snapshots: list[str] = page.evaluate("window.__snapshots")
        final = page.locator(".msg.bot").last.text_content()
        page.screenshot(path=str(artifacts() / "chat.png"), full_page=True)
    finally:
        page.close()
    want = reply("chat connection 1, turn 1")
    assert final == want
    growing = [s for s in dict.fromkeys(snapshots) if s]
    assert len(growing) >= 5, f"the reply appeared in {len(growing)} piece(s), not streamed"
    assert all(want.startswith(s) for s in growing), "a partial reply was not a prefix of the answer"
    assert len(growing[0]) < len(want) / 2


def test_dashboard_updates_after_requests(browser: Any, site: str) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 720})
    try:
        page.goto(site + "/dashboard?every=200")
        page.wait_for_function("Number(document.body.dataset.updates || 0) >= 1", timeout=10_000)
        before = int((page.text_content("#requests") or "0").split()[0].replace(",", ""))
        for i, product in enumerate(course.PRODUCTS[:3]):
            got = httpx2.post(site + "/api/headlines", json=product, headers={"x-client-id": f"browser-{i}"}, timeout=20)
            assert got.status_code == 200
        httpx2.post(site + "/api/headlines", json={"product_name": ""}, timeout=20)
        with httpx2.stream("POST", site + "/api/chat/stream", json={"message": course.RELAY_MESSAGES["short"]}, timeout=20) as r:
            r.read()
        page.wait_for_function(f"parseInt(document.getElementById('requests').textContent) >= {before + 5}", timeout=10_000)
        time.sleep(0.5)  # let the sparkline take another sample for the picture
        rows = page.locator("#models tr").count()
        statuses = page.text_content("#statuses") or ""
        page.screenshot(path=str(artifacts() / "dashboard.png"), full_page=True)
    finally:
        page.close()
    assert rows >= 2, "tokens and cost by model: expected a row per model"
    assert "422" in statuses

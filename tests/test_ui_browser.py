"""The chat UI in a real browser: headless Chromium driven by Selenium against a live uvicorn server.

Installs nothing: it needs Debian's chromium + chromium-driver (`.ci/browser-deps` installs them) and
the `selenium` package, and skips with the reason when one is missing. Selenium is pointed at
/usr/bin/chromedriver and /usr/bin/chromium, so Selenium Manager never downloads a browser or driver.
Screenshots land in each test's tmp_path.
"""

from __future__ import annotations

import contextlib
import html
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

# `slow` on each test that starts the browser (one without it checks the mount through a TestClient)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
from .conftest import ROOT  # noqa: E402

CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]


def _require_browser():
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing; install it with .ci/browser-deps (apt-get install chromium chromium-driver)"
        )
    if not CHROMEDRIVER.exists():
        pytest.skip(f"{CHROMEDRIVER} is missing; install it with .ci/browser-deps (apt-get install chromium-driver)")
    pytest.importorskip("selenium", reason="the selenium package is not installed (pip install selenium)")


@contextlib.contextmanager
def serving(app):
    """Run `app` under uvicorn in a thread on a free port; yields the base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-ui-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def browser(tmp_path):
    _require_browser()
    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager is not used, but never phone home
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    profile = tmp_path / "chromium-profile"
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """The chat page, seen the way a reader sees it."""

    def __init__(self, driver, tmp_path: Path):
        self.d = driver
        self.tmp_path = tmp_path

    def wait(self, check, what: str, timeout: float = 60.0, every: float = 0.1):
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = check()
            except Exception:  # noqa: BLE001 - the DOM is re-rendered under us; try again
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                shot = self.screenshot("timeout.png")
                text = self.d.find_element("tag name", "body").text[:2000]
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; screenshot {shot}\n{text}")
            time.sleep(every)

    def open(self, url: str):
        self.d.get(url + "/")
        self.wait(lambda: self.d.find_elements("css selector", "#rag-question textarea"), "the question box", 120)

    def ask(self, question: str):
        from selenium.webdriver.common.keys import Keys

        before = len(self.bot_messages())
        box = self.d.find_element("css selector", "#rag-question textarea")
        box.clear()
        box.send_keys(question)
        box.send_keys(Keys.ENTER)
        self.wait(lambda: len(self.bot_messages()) > before, f"a reply to {question!r}")

    def bot_messages(self):
        return self.d.find_elements("css selector", '#rag-chat [data-testid="bot"]')

    def click_scrolled(self, find, what: str) -> None:
        """Click an element as a person would: scrolled into view first, and again if the page moved under the
        pointer (an earlier answer sits in the chat's scrolling frame, where a bare click was intercepted by the
        message list now and then). `find` returns the element afresh each try (the DOM is re-rendered)."""

        def attempt() -> bool:
            element = find()
            self.d.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
            element.click()
            return True

        self.wait(attempt, f"a click on {what}", timeout=20)

    def last_reply_html(self) -> str:
        return self.bot_messages()[-1].get_attribute("innerHTML")

    def sources_html(self) -> str:
        return self.d.find_element("id", "rag-sources").get_attribute("innerHTML")

    def marks(self) -> list[str]:
        return [m.text for m in self.d.find_elements("css selector", "#rag-sources mark")]

    def status(self) -> str:
        return self.d.find_element("id", "rag-status").text

    def wait_final(self, timeout: float = 60.0) -> tuple[str, bool]:
        """Wait until the last reply is final; returns (its HTML, whether a streaming cursor was seen)."""
        streamed = False

        def done():
            nonlocal streamed
            reply = self.last_reply_html()
            if "rag-cursor" in reply:
                streamed = True
                return None
            return reply if "rag-streaming" not in reply and "Reading the passages" not in reply else None

        return self.wait(done, "the final answer", timeout, every=0.05), streamed

    def screenshot(self, name: str) -> Path:
        path = self.tmp_path / name
        self.d.save_screenshot(str(path))
        return path


def _fake_app(served=None):
    """The chat alone, over a service: `served` is one (a test that switches what it serves) or the pipeline to
    answer with from the start (None: loading)."""
    from fastapi import FastAPI

    from rag.api.service import RagService
    from rag.settings import Settings
    from ui.app import mount_ui

    service = served if isinstance(served, RagService) else RagService(Settings(), served)
    app = FastAPI()

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return mount_ui(app, service)


def test_mount_keeps_earlier_routes_and_adds_the_css():
    pytest.importorskip("gradio")
    from fastapi.testclient import TestClient

    with TestClient(_fake_app()) as client:
        assert client.get("/health").json() == {"status": "ok"}
        page = client.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert ".rag-badge" in client.get("/config").json()["css"]


@pytest.mark.slow
def test_chat_with_a_fake_pipeline(browser, tmp_path):
    from rag.api.service import RagService
    from rag.settings import Settings
    from tests.test_ui import chat_pipeline

    service = RagService(Settings())  # loading until the test serves a pipeline
    page = Page(browser, tmp_path)
    with serving(_fake_app(service)) as url:
        page.open(url)

        # 1. while the model loads: said so in the status line and in the chat
        page.wait(lambda: "Model is loading" in page.status(), "the loading status")
        page.ask("When did Brad Smith meet Wang Wentao?")
        page.wait(lambda: "Model is loading…" in page.last_reply_html(), "the loading message in the chat")

        # 2. loaded: the status line notices by itself; the answer streams in, then the final one with a badge
        fake = chat_pipeline(delay=0.4)
        service.serve(fake)
        page.wait(lambda: page.status().startswith("Ready"), "the ready status", 30)
        page.ask("When did Brad Smith meet Wang Wentao?")
        reply, streamed = page.wait_final()
        assert streamed, "the answer did not stream"
        assert 'class="rag-badge"' in reply and "Wednesday, December 6, 2023" in reply
        page.wait(lambda: page.marks(), "a highlighted source")
        assert page.marks() == ["Wednesday, December 6, 2023"]
        sources = page.sources_html()
        assert "000_d74c9cd70636ffa8.txt" in sources and "Minister of Commerce" in sources
        shot = page.screenshot("answer.png")
        assert shot.stat().st_size > 10_000

        # 3. a follow-up is searched with the previous turn's words, and says so
        page.ask("and who did he meet?")
        reply, _ = page.wait_final()
        assert "Follow-up question: searched for" in reply
        assert fake.questions[-1] != "and who did he meet?" and "wednesday" in fake.questions[-1]

        # 4. a refusal is a note with its reason, and the searched passages stay checkable
        service.serve(chat_pipeline(refuse=True))
        page.ask("How many employees does Microsoft have in China?")
        reply, _ = page.wait_final()
        assert "rag-refusal" in reply and "no date in the cited passage" in html.unescape(reply)
        page.wait(lambda: "Nothing cited for" in page.sources_html(), "the refusal's sources")
        assert not page.marks()

        # 5. a failure while answering is a chat message; the page keeps working
        service.serve(chat_pipeline(fail=RuntimeError("llama exploded <b>")))
        page.ask("Who translated the announcement?")
        reply, _ = page.wait_final()
        assert "rag-error" in reply and "llama exploded" in reply and "<b>" not in reply

        # 6. an example question asks itself when clicked
        service.serve(chat_pipeline())
        before = len(page.bot_messages())
        example = page.wait(
            lambda: [b for b in browser.find_elements("css selector", "button.gallery-item") if "ChatGPT" in b.text],
            "the example questions",
        )[0]
        example.click()
        page.wait(lambda: len(page.bot_messages()) > before, "a reply to the example")
        reply, _ = page.wait_final()
        assert "rag-badge" in reply
        assert (
            "Which company developed ChatGPT?"
            in browser.find_elements("css selector", '#rag-chat [data-testid="user"]')[-1].text
        )

        # 7. clicking an earlier answer brings back its sources
        page.click_scrolled(lambda: page.bot_messages()[1], "the first answer")
        page.wait(
            lambda: page.marks() == ["Wednesday, December 6, 2023"] and "Cited for" in page.sources_html(),
            "the first answer's sources again",
        )
        page.screenshot("conversation.png")


@pytest.mark.slow
@pytest.mark.timeout(600)  # it gives the real answer 300 s of its own, after loading the models
def test_chat_with_the_real_pipeline(browser, tmp_path, real_embedder, real_generator, real_index_dir):
    from rag.api.service import RagService
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    settings = Settings(seeds_dir=ROOT / "seeds", index_dir=real_index_dir)
    pipeline = Pipeline.load(settings, embedder=real_embedder, generator=real_generator)
    page = Page(browser, tmp_path)
    with serving(_fake_app(RagService(settings, pipeline))) as url:
        page.open(url)
        page.wait(lambda: page.status().startswith("Ready"), "the ready status")
        page.ask("When did Brad Smith meet Wang Wentao?")
        reply, _ = page.wait_final(timeout=300)
        assert "rag-badge" in reply and "December 6, 2023" in reply, reply
        page.wait(lambda: page.marks(), "a highlighted source")
        assert any("December 6, 2023" in m for m in page.marks())
        page.screenshot("real-answer.png")


HOSTILE_NAME = "<img src=x onerror=alert(8)>.txt"


@pytest.mark.slow
def test_a_hostile_document_name_shows_as_written_in_the_sources_panel(browser, tmp_path, monkeypatch):
    """The sources panel heads each passage with its document's name: a name that is markup must show
    as text (not an <img> whose onerror runs), in full."""
    from tests import test_ui

    monkeypatch.setattr(test_ui, "DOC", HOSTILE_NAME)  # every passage the fake returns comes from it
    page = Page(browser, tmp_path)
    with serving(_fake_app(test_ui.chat_pipeline())) as url:
        page.open(url)
        page.wait(lambda: page.status().startswith("Ready"), "the ready status")
        page.ask("When did Brad Smith meet Wang Wentao?")
        page.wait_final()
        page.wait(lambda: page.marks(), "a highlighted source")
        headings = [
            e.get_attribute("textContent") for e in browser.find_elements("css selector", "#rag-sources .rag-doc")
        ]
        assert headings and all(h == HOSTILE_NAME for h in headings), headings
        assert not browser.find_elements("css selector", "#rag-sources img, #rag-chat img[src='x']")
        assert browser.execute_script("return window.__alerted === undefined")
        from selenium.common.exceptions import NoAlertPresentException

        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 - an alert() would be open

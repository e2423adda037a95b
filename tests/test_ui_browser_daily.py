"""The chat for daily use, in headless Chromium: conversations kept across reloads, a question typed during
an answer kept, plain-text copy, no internal scores in sight, and the phone layout where a tap on a badge
brings its source into view (checked on the screenshot's pixels, not only taken).
"""

from __future__ import annotations

import io
import time

import pytest

from .test_ui_browser import Page, _fake_app, browser, serving  # noqa: F401 - `browser` is a fixture

pytestmark = pytest.mark.slow
QUESTION = "When did Brad Smith meet Wang Wentao?"
MARK_RGB = (0xFD, 0xE0, 0x47)  # the highlight of the cited words (ui/render.py: .rag-passage mark)


def _fake(**kw):
    from tests.test_ui import chat_pipeline

    return chat_pipeline(**kw)


def _box(page):
    return page.d.find_element("css selector", "#rag-question textarea")


def _open_list(page):
    if not page.d.find_elements("css selector", '[data-testid="dropdown-option"]'):
        page.d.find_element("css selector", "#rag-conversations input").click()
    return page.wait(
        lambda: page.d.find_elements("css selector", '[data-testid="dropdown-option"]'), "the conversation list", 10
    )


def _conversation_labels(page) -> list[str]:
    labels = [o.get_attribute("aria-label") for o in _open_list(page)]
    page.d.find_element("id", "rag-status").click()  # closes the list
    page.wait(
        lambda: not page.d.find_elements("css selector", '[data-testid="dropdown-option"]'), "the list closed", 10
    )
    return labels


def _mark_pixels(png: bytes, box: tuple[int, int, int, int] | None = None) -> int:
    """How many pixels of the screenshot (or of `box` in it) have the cited words' highlight colour."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    if box:
        img = img.crop(box)
    return sum(1 for p in img.getdata() if all(abs(a - b) <= 6 for a, b in zip(p, MARK_RGB)))


def test_reload_keeps_the_conversation_and_earlier_ones_are_listed(browser, tmp_path):
    page = Page(browser, tmp_path)
    with serving(_fake_app(_fake())) as url:
        page.open(url)
        page.wait(lambda: page.status().startswith("Ready"), "the ready status")
        page.ask(QUESTION)
        page.wait_final()
        page.wait(lambda: page.marks(), "a highlighted source")

        browser.refresh()
        page.open(url)
        page.wait(lambda: len(page.bot_messages()) == 1, "the conversation restored after the reload", 30)
        assert "Wednesday, December 6, 2023" in page.last_reply_html()
        page.wait(lambda: page.marks() == ["Wednesday, December 6, 2023"], "its sources restored")

        # a new conversation; both are listed, the newest first, and the first one reopens
        browser.find_element("id", "rag-new").click()
        page.wait(lambda: not page.bot_messages(), "an empty chat")
        page.ask("Who translated the announcement?")
        page.wait_final()
        time.sleep(1)
        labels = _conversation_labels(page)
        assert labels[0].startswith("Who translated") and labels[1].startswith("When did Brad Smith"), labels
        _open_list(page)[1].click()
        page.wait(
            lambda: (
                "When did Brad Smith" in browser.find_elements("css selector", '#rag-chat [data-testid="user"]')[0].text
            ),
            "the first conversation reopened",
        )
        assert len(page.bot_messages()) == 1

        # deleting it leaves the other, also after a reload
        browser.find_element("id", "rag-delete").click()
        page.wait(lambda: not page.bot_messages(), "the deleted conversation gone from the screen")
        browser.refresh()
        page.open(url)
        time.sleep(2)
        labels = _conversation_labels(page)
        assert len(labels) == 1 and labels[0].startswith("Who translated"), labels


def test_a_question_typed_while_an_answer_streams_is_kept(browser, tmp_path):
    page = Page(browser, tmp_path)
    with serving(_fake_app(_fake(delay=1.0))) as url:
        page.open(url)
        page.wait(lambda: page.status().startswith("Ready"), "the ready status")
        page.ask(QUESTION)
        _box(page).send_keys("Who translated the announcement?")  # typed while the first answer streams
        page.wait(lambda: "rag-cursor" in page.last_reply_html(), "the streaming answer")
        reply, _ = page.wait_final()
        assert "Wednesday" in reply
        time.sleep(0.5)  # any late update of the first answer
        assert _box(page).get_attribute("value") == "Who translated the announcement?"
        from selenium.webdriver.common.keys import Keys

        _box(page).send_keys(Keys.ENTER)
        page.wait(lambda: len(page.bot_messages()) == 2, "the second question answered")
        users = browser.find_elements("css selector", '#rag-chat [data-testid="user"]')
        assert [u.text for u in users] == [QUESTION, "Who translated the announcement?"]
        assert _box(page).get_attribute("value") == ""


def test_copy_puts_the_answer_and_its_sources_as_plain_text(browser, tmp_path):
    page = Page(browser, tmp_path)
    with serving(_fake_app(_fake())) as url:
        page.open(url)
        page.wait(lambda: page.status().startswith("Ready"), "the ready status")
        page.ask(QUESTION)
        page.wait_final()
        browser.execute_script(
            "window.__copied = [];"
            "navigator.clipboard.writeText = (t) => { window.__copied.push(t); return Promise.resolve(); };"
        )
        bot = page.bot_messages()[-1]
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(browser).move_to_element(bot).perform()
        buttons = [b for b in browser.find_elements("css selector", '#rag-chat button[aria-label="Copy message"]')]
        buttons[-1].click()
        copied = page.wait(lambda: browser.execute_script("return window.__copied"), "the copied text", 10)
        assert copied[-1] == (
            "Wednesday, December 6, 2023 [1]\n\nSources:\n"
            "[1] 000_d74c9cd70636ffa8.txt, characters 215–242: “Wednesday, December 6, 2023”"
        ), copied


def test_sources_hide_scores_until_details_is_opened(browser, tmp_path):
    page = Page(browser, tmp_path)
    with serving(_fake_app(_fake())) as url:
        page.open(url)
        page.wait(lambda: page.status().startswith("Ready"), "the ready status")
        page.ask(QUESTION)
        page.wait_final()
        page.wait(lambda: page.marks(), "a highlighted source")
        panel = browser.find_element("id", "rag-sources")
        shown = lambda: browser.execute_script("return arguments[0].innerText", panel)  # noqa: E731 - as rendered
        assert "score" not in shown() and "0.0300" not in shown(), shown()
        browser.find_element("css selector", "#rag-sources .rag-cited details summary").click()
        page.wait(lambda: "retrieval score 0.0300" in shown(), "the score under details")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_phone_a_badge_tap_brings_its_source_into_view(browser, tmp_path, theme):
    browser.set_window_size(390, 844)
    page = Page(browser, tmp_path)
    with serving(_fake_app(_fake())) as url:
        browser.get(f"{url}/?__theme={theme}")
        page.wait(lambda: browser.find_elements("css selector", "#rag-question textarea"), "the question box", 120)
        page.wait(lambda: page.status().startswith("Ready"), "the ready status")
        width = browser.execute_script("return document.documentElement.clientWidth")
        assert width <= 390
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width + 1, "sideways scrolling"
        page.ask(QUESTION)
        page.wait_final()
        page.wait(lambda: page.marks(), "a highlighted source")

        card_top = "return document.querySelector('#rag-sources .rag-cited').getBoundingClientRect().top"
        browser.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.5)
        assert browser.execute_script(card_top) > browser.execute_script("return window.innerHeight"), (
            "the source is already in view on a phone; the test would prove nothing"
        )
        before = browser.get_screenshot_as_png()
        assert _mark_pixels(before) == 0
        badge = page.bot_messages()[-1].find_element("css selector", ".rag-badge")
        badge.click()

        def card_in_view():
            top = browser.execute_script(card_top)
            return 0 <= top < browser.execute_script("return window.innerHeight") - 60

        page.wait(card_in_view, "the tapped source in view", 10)
        time.sleep(0.8)  # the smooth scroll settles
        shot = browser.get_screenshot_as_png()
        (tmp_path / f"phone-{theme}.png").write_bytes(shot)
        assert _mark_pixels(shot) > 200, "the highlighted cited words are not on the screen"
        if theme == "dark":
            from PIL import Image

            img = Image.open(io.BytesIO(shot)).convert("L")
            assert sum(img.getdata()) / (img.width * img.height) < 100, "not a dark page"

"""In a real browser: add a document through the chat page, see it listed and named, ask about it.

The server is the real app (`create_app` + the chat mounted with the service's library, as `rag serve`
does) on a real index; the embedder is the keyword fake and the model a scripted one, so the test
checks the page and the live corpus, not the model's wording.
"""

from __future__ import annotations

import pytest

from rag.api import create_app
from rag.pipeline import Pipeline, run_ingest
from rag.settings import Settings

from .support.fakes import KeywordEmbedder, ScriptedGenerator, copy_phrase
from .test_ui_browser import Page, browser, serving  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.slow

NOTES = "# Parking\n\nThe staff car park closes for repairs on 12 May 2024.\n"


def test_upload_a_document_in_the_chat_and_ask_about_it(browser, tmp_path):
    from ui.app import mount_ui

    seeds = tmp_path / "docs"
    seeds.mkdir()
    (seeds / "harbour.md").write_text("# Harbour rules\n\nThe harbour gate opens at seven in the morning.\n")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index")
    embedder = KeywordEmbedder()
    run_ingest(settings, embedder)
    pipeline = Pipeline.load(settings, embedder=embedder, generator=ScriptedGenerator(copy_phrase("12 May 2024")))
    app = create_app(settings, pipeline=pipeline)
    service = app.state.service
    mount_ui(app, service)
    upload = tmp_path / "upload" / "parking notes.md"
    upload.parent.mkdir()
    upload.write_text(NOTES)

    page = Page(browser, tmp_path)
    with serving(app) as url:
        page.open(url)
        page.wait(lambda: "1 document: harbour.md" in page.status(), "the status line naming the document")
        page.wait(lambda: "Harbour rules" in browser.find_element("id", "rag-examples").text, "examples from headings")

        browser.find_element("css selector", "#rag-upload input[type=file]").send_keys(str(upload))
        page.wait(lambda: "added, indexing" in browser.find_element("id", "rag-library-note").text, "the upload note")
        documents = lambda: browser.find_element("id", "rag-documents").get_attribute("innerHTML")  # noqa: E731
        page.wait(
            lambda: (
                "parking notes.md" in documents() and "rag-doc-ready" in documents().split("parking notes.md")[0][-200:]
            ),
            "the upload listed as ready",
            60,
        )
        page.wait(
            lambda: "2 documents: harbour.md, parking notes.md" in page.status(), "the status line naming both", 30
        )
        page.wait(
            lambda: "Parking" in browser.find_element("id", "rag-examples").text, "an example from the new heading"
        )
        assert (seeds / "parking notes.md").read_text() == NOTES

        page.ask("When does the staff car park close for repairs?")
        reply, _ = page.wait_final()
        assert "rag-badge" in reply and "12 May 2024" in reply, reply
        page.wait(lambda: page.marks() == ["12 May 2024"], "the cited words marked")
        assert "parking notes.md" in page.sources_html()
        page.screenshot("uploaded-answer.png")

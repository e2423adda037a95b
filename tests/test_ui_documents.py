"""The chat's document parts without a browser: names in the status line, examples from headings, the
document list, uploads and removals through the library (the same one the API uses)."""

from __future__ import annotations

import html

import pytest

from rag.api.service import RagService
from rag.chunking import Chunk
from rag.pipeline import Pipeline, run_ingest
from rag.settings import Settings
from ui import chat, documents

from . import docgen
from .conftest import SEED_FILE
from .support.fakes import KeywordEmbedder

POLICY = docgen.pdf([[("h1", "Travel policy"), ("h2", "Meals"), ("p", "Meals are refunded up to 40 euros a day."),
                      ("h2", "Contents"), ("p", "See the list below."), ("h2", "Hotels"), ("p", "Hotels are booked by the office.")]])  # fmt: skip


def chunk(doc, heading):
    return Chunk(doc, f"{doc}#0", 0, 1, "x", heading=heading)


def test_heading_questions_take_titles_then_sections_in_turn_and_skip_generic_ones():
    chunks = [
        chunk("a.pdf", "Travel policy > Meals"),
        chunk("a.pdf", "Travel policy > Contents"),
        chunk("a.pdf", "Travel policy > Hotels"),
        chunk("b.md", "Onboarding > 1"),
        chunk("b.md", "Onboarding > Your first week"),
        chunk("c.txt", None),
    ]
    assert documents.heading_questions(chunks, limit=5) == [
        "What does “Travel policy” cover?",
        "What does “Onboarding” cover?",
        "What does the section “Meals” say?",
        "What does the section “Your first week” say?",
        "What does the section “Hotels” say?",
    ]
    assert documents.heading_questions([chunk("c.txt", None)]) == []


@pytest.fixture
def service(tmp_path):
    seeds = tmp_path / "docs"
    seeds.mkdir()
    (seeds / "policy.pdf").write_bytes(POLICY)
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index")
    embedder = KeywordEmbedder()
    run_ingest(settings, embedder)
    return RagService(settings, Pipeline.load(settings, embedder=embedder))


def test_examples_and_status_follow_the_loaded_documents(service, tmp_path):
    pipeline = service.get_pipeline()
    assert documents.suggested_questions(pipeline, ["Not used?"]) == [
        "What does “Travel policy” cover?",
        "What does the section “Meals” say?",
        "What does the section “Hotels” say?",
    ]
    assert documents.suggested_questions(None, ["Not used?"]) == []
    assert documents.suggested_questions(object(), ["Fallback?"]) == ["Fallback?"]  # no index: what it was given
    text, ready = chat.status_markdown(service.get_pipeline)
    assert ready and html.unescape(text).startswith("Ready · 1 document: policy.pdf · ")

    # the bundled article brings its hand-written examples; other plain text brings none
    note = documents.upload_files(service.library, [SEED_FILE])
    assert note == f"{SEED_FILE.name}: added, indexing…"
    assert service.library.wait_idle(30)
    pipeline = service.get_pipeline()
    assert documents.suggested_questions(pipeline, [], chat.DEFAULT_EXAMPLES)[0] == chat.DEFAULT_EXAMPLES[0]
    text, _ = chat.status_markdown(service.get_pipeline)
    assert f"2 documents: {SEED_FILE.name}, policy.pdf" in html.unescape(text)


def test_upload_and_remove_through_the_library(service, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# Parking\n\nThe car park closes at ten.\n")
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    message = documents.upload_files(service.library, [notes, bad])
    assert message.splitlines() == [
        "notes.md: added, indexing…",
        "photo.png: not added: unsupported type: a PNG image (only text, Markdown, HTML, PDF and DOCX are read)",
    ]
    assert documents.upload_files(service.library, [notes]).startswith("notes.md: not added: this file is already")
    assert service.library.wait_idle(30)
    entries = service.library.list()
    listed = documents.documents_html(entries)
    assert "notes.md" in listed and "policy.pdf" in listed and "rag-doc-ready" in listed
    assert [label for label, _ in documents.removable(entries)] == ["notes.md", "policy.pdf"]
    notes_id = dict(documents.removable(entries))["notes.md"]
    assert documents.remove_document(service.library, notes_id) == "notes.md: removing…"
    assert service.library.wait_idle(30)
    assert [e["name"] for e in service.library.list()] == ["policy.pdf"]
    assert documents.remove_document(service.library, notes_id).startswith("Not removed: no document with id")
    assert documents.remove_document(service.library, None) == "Choose a document to remove."


def test_document_list_shows_problems_escaped():
    out = documents.documents_html(
        [{"id": "1", "name": "<scan>.pdf", "status": "failed", "type": "pdf", "problem": "no text layer <b>"}]
    )
    assert "<b>" not in out and "<scan>" not in out and "failed" in out and "rag-doc-problem" in out
    assert "No documents yet" in documents.documents_html([])

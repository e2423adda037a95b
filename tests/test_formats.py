"""Real files of every format, written by the tests: extraction, structure, exact offsets, failure reports."""

from __future__ import annotations

import os

import pytest

from rag.chunking import chunk_document
from rag.documents import scan_corpus
from rag.formats import UnreadableDocument, detect
from rag.formats.text import decode_text
from rag.index import VectorIndex
from rag.pipeline import run_ingest
from rag.sources import SourceTexts

from . import docgen

PDF_PAGES = [
    [
        ("h1", "Travel policy"),
        ("p", "Employees book economy class for flights under six hours. Business class is allowed for longer "
              "flights when a director approves it in writing before booking."),
        ("h2", "Meals"),
        ("p", "The daily meal allowance is 45 euros in every country."),
    ],
    [
        ("h2", "Hotels"),
        ("p", "Hotel rooms may cost up to 150 euros a night, or 220 euros in London and New York."),
        ("p", "Receipts must be uploaded within 30 days of the trip:"),
        ("li", "hotel invoices with the room rate shown"),
        ("li", "taxi receipts over 20 euros"),
    ],
]  # fmt: skip

HTML = """<!DOCTYPE html>
<html><head><title>Careers</title><style>.x { color: red }</style>
<script>window.tracking = "<p>never index this</p>";</script></head>
<body>
<header><nav><a href="/">Home</a> | <a href="/shop">Shop</a> | <a href="/jobs">Jobs</a></nav></header>
<div id="cookie-banner">We use cookies to improve your experience. Accept all</div>
<main>
<h1>Careers at Fern</h1>
<p>We are hiring in Lisbon and
   Berlin. Applications close on 30 June 2024.</p>
<p>Every employee gets:</p>
<ul><li>28 days of paid holiday</li><li>a learning budget of 1,200 EUR a year</li></ul>
<h2>Open roles</h2>
<table>
<thead><tr><th>Role</th><th>Team</th><th>Salary</th></tr></thead>
<tbody><tr><td>Backend developer</td><td>Platform</td><td>64,000 EUR</td></tr>
<tr><td>Data analyst</td><td>Finance</td><td>55,000 EUR</td></tr></tbody>
</table>
</main>
<footer><p>Copyright 2024 Fern GmbH. Imprint. Privacy.</p></footer>
<script>track();</script>
</body></html>
"""

MARKDOWN = (
    "# Fern FAQ\r\n\r\n"
    "Fern builds desks and shelves from recycled oak. Every desk ships flat and\r\n"
    "arrives within five working days of the order.\r\n\r\n"
    "## Prices\r\n\r\n"
    "| Model | Width | Price |\r\n|---|---|---|\r\n| Fern XL | 90 cm | $499 |\r\n| Fern S | 60 cm | $299 |\r\n\r\n"
    "Returns are free when you:\r\n\r\n- keep the original box\r\n- send it back within 30 days\r\n"
)

DOCX_BLOCKS = [
    ("h1", "Onboarding guide"),
    ("p", "New employees receive a laptop on their first day."),
    ("h2", "Equipment"),
    ("table", [["Item", "Budget"], ["Monitor", "300 EUR"], ["Chair", "450 EUR"]]),
    ("p", "Ask IT for:"),
    ("li", "a security key"),
    ("li", "a VPN account"),
]


@pytest.fixture
def folder(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "policy.pdf").write_bytes(docgen.pdf(PDF_PAGES))
    (docs / "careers.html").write_text(HTML, "utf-8")
    (docs / "faq.md").write_bytes(MARKDOWN.encode("utf-8"))
    (docs / "onboarding.docx").write_bytes(docgen.docx(DOCX_BLOCKS))
    return docs


def chunks_of(corpus, name, size=320):
    (doc,) = [d for d in corpus.documents if d.doc_id == name]
    return doc, chunk_document(doc, size, 0)


def test_every_format_is_read_with_its_structure(folder):
    corpus = scan_corpus(folder)
    assert corpus.problems == []
    kinds = {d.doc_id: d.kind for d in corpus.documents}
    assert kinds == {"policy.pdf": "pdf", "careers.html": "html", "faq.md": "markdown", "onboarding.docx": "docx"}

    doc, chunks = chunks_of(corpus, "policy.pdf")
    assert doc.pages == 2
    by_text = {c.text: c for c in chunks}
    economy = next(c for c in chunks if "economy class" in c.text)
    # the paragraph wrapped over several PDF lines is one passage, joined with spaces
    assert "for longer flights when a director approves it in writing" in economy.text
    assert economy.page == 1 and economy.heading == "Travel policy"
    hotels = next(c for c in chunks if "150 euros" in c.text)
    assert hotels.page == 2 and hotels.heading == "Travel policy > Hotels"
    receipts = next(c for c in chunks if "Receipts must" in c.text)
    assert "taxi receipts over 20 euros" in receipts.text  # the list stays with its lead-in
    assert not any(t in ("Travel policy", "Meals", "Hotels") for t in by_text)  # headings are never passages

    doc, chunks = chunks_of(corpus, "careers.html")
    everything = " ".join(c.search_text for c in chunks)
    for furniture in ("Home", "Shop", "cookies", "Copyright", "never index", "tracking", "<", "color"):
        assert furniture not in everything
    texts = [c.text for c in chunks]
    assert "We are hiring in Lisbon and Berlin. Applications close on 30 June 2024." in texts
    assert "Role: Backend developer; Team: Platform; Salary: 64,000 EUR" in texts
    assert any("Every employee gets:" in t and "1,200 EUR" in t for t in texts)
    row = next(c for c in chunks if c.text.startswith("Role: Data analyst"))
    assert row.heading == "Careers at Fern > Open roles"

    doc, chunks = chunks_of(corpus, "faq.md")
    texts = [c.text for c in chunks]
    assert "Model: Fern XL; Width: 90 cm; Price: $499" in texts
    wrapped = next(t for t in texts if t.startswith("Fern builds"))
    assert "within five working days of the order." in wrapped  # hard-wrapped lines are one paragraph
    assert any(t.startswith("Returns are free") and "within 30 days" in t for t in texts)
    assert doc.derived  # a table row is synthesized text: the .md is cited through its extracted text

    doc, chunks = chunks_of(corpus, "onboarding.docx")
    texts = [c.text for c in chunks]
    assert "Item: Chair; Budget: 450 EUR" in texts
    assert any("Ask IT for:" in t and "a VPN account" in t for t in texts)
    assert "Confidential footer" not in doc.text
    assert next(c for c in chunks if c.text.startswith("Item: Monitor")).heading == "Onboarding guide > Equipment"


def test_citation_offsets_are_exact_in_the_stored_texts(folder, tmp_path, keyword_embedder):
    from rag.settings import Settings

    settings = Settings(seeds_dir=folder, index_dir=tmp_path / "index")
    index, report = run_ingest(settings, keyword_embedder)
    assert report.problems == [] and len(report.added) == 4
    read = SourceTexts(folder, settings.index_dir)
    manifest_docs = VectorIndex.load(settings.index_dir).documents
    for c in index.chunks:
        assert read(c.doc_id)[c.start : c.end] == c.text
    stored = {d: m["text"] for d, m in manifest_docs.items()}
    assert all(stored[d] and stored[d].startswith("texts/") for d in ("policy.pdf", "careers.html", "onboarding.docx"))
    assert manifest_docs["policy.pdf"]["pages"] == 2 and manifest_docs["policy.pdf"]["type"] == "pdf"
    # removing a document removes its stored text
    (folder / "careers.html").unlink()
    run_ingest(settings, keyword_embedder)
    assert not (settings.index_dir / stored["careers.html"]).exists()
    assert (settings.index_dir / stored["policy.pdf"]).exists()


@pytest.mark.parametrize(
    "raw,encoding",
    [
        (b"First line here.\r\nSecond para starts.\r\n\r\nThird one, after a blank line.\r\n", "utf-8-sig"),
        ("\ufeffFirst line here.\r\nSecond para starts.\r\n\r\nThird one.\n".encode(), "utf-8-sig"),
        ("First line h\u00e9r\u00e9.\r\n\r\nSecond para.\r\n".encode("utf-16"), "utf-16"),  # with BOM
        ("First line here.\n\nSecond para.\n".encode("utf-16-le"), "utf-16-le"),  # no BOM: text, not binary
    ],
)
def test_txt_offsets_exact_for_crlf_bom_and_utf16(tmp_path, raw, encoding):
    (tmp_path / "a.txt").write_bytes(raw)
    corpus = scan_corpus(tmp_path)
    assert corpus.problems == []
    text = SourceTexts(tmp_path)("a.txt")
    with open(tmp_path / "a.txt", encoding=encoding, newline="") as f:
        assert f.read() == text  # the documented rule: BOM removed, line endings kept
    (doc,) = corpus.documents
    assert not doc.derived
    for c in chunk_document(doc, 320, 0):
        assert text[c.start : c.end] == c.text
    assert text[doc.segments[0].start : doc.segments[0].end].startswith("First line")


def test_html_named_txt_is_parsed_as_html(tmp_path):
    (tmp_path / "page.txt").write_text(HTML, "utf-8")
    (doc,) = scan_corpus(tmp_path).documents
    assert doc.kind == "html" and doc.derived
    assert "<" not in doc.text and "never index" not in doc.text


def test_unreadable_files_are_reported_by_name_and_the_rest_is_indexed(tmp_path, keyword_embedder):
    from rag.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("This document is fine and has a sentence.")
    (docs / "locked.pdf").write_bytes(docgen.pdf([[("p", "secret salaries")]], encrypt=True))
    (docs / "scan.pdf").write_bytes(docgen.pdf([[], []]))
    (docs / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (docs / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    (docs / "data.csv").write_text("a,b\n1,2\n")
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02\x03binary\x00\x00")
    settings = Settings(seeds_dir=docs, index_dir=tmp_path / "index")
    index, report = run_ingest(settings, keyword_embedder)
    reasons = {p.name: p.reason for p in report.problems}
    assert set(reasons) == {"locked.pdf", "scan.pdf", "latin1.txt", "photo.jpg", "data.csv", "blob.txt"}
    assert "encrypted" in reasons["locked.pdf"]
    assert "image-only" in reasons["scan.pdf"] and "OCR" in reasons["scan.pdf"]
    assert "not valid UTF-8" in reasons["latin1.txt"]
    assert "JPEG" in reasons["photo.jpg"] and "unsupported type" in reasons["data.csv"]
    assert "binary" in reasons["blob.txt"]
    assert report.added == ["good.txt"] and len(index) == 1
    summary = report.summary()
    assert "not indexed (6)" in summary and "locked.pdf: encrypted PDF" in summary
    assert report.to_dict()["problems"][0] == {"name": "blob.txt", "reason": reasons["blob.txt"]}


def test_ingest_summary_from_the_command_line_names_each_problem(tmp_path, monkeypatch, capsys):
    from rag import cli, pipeline

    from .conftest import KeywordEmbedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Title\n\nA paragraph worth indexing.")
    (docs / "scan.pdf").write_bytes(docgen.pdf([[]]))
    monkeypatch.setattr(pipeline, "load_embedder", lambda settings: KeywordEmbedder())
    code = cli.main(["ingest", "-q", "--seeds-dir", str(docs), "--index-dir", str(tmp_path / "index")])
    out = capsys.readouterr().out
    assert code == 0 and "1 added" in out and "scan.pdf: no text layer" in out


def test_symlink_leaving_the_folder_is_refused_with_a_message(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("The root password is hunter2.")
    (docs / "ok.txt").write_text("A normal document with content.")
    os.symlink(secret, docs / "leak.txt")
    os.symlink(tmp_path, docs / "outside")
    (docs / "inner.txt").symlink_to(docs / "ok.txt")  # a link that stays inside is fine
    corpus = scan_corpus(docs)
    assert sorted(d.doc_id for d in corpus.documents) == ["inner.txt", "ok.txt"]
    reasons = {p.name: p.reason for p in corpus.problems}
    assert set(reasons) == {"leak.txt", "outside"} and all(
        "outside the documents folder" in r for r in reasons.values()
    )
    assert not any("hunter2" in d.text for d in corpus.documents)


def test_detect_reads_content_not_the_extension():
    assert detect(docgen.pdf([[("p", "x")]]), "report.txt") == "pdf"
    assert detect(docgen.docx([("p", "x")]), "file.bin") == "docx"
    assert detect(b"<html><body><p>x</p></body></html>", "notes.md") == "html"
    assert detect(b"# Title\n\ntext", "notes.md") == "markdown"
    with pytest.raises(UnreadableDocument, match="ZIP"):
        import io
        import zipfile

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("a.txt", "x")
        detect(buf.getvalue(), "a.docx")
    assert decode_text("\ufeffabc\r\n".encode("utf-8")) == "abc\r\n"

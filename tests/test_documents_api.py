"""/documents on a real index (keyword fake embedder, scripted generator): upload, list, remove, and the
live corpus — an upload or a `rag ingest` in another process is answered from without a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.library import document_id, sanitise_name
from rag.pipeline import Pipeline, run_ingest
from rag.settings import Settings

from . import docgen
from .conftest import ROOT
from .support.fakes import KeywordEmbedder, ScriptedGenerator

FIRST = "# Harbour rules\n\nThe harbour gate opens at seven in the morning.\n"
PDF = docgen.pdf(
    [[("h1", "Lighthouse manual"), ("p", "The lighthouse lamp was replaced in March 1998 by the keeper.")]]
)
HTML = b"<html><head><title>Ferry</title></head><body><h1>Ferry timetable</h1><p>The ferry to Orkney leaves on Tuesday.</p></body></html>"
MARKDOWN = b"# Tides\n\nThe spring tide reaches four metres at the quay.\n"


def reply(question, shown, messages):
    """Copies the first three words of the first shown passage: enough to see which document answered."""
    n, text = shown[0]
    return f"[{n}] " + " ".join(text.split()[:3])


def wait_for(check, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def live(tmp_path):
    """A real index of one Markdown file, and a client of an app serving it."""
    seeds = tmp_path / "docs"
    seeds.mkdir()
    (seeds / "harbour.md").write_text(FIRST)
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", max_upload_bytes=64 * 1024)
    embedder = KeywordEmbedder()
    run_ingest(settings, embedder)
    pipeline = Pipeline.load(settings, embedder=embedder, generator=ScriptedGenerator(reply))
    app = create_app(settings, pipeline=pipeline)
    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as client:  # the Host guard
        client.settings = settings
        client.library = app.state.service.library
        yield client


def upload(client, name: str, data: bytes, **kwargs):
    return client.post("/documents", files={"file": (name, data, "application/octet-stream")}, **kwargs)


def by_name(client) -> dict[str, dict]:
    r = client.get("/documents")
    assert r.status_code == 200, r.text
    return {d["name"]: d for d in r.json()}


def test_upload_pdf_html_markdown_then_ask_and_remove(live):
    health = live.get("/health").json()
    assert (health["documents"], health["chunks"]) == (1, 1)

    r = upload(live, "manual.pdf", PDF)
    assert r.status_code == 202, r.text
    assert (
        r.json()["status"] in ("pending", "indexing") and r.json()["name"] == "manual.pdf" and r.json()["type"] == "pdf"
    )
    assert upload(live, "ferry.html", HTML).status_code == 202
    assert upload(live, "tides.md", MARKDOWN).status_code == 202
    assert live.library.wait_idle(30)

    docs = by_name(live)
    assert set(docs) == {"harbour.md", "manual.pdf", "ferry.html", "tides.md"}
    assert {d["status"] for d in docs.values()} == {"ready"}
    pdf = docs["manual.pdf"]
    assert pdf["type"] == "pdf" and pdf["pages"] == 1 and pdf["chunks"] >= 1
    assert pdf["id"] == document_id("manual.pdf") and len(pdf["sha256"]) == 64
    assert docs["ferry.html"]["type"] == "html" and docs["tides.md"]["type"] == "markdown"
    assert (live.settings.seeds_dir / "manual.pdf").read_bytes() == PDF
    assert not [p for p in live.settings.seeds_dir.iterdir() if p.name.startswith(".")]  # no temporary left

    health = live.get("/health").json()
    assert health["documents"] == 4 and health["chunks"] == sum(d["chunks"] for d in docs.values())
    answer = live.post("/ask", json={"question": "When was the lighthouse lamp replaced?"}).json()
    assert answer["passages"][0]["doc"] == "manual.pdf"

    r = live.delete(f"/documents/{pdf['id']}")
    assert r.status_code == 202 and r.json()["status"] == "deleting"
    assert live.library.wait_idle(30)
    assert "manual.pdf" not in by_name(live) and not (live.settings.seeds_dir / "manual.pdf").exists()
    assert live.get("/health").json()["documents"] == 3
    answer = live.post("/ask", json={"question": "When was the lighthouse lamp replaced?"}).json()
    assert answer["passages"] and all(p["doc"] != "manual.pdf" for p in answer["passages"])
    assert live.delete(f"/documents/{pdf['id']}").status_code == 404


def test_upload_errors_413_415_404_409(live):
    r = upload(live, "big.txt", b"word " * 20_000)  # 100 KB, limit 64 KB
    assert r.status_code == 413 and "limited to 64 KB" in r.json()["detail"]
    r = live.post("/documents", content=b"x" * 200_000, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    r = upload(live, "photo.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert r.status_code == 415 and "PNG" in r.json()["detail"]
    r = upload(live, "table.csv", b"a,b\n1,2\n")
    assert r.status_code == 415 and ".csv" in r.json()["detail"]
    assert upload(live, "empty.txt", b"  \n").status_code == 415
    assert live.delete("/documents/nosuchid").status_code == 404
    assert upload(live, "copy.md", FIRST.encode()).status_code == 409  # the same bytes as harbour.md
    assert live.post("/documents", data={"x": "1"}).status_code == 422
    assert set(by_name(live)) == {"harbour.md"}
    assert sorted(p.name for p in live.settings.seeds_dir.iterdir()) == ["harbour.md"]


@pytest.mark.parametrize(
    "raw, safe",
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.md", "report.md"),
        (".hidden.md", "hidden.md"),
        ("..", "document"),
        ("a\x00b\x1b[31mc\u202e.md", "ab[31mc.md"),
        ('what?<is>"this".md', "what__is__this_.md"),
        ("  spaced   out .md ", "spaced out.md"),
        ("CON.txt", "_CON.txt"),
        ("x" * 300 + ".pdf", "x" * 116 + ".pdf"),
    ],
)
def test_sanitise_name(raw, safe):
    assert sanitise_name(raw) == safe


def test_uploaded_names_are_sanitised_and_collisions_renamed(live):
    assert upload(live, "../../outside.md", MARKDOWN).json()["name"] == "outside.md"
    r = upload(live, "harbour.md", b"# Other harbour\n\nThe other harbour closes at noon.\n")
    assert r.status_code == 202 and r.json()["name"] == "harbour (2).md"
    body = (  # by hand: clients percent-encode control characters, a hostile one need not
        b'--b\r\nContent-Disposition: form-data; name="file"; filename=".secret\x07\x1b.md"\r\n'
        b"Content-Type: text/markdown\r\n\r\nThe crane lifts twelve tonnes.\n\r\n--b--\r\n"
    )
    r = live.post("/documents", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 202 and r.json()["name"] == "secret.md", r.text
    assert live.library.wait_idle(30)
    assert set(by_name(live)) == {"harbour.md", "harbour (2).md", "outside.md", "secret.md"}
    assert not (live.settings.seeds_dir.parent / "outside.md").exists()
    assert (live.settings.seeds_dir / "harbour.md").read_text() == FIRST  # never overwritten


def test_documents_are_in_the_openapi_spec(live):
    spec = live.get("/openapi.json").json()
    assert {"get", "post"} <= set(spec["paths"]["/documents"]) and "delete" in spec["paths"]["/documents/{doc_id}"]
    assert spec["components"]["schemas"]["DocumentOut"]["examples"]


def test_token_guards_documents(tmp_path):
    seeds = tmp_path / "docs"
    seeds.mkdir()
    (seeds / "harbour.md").write_text(FIRST)
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", api_token="s3cret")
    embedder = KeywordEmbedder()
    run_ingest(settings, embedder)
    with TestClient(
        create_app(settings, pipeline=Pipeline.load(settings, embedder=embedder)), base_url="http://localhost"
    ) as c:
        assert c.get("/documents").status_code == 401
        assert upload(c, "tides.md", MARKDOWN).status_code == 401
        assert c.delete(f"/documents/{document_id('harbour.md')}").status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        assert c.get("/documents", headers=auth).status_code == 200
        assert upload(c, "tides.md", MARKDOWN, headers=auth).status_code == 202
        assert c.app.state.service.library.wait_idle(30)
    assert (seeds / "tides.md").exists()


def test_a_failed_upload_keeps_the_old_index(live):
    before = live.get("/health").json()
    manifest = (live.settings.index_dir / "manifest.json").read_bytes()
    r = upload(live, "scan.pdf", docgen.pdf([[], []]))  # a PDF without a text layer: passes the type check
    assert r.status_code == 202
    assert live.library.wait_idle(30)
    docs = by_name(live)
    assert docs["scan.pdf"]["status"] == "failed" and "text" in docs["scan.pdf"]["problem"]
    assert docs["harbour.md"]["status"] == "ready"
    assert not (live.settings.seeds_dir / "scan.pdf").exists()
    assert (live.settings.index_dir / "manifest.json").read_bytes() == manifest

    service = live.app.state.service
    embedder = service.get_pipeline().embedder

    def broken(texts):
        raise RuntimeError("embedding device lost")

    embedder.embed, real = broken, embedder.embed
    try:
        assert upload(live, "tides.md", MARKDOWN).status_code == 202
        assert live.library.wait_idle(30)
    finally:
        embedder.embed = real
    docs = by_name(live)
    assert docs["tides.md"]["status"] == "failed" and "embedding device lost" in docs["tides.md"]["problem"]
    assert (live.settings.index_dir / "manifest.json").read_bytes() == manifest
    assert live.get("/health").json() == before
    answer = live.post("/ask", json={"question": "When does the harbour gate open?"}).json()
    assert [p["doc"] for p in answer["passages"]] == ["harbour.md"]

    # a failed entry is dismissed with DELETE; the same file can then be uploaded again
    assert live.delete(f"/documents/{docs['tides.md']['id']}").json()["status"] == "deleted"
    assert upload(live, "tides.md", MARKDOWN).status_code == 202
    assert live.library.wait_idle(30)
    assert by_name(live)["tides.md"]["status"] == "ready"


INGEST_ELSEWHERE = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from rag.pipeline import run_ingest
from rag.settings import Settings
from tests.support.fakes import KeywordEmbedder
report = run_ingest(Settings(seeds_dir=Path({seeds!r}), index_dir=Path({index!r})), KeywordEmbedder())[1]
print(report.chunks_total)
"""


def test_ingest_by_another_process_is_served_without_restart(live):
    seeds, index = live.settings.seeds_dir, live.settings.index_dir
    assert live.get("/health").json()["documents"] == 1
    (seeds / "tides.md").write_bytes(MARKDOWN)
    (seeds / "ferry.html").write_bytes(HTML)
    script = INGEST_ELSEWHERE.format(root=str(ROOT), seeds=str(seeds), index=str(index))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    chunks = int(out.stdout.strip().splitlines()[-1])

    health = wait_for(lambda: (h := live.get("/health").json())["documents"] == 3 and h, "the new index in /health")
    assert health["chunks"] == chunks and health["status"] == "ready"
    assert set(by_name(live)) == {"harbour.md", "tides.md", "ferry.html"}
    answer = live.post("/ask", json={"question": "How high does the spring tide reach at the quay?"}).json()
    assert answer["passages"][0]["doc"] == "tides.md"

    # a damaged manifest is not loaded: the last good index stays served, and /health says why
    (index / "manifest.json").write_text(json.dumps({"format_version": 2}))
    wait_for(lambda: "could not be loaded" in live.get("/health").json().get("detail", ""), "the reload error")
    assert live.get("/health").json()["documents"] == 3
    assert live.post("/ask", json={"question": "When does the ferry leave?"}).status_code == 200

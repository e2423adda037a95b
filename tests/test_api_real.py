"""`rag serve` as a user runs it: a real process, the real embedder and GGUF model, over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from .conftest import ROOT, SEEDS
from .support.processes import stop

pytestmark = pytest.mark.slow
RAG = [sys.executable, "-m", "rag.cli"]
READY_TIMEOUT_S = 180
QUESTION = "When did Brad Smith meet Wang Wentao?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base: str, process: subprocess.Popen, log) -> dict:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"rag serve exited with {process.returncode}: {log.read_text()}")
        try:
            r = httpx.get(f"{base}/health", timeout=2)
            if r.status_code == 200:
                return r.json()
            assert r.json()["status"] in ("loading", "ready"), r.text
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"rag serve not ready after {READY_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A tmp index built by `rag ingest` from the seeds, and `rag serve` on a free port (stopped after)."""
    tmp = tmp_path_factory.mktemp("api")
    env = {**os.environ, "RAG_SEEDS_DIR": str(SEEDS), "RAG_INDEX_DIR": str(tmp / "index")}
    env.pop("RAG_API_TOKEN", None)
    built = subprocess.run(RAG + ["ingest", "-q"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    port, log = free_port(), tmp / "serve.log"
    with log.open("w") as out:  # a file, not a pipe nobody reads, so the server can never block on output
        process = subprocess.Popen(RAG + ["serve", "--port", str(port)], env=env, cwd=ROOT, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_ready(base, process, log)
        yield base, health
    finally:
        stop(process)
    assert "listening on http://127.0.0.1:" in log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()


def test_ask_over_http_cites_the_date_in_the_original_file(server):
    base, health = server
    assert health["status"] == "ready" and health["chunks"] > 0 and health["model"]
    r = httpx.post(f"{base}/ask", json={"question": QUESTION}, timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body["refused"], body
    sources = {c["source"]: (SEEDS / c["source"]).read_text(encoding="utf-8") for c in body["citations"]}
    spans = [sources[c["source"]][c["start"] : c["end"]] for c in body["citations"]]
    assert any("December 6, 2023" in span for span in spans), (body["answer"], spans)


def test_stream_over_http(server):
    base, _ = server
    names = []
    with httpx.stream("POST", f"{base}/ask/stream", json={"question": QUESTION}, timeout=120) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event: "):
                names.append(line[7:])
    assert names[0] == "sources" and names[-1] == "answer" and "token" in names


def test_bad_input_over_http(server):
    base, _ = server
    r = httpx.post(f"{base}/ask", json={"question": "   "}, timeout=30)
    assert r.status_code == 422 and "Traceback" not in r.text


def test_official_openai_client(server):
    from openai import OpenAI

    base, _ = server
    client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=120)
    model = client.models.list().data[0].id
    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}])
    assert "December 6, 2023" in completion.choices[0].message.content
    assert completion.citations and completion.refused is False  # extension fields pass through the client

    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == completion.choices[0].message.content
    assert chunks[-1].citations == completion.citations

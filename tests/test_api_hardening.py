"""The HTTP surface under abuse: DNS rebinding, CORS, wrong methods, odd Unicode, settings, abandoned requests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.errors import SettingsError
from rag.settings import Settings, build_settings

from .conftest import ROOT
from .test_api import BASE, QUESTION, TOKENS, api_pipeline


def app_with_chat(pipeline=None, **overrides):
    from ui.app import mount_ui

    app = create_app(Settings(**overrides), pipeline=pipeline or api_pipeline())
    return mount_ui(app, app.state.service)


@pytest.fixture(scope="module")
def chat_app():
    return app_with_chat()


# --- DNS rebinding: a Host allow-list for the API and the chat ---------------------------------------


@pytest.mark.parametrize("path, method", [("/ask", "post"), ("/health", "get"), ("/", "get"), ("/config", "get")])
def test_a_foreign_host_is_refused_by_api_and_chat(chat_app, path, method):
    kwargs = {"json": {"question": QUESTION}} if method == "post" else {}
    with TestClient(chat_app, base_url="http://rebind.attacker.example:8000") as c:
        r = getattr(c, method)(path, **kwargs)
    assert r.status_code == 400 and "RAG_ALLOWED_HOSTS" in r.json()["detail"]


@pytest.mark.parametrize(
    "base", [BASE, "http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000", "http://192.168.1.20:8000"]
)
def test_loopback_names_and_addresses_are_served(chat_app, base):
    with TestClient(chat_app, base_url=base) as c:
        assert c.post("/ask", json={"question": QUESTION}).status_code == 200
        assert c.get("/").status_code == 200


def test_allowed_hosts_setting_admits_a_lan_name_and_its_subdomains():
    app = create_app(Settings(allowed_hosts="rag.lan, .corp.example"), pipeline=api_pipeline())
    for base, status in [
        ("http://rag.lan:8000", 200),
        ("http://a.corp.example", 200),
        ("http://corp.example", 200),
        ("http://evilcorp.example", 400),
        ("http://localhost", 400),
    ]:
        with TestClient(app, base_url=base) as c:
            assert c.get("/health").status_code == status, base


# --- one CORS policy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://127.0.0.1:9999", "null", "http://evil.example"])
def test_empty_cors_origins_gives_the_chat_no_cors_either(chat_app, origin):
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    with TestClient(chat_app, base_url=BASE) as c:
        for path in ["/gradio_api/queue/join", "/ask"]:
            assert "access-control-allow-origin" not in c.options(path, headers=preflight).headers, path
        simple = c.get("/config", headers={"Origin": origin})
        assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers
        assert "access-control-allow-credentials" not in simple.headers


def test_configured_cors_origins_apply_to_api_and_chat_alike():
    app = app_with_chat(cors_origins="http://ui.example", allowed_hosts="rag.lan")
    with TestClient(app, base_url="http://rag.lan") as c:
        for path in ["/ask", "/gradio_api/queue/join"]:
            ok = c.options(path, headers={"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"})
            assert ok.headers.get("access-control-allow-origin") == "http://ui.example", path
            other = c.options(path, headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
            assert "access-control-allow-origin" not in other.headers, path


# --- methods, Unicode ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, allow",
    [("get", "/ask", "POST"), ("put", "/ask/stream", "POST"), ("delete", "/health", "GET, HEAD"),
     ("get", "/v1/chat/completions", "POST"), ("post", "/v1/models", "GET, HEAD")],
)  # fmt: skip
def test_wrong_method_on_an_api_route_is_405_with_the_chat_mounted(chat_app, method, path, allow):
    with TestClient(chat_app, base_url=BASE) as c:
        r = getattr(c, method)(path)
    assert r.status_code == 405 and r.headers["allow"] == allow and "not allowed" in r.json()["detail"]


def encoding_pipeline():
    """Encodes the question as the real tokenizers do (they fail on a lone surrogate)."""
    return api_pipeline(on_ask=lambda question: question.encode("utf-8"))


@pytest.mark.parametrize(
    "path, body",
    [("/v1/chat/completions", '{"messages": [{"role": "user", "content": "When \\ud800 did they meet?"}]}'),
     ("/v1/chat/completions", '{"messages": [{"role": "user", "content": "When did they meet?\\udfff"}], "stream": true}'),
     ("/ask", '{"question": "\\udc00 When?"}')],
)  # fmt: skip
def test_a_lone_surrogate_is_422_not_500(path, body):
    app = create_app(Settings(), pipeline=encoding_pipeline())
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        r = c.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "question" in r.json()["detail"] or "string" in r.json()["detail"]


@pytest.mark.parametrize("question", ["\u200b", "\u200b\u200c\u200d\ufeff", " \u2060 \u00ad ", "\x00\x01"])
def test_a_question_of_invisible_characters_is_blank(question):
    pipeline = api_pipeline()
    with TestClient(create_app(Settings(), pipeline=pipeline), base_url=BASE) as c:
        for path, payload in [
            ("/ask", {"question": question}),
            ("/ask/stream", {"question": question}),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": question}]}),
        ]:
            r = c.post(path, json=payload)
            assert r.status_code == 422 and "blank" in r.json()["detail"], (path, r.text)
    assert pipeline.calls == []


# --- settings from the environment ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [("http://x", ["http://x"]), ("http://a, http://b", ["http://a", "http://b"]), ('["http://a"]', ["http://a"]),
     ("", [])],
)  # fmt: skip
def test_cors_origins_from_the_environment_plain_or_json(monkeypatch, value, expected):
    monkeypatch.setenv("RAG_CORS_ORIGINS", value)
    assert build_settings().cors_origins == expected


def test_a_plain_cors_origin_does_not_break_the_cli():
    env = {**os.environ, "RAG_CORS_ORIGINS": "http://x", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "rag.cli", "serve", "--help"], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "Traceback" not in out.stderr
    code = "from rag.cli import _settings, build_parser; print(_settings(build_parser().parse_args(['ingest'])).cors_origins)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "['http://x']", out.stderr


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_api_token_is_refused_not_ignored(monkeypatch, value):
    monkeypatch.setenv("RAG_API_TOKEN", value)
    with pytest.raises(SettingsError, match="RAG_API_TOKEN.*empty"):
        build_settings()


def test_rag_serve_refuses_to_start_with_an_empty_token():
    env = {**os.environ, "RAG_API_TOKEN": "", "PYTHONPATH": str(ROOT)}
    rag = "import sys; from rag.cli import main; sys.exit(main(['serve', '--port', '1']))"  # what `rag serve` runs
    out = subprocess.run([sys.executable, "-c", rag], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "RAG_API_TOKEN" in out.stderr and "empty" in out.stderr
    assert "Traceback" not in out.stderr


# --- abandoned non-stream requests ---------------------------------------------------------------------------


def _scope(path: str, body: bytes) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "server": ("localhost", 80), "client": ("test", 1),
        "headers": [(b"host", b"localhost"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip


class Client:
    """One raw ASGI request whose client can hang up (`leave()`)."""

    def __init__(self, app, path: str, payload: dict):
        self.body = json.dumps(payload).encode()
        self.gone = asyncio.Event()
        self.sent: list[dict] = []
        self.task = asyncio.ensure_future(app(_scope(path, self.body), self.receive, self.send))
        self.first = True

    async def receive(self):
        if self.first:
            self.first = False
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message):
        self.sent.append(message)

    def leave(self):
        self.gone.set()

    def status(self):
        return next((m["status"] for m in self.sent if m["type"] == "http.response.start"), None)


async def _until(check, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("path", ["/ask", "/v1/chat/completions"])
def test_a_running_answer_stops_when_its_client_disconnects(path):
    pipeline = api_pipeline()
    pipeline.gate.clear()
    app = create_app(Settings(queue_size=1), pipeline=pipeline)
    admission = app.state.service.admission
    payload = {"question": QUESTION} if path == "/ask" else {"messages": [{"role": "user", "content": QUESTION}]}

    async def scenario():
        client = Client(app, path, payload)
        await _until(pipeline.running.is_set)
        client.leave()
        await asyncio.sleep(0.05)
        pipeline.gate.set()  # the next token comes; the answer stops there
        await asyncio.wait_for(client.task, 10)
        await _until(lambda: admission.admitted == 0)

    asyncio.run(scenario())
    assert pipeline.closed == 1 and "answer" not in pipeline.emitted and pipeline.emitted.count("token") < len(TOKENS)
    assert not admission.running


def test_a_queued_request_whose_client_left_frees_its_slot_at_once():
    pipeline = api_pipeline()
    pipeline.gate.clear()
    app = create_app(Settings(queue_size=1), pipeline=pipeline)
    admission = app.state.service.admission

    async def scenario():
        running = Client(app, "/ask", {"question": QUESTION})
        await _until(pipeline.running.is_set)
        queued = Client(app, "/ask", {"question": QUESTION})
        await _until(lambda: admission.admitted == 2)
        queued.leave()
        await _until(lambda: admission.admitted == 1, timeout=2)  # before the running one finishes
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=30) as c:
            third = asyncio.ensure_future(c.post("/ask", json={"question": QUESTION}))
            await _until(lambda: admission.admitted == 2 or third.done())
            pipeline.gate.set()
            response = await third
        await asyncio.wait_for(running.task, 10)
        await asyncio.wait_for(queued.task, 10)
        return running.status(), response.status_code

    assert asyncio.run(scenario()) == (200, 200)
    assert admission.admitted == 0


def test_serving_beyond_loopback_says_which_host_names_are_answered(capsys):
    from rag.server import _warn_if_exposed

    _warn_if_exposed(Settings(host="0.0.0.0", allowed_hosts="rag.lan"))
    err = capsys.readouterr().err
    assert "RAG_ALLOWED_HOSTS" in err and "rag.lan" in err
    _warn_if_exposed(Settings())
    assert "RAG_ALLOWED_HOSTS" not in capsys.readouterr().err

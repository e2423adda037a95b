"""The HTTP API against a fake pipeline: every endpoint, every error path, admission and streaming."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.errors import ModelError, QueryError, RagError
from rag.settings import Settings

from .support import fakes

DOC = "Brad Smith met China's Minister of Commerce, Wang Wentao, on Wednesday, December 6, 2023, in Beijing."
QUESTION = "When did Brad Smith meet Wang Wentao?"
TOKENS = ["[1] Wednesday", ", December 6", ", 2023"]
BASE = "http://localhost"  # the Host guard answers loopback names only by default
INFO = {"documents": 1, "chunks": 1, "embedder": "fake@1", "model": "fake.gguf", "mode": "extractive"}


def passage():
    return fakes.passage("doc.txt", DOC, score=0.0325)


def answer_for(question: str):
    timings = {"retrieve_ms": 1.0, "generate_ms": 2.0, "total_ms": 3.0}
    return fakes.cited_answer(
        question,
        passage(),
        "Wednesday, December 6, 2023",
        raw="".join(TOKENS),
        signals={"typed": True},
        timings=timings,
    )


def api_pipeline(delay: float = 0.0, fail: Exception | None = None, on_ask=None) -> fakes.FakePipeline:
    """The fake pipeline with this module's canned passage, tokens and cited answer."""
    return fakes.FakePipeline([passage()], answer_for, TOKENS, INFO, delay=delay, fail=fail, on_ask=on_ask)


@pytest.fixture
def fake():
    return api_pipeline()


def make_client(pipeline=None, **overrides) -> TestClient:
    settings = Settings(**{"max_question_chars": 100, **overrides})
    return TestClient(
        create_app(settings, pipeline=pipeline or api_pipeline()), base_url=BASE, raise_server_exceptions=False
    )


@pytest.fixture
def client(fake):
    with make_client(fake) as c:
        yield c


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) pairs of an event-stream body."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        out.append((name, data))
    return out


# --- /health and loading -------------------------------------------------------------------------------


def test_health_ready(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", **INFO}


def test_health_reports_a_remote_backend_and_whether_it_answers():
    class Remote:
        model_name = "tiny.gguf"
        backend = "remote http://gen:8080"
        up = True

        def reachable(self):
            return self.up

    pipeline = fakes.FakePipeline([passage()], answer_for, TOKENS, {**INFO, "backend": Remote.backend})
    pipeline.generator = remote = Remote()
    with make_client(pipeline) as c:
        assert c.get("/health").json() == {"status": "ready", **INFO, "backend": Remote.backend, "reachable": True}
        remote.up = False
        r = c.get("/health")
        assert r.status_code == 200 and r.json()["reachable"] is False


def test_health_loading_then_ready():
    release = threading.Event()

    def slow_loader(settings):
        release.wait(10)
        return api_pipeline()

    app = create_app(Settings(), loader=slow_loader)
    with TestClient(app, base_url=BASE) as c:
        assert app.state.service.get_pipeline() is None
        r = c.get("/health")
        assert (r.status_code, r.json()) == (503, {"status": "loading"})
        r = c.post("/ask", json={"question": QUESTION})
        assert r.status_code == 503 and "loading" in r.json()["detail"] and r.headers["retry-after"]
        release.set()
        deadline = time.monotonic() + 10
        while c.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert c.get("/health").json()["status"] == "ready"
        assert c.app.state.service.get_pipeline() is not None
        assert c.post("/ask", json={"question": QUESTION}).status_code == 200


@pytest.mark.parametrize("exc", [ModelError("RAG_MODEL_PATH=/x.gguf is not a file"), RuntimeError("kaboom")])
def test_health_reports_load_failure(exc, caplog):
    def failing_loader(settings):
        raise exc

    with TestClient(create_app(Settings(), loader=failing_loader), base_url=BASE) as c:
        deadline = time.monotonic() + 10
        while c.get("/health").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        r = c.get("/health")
        assert r.status_code == 503
        assert r.json()["status"] == "error" and str(exc) in r.json()["detail"]
        r = c.post("/ask", json={"question": QUESTION})
        assert r.status_code == 503 and str(exc) in r.json()["detail"]
        with pytest.raises(RagError, match=str(exc)):
            c.app.state.service.get_pipeline()  # what the chat UI is given: a RagError it can show
    assert str(exc) in caplog.text


# --- /ask ----------------------------------------------------------------------------------------------------


def test_ask_returns_the_answer_contract(client, fake):
    r = client.post("/ask", json={"question": f"  {QUESTION} ", "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body == json.loads(answer_for(QUESTION).model_dump_json())
    citation = body["citations"][0]
    assert DOC[citation["start"] : citation["end"]] == citation["quote"] == "Wednesday, December 6, 2023"
    assert fake.calls == [(QUESTION, 5)]


@pytest.mark.parametrize(
    "payload, words",
    [
        ({"question": ""}, "question"),
        ({"question": "   \n\t"}, "blank"),
        ({"question": "x" * 101}, "too long"),
        ({"question": 123}, "question"),
        ({"question": ["a"]}, "question"),
        ({"question": QUESTION, "k": 0}, "k"),
        ({"question": QUESTION, "k": 21}, "k"),
        ({"question": QUESTION, "k": "3"}, "k"),
        ({"question": QUESTION, "colour": "red"}, "colour"),
        ({}, "question"),
        ([QUESTION], "body"),
    ],
)
def test_ask_rejects_bad_input_with_422(client, fake, payload, words):
    r = client.post("/ask", json=payload)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and words in detail
    assert fake.calls == []


def test_ask_rejects_malformed_json(client):
    r = client.post("/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)


def test_body_size_limit(client):
    big = json.dumps({"question": "x" * 70_000})
    assert client.post("/ask", content=big, headers={"content-type": "application/json"}).status_code == 413

    def chunked():  # no Content-Length: the limit is counted while reading
        yield b'{"question": "'
        for _ in range(80):
            yield b"x" * 1000
        yield b'"}'

    r = client.post("/ask", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_query_error_is_422():
    pipeline = api_pipeline(fail=QueryError("the query has no searchable words"))
    with make_client(pipeline) as c:
        r = c.post("/ask", json={"question": "???"})
    assert r.status_code == 422 and "no searchable words" in r.json()["detail"]


def test_unexpected_error_is_logged_500_without_traceback(caplog):
    with make_client(api_pipeline(fail=ZeroDivisionError("secret internals"))) as c:
        r = c.post("/ask", json={"question": QUESTION})
        assert r.status_code == 500
        assert "Traceback" not in r.text and "secret" not in r.text and "server log" in r.json()["detail"]
        assert c.get("/health").status_code == 200
    assert "ZeroDivisionError" in caplog.text


# --- /ask/stream ---------------------------------------------------------------------------------------------


def test_stream_sends_sources_tokens_then_answer(client, fake):
    r = client.post("/ask/stream", json={"question": QUESTION})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert [name for name, _ in events] == ["sources"] + ["token"] * len(TOKENS) + ["answer"]
    assert json.loads(events[0][1]) == [passage().to_out().model_dump()]
    assert "".join(json.loads(d)["text"] for n, d in events if n == "token") == "".join(TOKENS)
    assert json.loads(events[-1][1]) == client.post("/ask", json={"question": QUESTION}).json()
    assert fake.closed == 2


@pytest.mark.parametrize("exc, status", [(RuntimeError("boom"), 500), (QueryError("bad query"), 422)])
def test_stream_error_mid_stream_is_an_error_event(exc, status):
    pipeline = api_pipeline(fail=exc)
    with make_client(pipeline) as c:
        r = c.post("/ask/stream", json={"question": QUESTION})
        events = sse_events(r.text)
        assert [name for name, _ in events] == ["sources", "error"]
        assert json.loads(events[-1][1])["status"] == status
        assert c.app.state.service.admission.admitted == 0
        assert c.post("/ask/stream", json={"question": QUESTION}).status_code == 200


def test_stream_validates_before_streaming(client):
    r = client.post("/ask/stream", json={"question": " "})
    assert r.status_code == 422 and "blank" in r.json()["detail"]


def test_client_disconnect_mid_stream_closes_the_generator_and_frees_the_slot():
    pipeline = api_pipeline()
    pipeline.gate.clear()  # hold generation after the sources event
    app = create_app(Settings(), pipeline=pipeline)
    service = app.state.service
    body = json.dumps({"question": QUESTION}).encode()

    async def scenario():
        disconnected = asyncio.Event()
        sent: list[dict] = []
        requests = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            if requests:
                return requests.pop()
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and b"event: sources" in message.get("body", b""):
                disconnected.set()  # the client goes away after the first event
                pipeline.gate.set()

        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/ask/stream", "raw_path": b"/ask/stream",
            "query_string": b"", "root_path": "", "server": ("test", 80), "client": ("test", 1),
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }  # fmt: skip
        await asyncio.wait_for(app(scope, receive, send), 10)
        return sent

    sent = asyncio.run(scenario())
    assert sent[0]["status"] == 200
    assert not any(b"event: answer" in m.get("body", b"") for m in sent)
    assert pipeline.closed == 1
    assert service.admission.admitted == 0 and not service.admission.running


# --- admission and concurrency ---------------------------------------------------------------------------------


async def _fire(app, n: int, path: str = "/ask"):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=30) as c:
        return await asyncio.gather(*(c.post(path, json={"question": QUESTION}) for _ in range(n)))


def test_sixteen_concurrent_requests_end_200_or_503_and_serving_continues():
    app = create_app(Settings(queue_size=4), pipeline=api_pipeline(delay=0.1))
    responses = asyncio.run(_fire(app, 16))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 503} and codes.count(200) >= 1, codes
    assert codes.count(200) == 5  # 1 running + queue_size waiting
    busy = next(r for r in responses if r.status_code == 503)
    assert int(busy.headers["retry-after"]) >= 1 and "busy" in busy.json()["detail"]
    assert app.state.service.admission.admitted == 0
    assert [r.status_code for r in asyncio.run(_fire(app, 1))] == [200]


def test_health_answers_during_a_long_generation_and_full_queue_rejects_streams():
    pipeline = api_pipeline()
    pipeline.gate.clear()
    app = create_app(Settings(queue_size=1), pipeline=pipeline)

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=30) as c:
            running = asyncio.create_task(c.post("/ask", json={"question": QUESTION}))
            waiting = asyncio.create_task(c.post("/ask", json={"question": QUESTION}))
            while not pipeline.running.is_set() or app.state.service.admission.admitted < 2:
                await asyncio.sleep(0.01)
            t0 = time.monotonic()
            health = await c.get("/health")
            health_s = time.monotonic() - t0
            rejected = await c.post("/ask/stream", json={"question": QUESTION})
            pipeline.gate.set()
            return health, health_s, rejected, await running, await waiting

    health, health_s, rejected, first, second = asyncio.run(scenario())
    assert health.status_code == 200 and health_s < 1.0
    assert rejected.status_code == 503 and "retry-after" in rejected.headers
    assert first.status_code == second.status_code == 200


# --- auth, CORS, docs ----------------------------------------------------------------------------------------------


def test_bearer_token_guards_answers_but_not_health(fake):
    with make_client(fake, api_token="s3cret") as c:
        for method, path, payload in [
            ("post", "/ask", {"question": QUESTION}),
            ("post", "/ask/stream", {"question": QUESTION}),
            ("post", "/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}]}),
            ("get", "/v1/models", None),
        ]:
            kwargs = {"json": payload} if payload else {}
            assert getattr(c, method)(path, **kwargs).status_code == 401, path
            wrong = getattr(c, method)(path, headers={"Authorization": "Bearer nope"}, **kwargs)
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
            assert getattr(c, method)(path, headers={"Authorization": "Bearer s3cret"}, **kwargs).status_code == 200
        assert c.get("/health").status_code == 200


def test_cors_off_by_default_and_on_when_configured(fake):
    preflight = {"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"}
    with make_client(fake) as c:
        assert "access-control-allow-origin" not in c.options("/ask", headers=preflight).headers
        assert "access-control-allow-origin" not in c.get("/health", headers={"Origin": "http://ui.example"}).headers
    with make_client(fake, cors_origins=["http://ui.example"]) as c:
        r = c.options("/ask", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://ui.example"


def test_docs_and_openapi_examples_and_root_left_free(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/ask", "/ask/stream", "/health", "/v1/chat/completions", "/v1/models"} <= set(spec["paths"])
    assert spec["components"]["schemas"]["AskRequest"]["examples"][0]["question"] == QUESTION
    assert spec["components"]["schemas"]["AnswerOut"]["examples"]
    assert client.get("/").status_code == 404


# --- OpenAI-compatible ---------------------------------------------------------------------------------------------


def test_v1_models(client):
    r = client.get("/v1/models")
    assert r.status_code == 200
    assert r.json()["object"] == "list" and r.json()["data"][0]["id"] == "fake.gguf"


def test_v1_chat_completion_answers_the_last_user_message(client, fake):
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "an earlier question"},
        {"role": "assistant", "content": "an earlier answer"},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ]
    r = client.post("/v1/chat/completions", json={"model": "anything", "messages": messages, "temperature": 0.2})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "fake.gguf"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Wednesday, December 6, 2023 [1]"}
    assert body["citations"][0]["quote"] == "Wednesday, December 6, 2023" and body["refused"] is False
    assert fake.calls == [(QUESTION, None)]


def test_v1_chat_completion_stream(client):
    payload = {"messages": [{"role": "user", "content": QUESTION}], "stream": True, "k": 2}
    r = client.post("/v1/chat/completions", json=payload)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert all(name is None for name, _ in events) and events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Wednesday, December 6, 2023 [1]"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["citations"][0]["start"] > 0


def test_v1_stream_error_chunk():
    with make_client(api_pipeline(fail=RuntimeError("boom"))) as c:
        payload = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
        events = sse_events(c.post("/v1/chat/completions", json=payload).text)
        assert json.loads(events[-1][1])["error"]["code"] == 500


@pytest.mark.parametrize(
    "payload",
    [
        {"messages": []},
        {"messages": [{"role": "system", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "  "}]},
        {"messages": [{"role": "user", "content": QUESTION}], "k": 99},
    ],
)
def test_v1_chat_completion_bad_input_422(client, payload):
    r = client.post("/v1/chat/completions", json=payload)
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)


# --- rag serve wiring ------------------------------------------------------------------------------------------------


def test_serve_arguments_reach_settings():
    from rag.cli import _settings, build_parser

    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "9123", "--index-dir", "/tmp/ix"])
    settings = _settings(args)
    assert (settings.host, settings.port, str(settings.index_dir)) == ("0.0.0.0", 9123, "/tmp/ix")
    assert build_parser().parse_args(["serve"]).func.__module__ == "rag.server"


def test_server_module_imports_only_the_standard_library():
    heavy = "('fastapi', 'uvicorn', 'rag.api', 'torch')"
    code = f"import sys, rag.server; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
